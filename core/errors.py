"""The shape of every user-facing error: what is wrong, where (file or key), and how to fix it."""
from __future__ import annotations

import errno
from pathlib import Path

# Write failures an entry point reports as one line (the place, why, the fix) instead of a traceback.
WRITE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})


class ClearError(ValueError):
    """Base of the errors the entry points print as one line (exit status 2) instead of a traceback."""

    def __init__(self, problem: str, where: str | Path | None = None, fix: str | None = None):
        self.problem, self.where, self.fix = problem, (str(where) if where is not None else None), fix
        msg = f"{self.where}: {problem}" if self.where else problem
        if fix:
            msg += f" Fix: {fix}"
        super().__init__(msg)


class ConfigError(ValueError):
    """A configuration key or value that cannot be used (the message names the key, the value and what is allowed)."""


def write_failure(e: OSError) -> str | None:
    """One line for an OSError from writing results (read-only, no permission, disk full), else None."""
    if e.errno not in WRITE_ERRNOS:
        return None
    where = e.filename or "the output folder"
    if e.errno == errno.ENOSPC:
        fix = "free space there, or write somewhere else."
    else:
        fix = "copy the folder somewhere writable (cp -r) and run there, or make it writable."
    return f"{where}: cannot write here ({e.strerror}). Fix: {fix}"


def error_line(exc: BaseException, input_errors: tuple[type[BaseException], ...]) -> str | None:
    """The one line an entry point prints (then exits 2) for ``exc``: an input error's own message, or a write
    failure (read-only, no permission, disk full) named with its place and fix; None for anything else (a bug:
    let its traceback show)."""
    if isinstance(exc, input_errors):
        return str(exc)
    if isinstance(exc, OSError):
        return write_failure(exc)
    return None
