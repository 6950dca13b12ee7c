"""One error type for an experiment directory that cannot be read."""
from __future__ import annotations

from core.errors import ClearError


class ResultsError(ClearError):
    """An experiment directory that is missing, malformed or empty: says what, where and how to fix it."""
