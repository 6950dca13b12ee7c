"""One driver per experiment: a lock file inside the experiment folder, held while a driver runs it.

Two drivers on one experiment (the same --name started twice, or --resume while the first still runs) both
write Tune's state and checkpoints: trials run twice, checkpoints vanish under the other driver. The lock
(core/lockfile.py: created atomically, names its holder, touched every HEARTBEAT_S seconds) is taken over when
its holder is gone: on this host when its pid no longer runs, on any host when its heartbeat is older than
STALE_S (a crashed node). Remote storage (s3://, gs://) has no such primitive here: there the lock is skipped.
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from core import lockfile
from core.lockfile import HEARTBEAT_S, STALE_S  # noqa: F401  (re-exported: the tests and docs name them here)

from .args import ArgsError, SearchArgs

LOCK_FILE = ".driver.lock"


class ExperimentLocked(ArgsError):
    """Another live driver holds the experiment."""


def _locked(directory: Path, err: lockfile.LockHeld) -> ExperimentLocked:
    return ExperimentLocked(
        f"experiment {directory.name!r} is being run by another driver ({err.describe()}). Two drivers on one "
        f"experiment would run trials twice and delete each other's checkpoints. Fix: wait for it to finish (or "
        f"stop it), then --resume; a driver that crashed releases the lock within {STALE_S:.0f} s.")


def acquire(directory: Path, me: dict) -> Path:
    """Create the lock or take over a stale one; ExperimentLocked when a live driver holds it."""
    try:
        return lockfile.acquire(Path(directory) / LOCK_FILE, me)
    except lockfile.LockHeld as err:
        raise _locked(Path(directory), err) from None


@contextmanager
def experiment_lock(args: SearchArgs) -> Iterator[None]:
    """Hold the experiment's lock (local or NFS storage) for the body, with a heartbeat; released after."""
    if not args.is_local_storage:
        yield
        return
    directory = Path(args.experiment_path)
    created = not directory.exists()
    try:
        with ExitStack() as stack:
            try:
                stack.enter_context(lockfile.held(directory / LOCK_FILE))
            except lockfile.LockHeld as err:
                raise _locked(directory, err) from None
            yield
    finally:
        if created and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()   # refused before anything was written: leave no empty experiment behind
