"""The shape of every user-facing error: what is wrong, where (file or key), and how to fix it."""
from __future__ import annotations

from pathlib import Path


class ClearError(ValueError):
    """Base of the errors the entry points print as one line (exit status 2) instead of a traceback."""

    def __init__(self, problem: str, where: str | Path | None = None, fix: str | None = None):
        self.problem, self.where, self.fix = problem, (str(where) if where is not None else None), fix
        msg = f"{self.where}: {problem}" if self.where else problem
        if fix:
            msg += f" Fix: {fix}"
        super().__init__(msg)
