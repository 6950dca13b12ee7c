"""Process helpers for the fault tests: environments for subprocesses, waiting, killing only our own processes.

Every subprocess gets its own short RAY_TMPDIR (Ray's sockets live there; unix socket paths are limited to
~107 bytes) so the local Ray clusters these tests start never share a session folder with other users' Ray.
Processes are only ever killed by PID, and only when they descend from a process this test started.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import psutil

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def subprocess_env(**extra: str) -> dict[str, str]:
    """os.environ (tests/conftest.py already set the offline/caching variables) + a private RAY_TMPDIR."""
    env = dict(os.environ)
    env["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="rf", dir="/tmp")
    env.update(extra)
    return env


def cleanup_env(env: dict[str, str]) -> None:
    """Remove the private RAY_TMPDIR that subprocess_env made (once the Ray that used it is gone)."""
    tmp = Path(env.get("RAY_TMPDIR", ""))
    if tmp.name.startswith("rf") and tmp.parent == Path("/tmp"):
        shutil.rmtree(tmp, ignore_errors=True)


def wait_for(condition: Callable[[], object], timeout: float, what: str, *, alive: psutil.Popen | None = None,
             poll: float = 0.1):
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout` seconds, or as
    soon as the process `alive` exits (its output then says why)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"process exited with {alive.returncode} while waiting for {what}")
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def kill_all(processes: list[psutil.Process], sig: int = signal.SIGKILL) -> None:
    """Kill the given (previously collected) processes, one PID at a time; gone ones are skipped."""
    for proc in processes:
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=10)


def record_rows(trial_dir: Path) -> list[dict]:
    """The reports in a trial's own record (trial.json, rewritten whole on every report, so it is current while
    the trial runs; Tune buffers result.json), each with the trial's full config under "config"."""
    try:
        record = json.loads((Path(trial_dir) / "trial.json").read_text())
    except (OSError, ValueError):
        return []
    return [{**row, "config": record.get("config", {})} for row in record.get("epochs", [])]


def result_rows(trial_dir: Path) -> list[dict]:
    """result.json lines of a trial folder (a line being written right now is skipped). Tune flushes the file
    lazily: complete once the search ended; use ``record_rows`` while it runs."""
    path = Path(trial_dir) / "result.json"
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def mount_tmpfs(point: Path, size_mib: int) -> str | None:
    """Mount a tmpfs of ``size_mib`` at ``point`` (an existing folder); None on success, else why not (the
    caller skips: mounting needs root on Linux)."""
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(point)],
                          capture_output=True, text=True)
    return None if proc.returncode == 0 else (proc.stderr.strip() or "mount failed")


def remount_read_only(point: Path) -> str | None:
    proc = subprocess.run(["mount", "-o", "remount,ro", str(point)], capture_output=True, text=True)
    return None if proc.returncode == 0 else (proc.stderr.strip() or "remount failed")


def unmount(point: Path) -> None:
    subprocess.run(["umount", "-l", str(point)], capture_output=True)
