"""The experiment lock: one live driver per experiment; a dead driver's lock is taken over."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest

from search.lock import LOCK_FILE, STALE_S, ExperimentLocked, acquire


def holder(pid: int, host: str | None = None) -> dict:
    return {"host": host or socket.gethostname(), "pid": pid, "started": time.time(), "command": "run_search.py"}


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_live_driver_keeps_the_experiment(tmp_path):
    lock = acquire(tmp_path / "exp", holder(os.getppid()))   # a process that runs (pytest's parent)
    assert json.loads(lock.read_text())["pid"] == os.getppid()
    with pytest.raises(ExperimentLocked, match=rf"being run by another driver \(pid {os.getppid()} on "
                                               rf"{socket.gethostname()}.*Fix: wait for it"):
        acquire(tmp_path / "exp", holder(os.getpid()))
    assert json.loads(lock.read_text())["pid"] == os.getppid()   # untouched


def test_a_dead_drivers_lock_is_taken_over(tmp_path):
    acquire(tmp_path / "exp", holder(dead_pid()))
    lock = acquire(tmp_path / "exp", holder(os.getpid()))
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert [p.name for p in (tmp_path / "exp").iterdir()] == [LOCK_FILE]


def test_another_hosts_lock_counts_until_its_heartbeat_stops(tmp_path):
    lock = acquire(tmp_path / "exp", holder(1, host="other-node"))
    with pytest.raises(ExperimentLocked, match="on other-node"):
        acquire(tmp_path / "exp", holder(os.getpid()))
    old = time.time() - STALE_S - 5
    os.utime(lock, (old, old))   # its driver stopped touching it: the node died
    assert json.loads(acquire(tmp_path / "exp", holder(os.getpid())).read_text())["pid"] == os.getpid()
