"""Read-only places: a read-only dataset/feature cache never stops training; a read-only experiment or --out
is one clear error (not a traceback); a read-only experiment can still be queried.

Uses a tmpfs mounted by the test and remounted read-only (root on Linux; running as root, permissions alone
would not stop a write); skips, saying why, where mounting is not allowed.
"""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.faults.procs import PY, REPO, mount_tmpfs, remount_read_only, unmount


@pytest.fixture(scope="module")
def read_only(tmp_path_factory):
    """(a read-only folder holding a finished smoke experiment with its ensemble, an empty read-only cache)."""
    point = tmp_path_factory.mktemp("ro")
    why = mount_tmpfs(point, 64)
    if why:
        pytest.skip(f"cannot mount a tmpfs here ({why}): needs root on Linux")
    try:
        built = subprocess.run([PY, str(REPO / "run_ensemble.py"), "--smoke-test", str(point / "exp"), "--quiet"],
                               cwd=REPO, capture_output=True, text=True, timeout=600)
        assert built.returncode == 0, built.stderr[-3000:]
        (point / "cache").mkdir()
        why = remount_read_only(point)
        if why:
            pytest.skip(f"cannot remount read-only ({why})")
        yield point
    finally:
        unmount(point)


def run(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PY, *argv], cwd=REPO, capture_output=True, text=True, timeout=600, env=env)


def one_error(proc: subprocess.CompletedProcess) -> str:
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return errors[0]


def test_a_read_only_experiment_is_one_error_to_write_and_can_still_be_queried(read_only):
    exp = read_only / "exp"
    assert "cannot write here (Read-only file system)" in one_error(run("-m", "results", str(exp)))
    message = one_error(run(str(REPO / "run_ensemble.py"), str(exp), "--top-k", "3"))
    assert "cannot write the ensemble here (read-only" in message and "Fix: copy the folder somewhere" in message
    query = run(str(REPO / "run_ensemble.py"), str(exp), "--query", "two people shake hands", "--top", "2")
    assert query.returncode == 0 and "rank" in query.stdout, query.stderr[-2000:]


def test_core_train_out_on_a_read_only_filesystem(read_only):
    message = one_error(run("-m", "core.train", "--smoke-test", "--epochs", "1", "--out", str(read_only / "run")))
    assert "--out " in message and "cannot write here (Read-only file system)" in message


def test_a_read_only_cache_only_costs_caching(read_only, tmp_path):
    import os

    env = {**os.environ, "MOTION_SEARCH_CACHE": str(read_only / "cache")}
    proc = run("-m", "core.train", "--smoke-test", "--epochs", "1", "--out", str(tmp_path / "run"), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "could not write the dataset cache" in proc.stdout + proc.stderr
    assert "could not write the cache under" in proc.stderr   # the text features
    assert (tmp_path / "run" / "last" / "checkpoint.pt").is_file()
    shutil.rmtree(tmp_path / "run")
