"""``run_search.py`` entry: flags -> SearchArgs (all validated before Ray starts) -> search.run."""
from __future__ import annotations

import os
import sys
import threading
from typing import NoReturn, Sequence

from core.config import ConfigError
from core.interrupts import sigterm_is_ctrl_c
from core.data.errors import DataError
from spaces import list_spaces

from . import storage
from .args import ArgsError, SearchArgs, build_parser, check_resume_compatible, given_flags, resolve_args


def format_spaces() -> str:
    blocks = []
    for name, doc in list_spaces().items():
        body = "\n".join("    " + line if line else "" for line in doc.splitlines())
        blocks.append(f"{name}\n{body}")
    return "\n\n".join(blocks)


def args_from_argv(argv: Sequence[str] | None = None) -> SearchArgs | None:
    """Parsed + validated args; None when the command only lists spaces."""
    ns = build_parser().parse_args(argv)
    if ns.list_spaces:
        print(format_spaces())
        return None
    given = given_flags(ns)
    if not given.get("resume"):
        return resolve_args(given)
    # --resume: the stored flags define the search; the command line may only pick it.
    located = resolve_args({k: given[k] for k in ("name", "storage", "resume") if k in given})
    args_file = storage.join(located.experiment_path, storage.ARGS_FILE)
    if not storage.exists(args_file):
        raise ArgsError(f"--resume: no experiment {located.name!r} in {located.storage} "
                        f"({args_file} is missing). Check --name/--storage.")
    try:
        stored_json = storage.read_json(args_file)
    except (ValueError, UnicodeDecodeError) as e:   # cut off or edited by hand
        raise ArgsError(f"--resume: {args_file} is damaged ({type(e).__name__}: {str(e)[:120]}), so the search it "
                        "describes is unknown. Fix: start a new --name (its trials stay readable with python -m "
                        "results).") from None
    stored = SearchArgs.from_json(stored_json, where=args_file)
    return check_resume_compatible(stored, given, storage=located.storage)


def main(argv: Sequence[str] | None = None) -> int:
    args = None
    sigterm_is_ctrl_c()   # SIGTERM stops the driver like Ctrl+C from the first moment
    try:
        args = args_from_argv(argv)
        if args is None:
            return 0
        from .run import run  # imports ray: only once the flags are known to be good

        outcome = run(args)
    except (ArgsError, ConfigError, DataError) as e:  # bad flags, config values or data: no traceback
        print(f"run_search.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:   # Ctrl+C / SIGTERM outside Tune's own handling (start-up, refit plan, ensemble)
        if args is not None and storage.exists(storage.join(args.experiment_path, storage.ARGS_FILE)):
            print(f"\ninterrupted. Continue with:\n  python run_search.py --resume --name {args.name} "
                  f"--storage {args.storage}", file=sys.stderr)
        else:
            print("\ninterrupted before the search started: nothing to resume. Run the same command again.",
                  file=sys.stderr)
        return 130
    return 130 if outcome.interrupted else 0


def exit_now(code: int) -> NoReturn:
    """End the driver with ``code`` the way the interpreter would, minus its teardown of every loaded module: the
    exit handlers run, non-daemon threads are waited for and the standard streams flushed, then the process ends.
    With torch, Ray Tune and pandas loaded that teardown took ~1.3 s after the last line of every search, and every
    file the search writes is complete before then (written whole and renamed, or closed)."""
    try:
        for thread in threading.enumerate():   # what the interpreter waits for at exit
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
        import atexit

        atexit._run_exitfuncs()   # logging.shutdown, W&B's and Ray's own handlers
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)
