"""One driver per experiment: a lock file inside the experiment folder, held while a driver runs it.

Two drivers on one experiment (the same --name started twice, or --resume while the first still runs) both
write Tune's state and checkpoints: trials run twice, checkpoints vanish under the other driver. The lock
is created with O_CREAT | O_EXCL (atomic on local disks and on NFS v3+), names its holder (host, pid,
command) and is touched every HEARTBEAT_S seconds. A lock whose holder is gone is taken over: on this host
when its pid no longer runs, on any host when its heartbeat is older than STALE_S (a crashed node).
Remote storage (s3://, gs://) has no such primitive here: there the lock is skipped with a note.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .args import ArgsError, SearchArgs
from .background import every

LOCK_FILE = ".driver.lock"
HEARTBEAT_S = 10.0
STALE_S = 6 * HEARTBEAT_S


class ExperimentLocked(ArgsError):
    """Another live driver holds the experiment."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # it exists, owned by someone else
        return True
    return True


def _holder(lock: Path) -> dict | None:
    """The lock's content, or None when it vanished or is being written (treated as held, fresh)."""
    try:
        return json.loads(lock.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _stale(lock: Path, holder: dict) -> bool:
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return True
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        return not _pid_alive(holder["pid"]) or age > STALE_S
    return age > STALE_S


def _create(lock: Path, me: dict) -> bool:
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump(me, fh)
    return True


def acquire(directory: Path, me: dict) -> Path:
    """Create the lock or take over a stale one; ExperimentLocked when a live driver holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / LOCK_FILE
    for _ in range(3):   # lost a race for a stale lock: look again
        if _create(lock, me):
            return lock
        holder = _holder(lock)
        if holder is None:
            continue
        if not _stale(lock, holder):
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
            raise ExperimentLocked(
                f"experiment {directory.name!r} is being run by another driver (pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')}, since {since}). Two drivers on one experiment would run trials twice "
                f"and delete each other's checkpoints. Fix: wait for it to finish (or stop it), then --resume; "
                f"a driver that crashed releases the lock within {STALE_S:.0f} s.")
        stale = lock.with_name(f"{LOCK_FILE}.stale-{os.getpid()}")
        try:
            os.replace(lock, stale)   # only one of two racing drivers moves the stale lock away
            stale.unlink()
        except FileNotFoundError:
            pass
    raise ExperimentLocked(f"experiment {directory.name!r}: could not take its lock {lock} (other drivers keep "
                           "racing for it). Fix: run one driver per experiment.")


@contextmanager
def experiment_lock(args: SearchArgs) -> Iterator[None]:
    """Hold the experiment's lock (local or NFS storage) for the body, with a heartbeat; released after."""
    if not args.is_local_storage:
        yield
        return
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), "command": " ".join(sys.argv)}
    directory = Path(args.experiment_path)
    created = not directory.exists()
    lock = acquire(directory, me)

    def heartbeat() -> bool:
        try:
            os.utime(lock)
            return True
        except OSError:   # removed by hand or the disk went away: nothing to keep alive
            return False

    try:
        with every(HEARTBEAT_S, heartbeat, "experiment-lock-heartbeat"):
            yield
    finally:
        if (_holder(lock) or {}).get("pid") == me["pid"]:
            lock.unlink(missing_ok=True)
        if created and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()   # refused before anything was written: leave no empty experiment behind
