"""One error type for an experiment directory that cannot be read."""
from __future__ import annotations

from pathlib import Path


class ResultsError(ValueError):
    """An experiment directory that is missing, malformed or empty: says what, where and how to fix it."""

    def __init__(self, problem: str, where: str | Path | None = None, fix: str | None = None):
        self.problem, self.where, self.fix = problem, (str(where) if where is not None else None), fix
        msg = f"{self.where}: {problem}" if self.where else problem
        if fix:
            msg += f" Fix: {fix}"
        super().__init__(msg)
