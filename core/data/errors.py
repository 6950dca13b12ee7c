"""One error type for everything wrong with input data."""
from __future__ import annotations

from ..errors import ClearError


class DataError(ClearError):
    """Bad input data: says what is wrong, where (file), and how to fix it."""
