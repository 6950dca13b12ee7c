"""The error of a command-line flag that cannot be used (search/args.py raises it; the CLI prints it as one line)."""
from __future__ import annotations


class ArgsError(ValueError):
    """A command-line flag that cannot be used; the message names the flag and the fix."""
