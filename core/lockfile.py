"""A lock file that names its holder: one writer at a time for a folder (an experiment, its ensemble).

Created with O_CREAT | O_EXCL (atomic on local disks and on NFS v3+), it holds the holder's host, pid, start time
and command, and is touched every ``heartbeat_s`` seconds while held. A lock whose holder is gone is taken over:
on this host when its pid no longer runs, on any host when its heartbeat is older than ``stale_s`` (a crashed node).
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

HEARTBEAT_S = 10.0
STALE_S = 6 * HEARTBEAT_S


class LockHeld(RuntimeError):
    """Another live process holds the lock; ``holder`` is what it wrote into it."""

    def __init__(self, lock: Path, holder: dict):
        self.lock, self.holder = lock, holder
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
        super().__init__(f"{lock} is held by pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {since}")

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.holder.get("started", 0)))
        return f"pid {self.holder.get('pid', '?')} on {self.holder.get('host', '?')}, since {since}"


def me() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(), "command": " ".join(sys.argv)}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # it exists, owned by someone else
        return True
    return True


def holder_of(lock: Path) -> dict | None:
    """The lock's content, or None when it vanished; {} while it is being written (treated as held, fresh)."""
    try:
        return json.loads(lock.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _stale(lock: Path, holder: dict, stale_s: float) -> bool:
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return True
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        return not _pid_alive(holder["pid"]) or age > stale_s
    return age > stale_s


def _create(lock: Path, content: dict) -> bool:
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump(content, fh)
    return True


def acquire(lock: Path, content: dict, stale_s: float = STALE_S) -> Path:
    """Create ``lock`` or take over a stale one; ``LockHeld`` when a live process holds it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):   # lost a race for a stale lock: look again
        if _create(lock, content):
            return lock
        holder = holder_of(lock)
        if holder is None:
            continue
        if not _stale(lock, holder, stale_s):
            raise LockHeld(lock, holder)
        stale = lock.with_name(f"{lock.name}.stale-{os.getpid()}")
        try:
            os.replace(lock, stale)   # only one of two racing processes moves the stale lock away
            stale.unlink()
        except FileNotFoundError:
            pass
    raise LockHeld(lock, holder_of(lock) or {})


@contextlib.contextmanager
def every(interval_s: float, step: Callable[[], bool | None], name: str) -> Iterator[None]:
    """Call ``step`` every ``interval_s`` seconds in a daemon thread while the block runs; it stops early when
    ``step`` returns False. The thread is stopped (and waited for, briefly) when the block ends."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            if step() is False:
                return

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@contextlib.contextmanager
def held(lock: Path, heartbeat_s: float = HEARTBEAT_S, stale_s: float = STALE_S) -> Iterator[Path]:
    """Hold ``lock`` for the block (``LockHeld`` if a live process has it), touched every ``heartbeat_s``."""
    content = me()
    acquire(lock, content, stale_s)

    def heartbeat() -> bool:
        try:
            os.utime(lock)
            return True
        except OSError:   # removed by hand or the disk went away: nothing to keep alive
            return False

    try:
        with every(heartbeat_s, heartbeat, f"lock-heartbeat-{lock.name}"):
            yield lock
    finally:
        if (holder_of(lock) or {}).get("pid") == content["pid"]:
            lock.unlink(missing_ok=True)
