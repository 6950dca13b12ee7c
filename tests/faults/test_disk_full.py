"""A full --storage disk: refused up front when the search cannot fit; named as such (with what to free and
whether --resume can continue) when it fills up mid-search; nothing left half-written by the refusal.

Uses a small tmpfs mounted by the test (root on Linux); skips, saying why, where mounting is not allowed.
"""
from __future__ import annotations

import errno
import shutil
import subprocess
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from tests.faults.procs import PY, REPO, cleanup_env, mount_tmpfs, subprocess_env, unmount, wait_for


@pytest.fixture
def small_disk(tmp_path, request):
    def mount(size_mib: int) -> Path:
        point = tmp_path / f"disk{size_mib}"
        point.mkdir()
        why = mount_tmpfs(point, size_mib)
        if why:
            pytest.skip(f"cannot mount a tmpfs here ({why}): needs root on Linux")
        request.addfinalizer(lambda: unmount(point))
        return point
    return mount


def search(storage: Path, name: str, *extra: str) -> list[str]:
    return [PY, str(REPO / "run_search.py"), "--storage", str(storage), "--name", name, *extra]


SMOKE = ("--smoke-test", "--no-wandb", "--max-concurrent", "1")


def test_a_search_that_cannot_fit_is_refused_before_ray_starts(small_disk):
    disk = small_disk(9)
    env = subprocess_env()
    try:
        proc = subprocess.run(search(disk, "tight", *SMOKE), cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)
    finally:
        cleanup_env(env)
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-3000:]
    assert "MiB free, but this search needs at least" in errors[0] and "checkpoints of ~" in errors[0]
    assert "Started a local Ray instance" not in proc.stdout + proc.stderr
    assert list(disk.iterdir()) == []   # nothing written


def test_a_disk_that_fills_mid_search_is_named_and_resume_never_starts_over_silently(small_disk):
    disk = small_disk(100)
    env = subprocess_env()
    try:
        driver = psutil.Popen(search(disk, "fills", *SMOKE, "--max-failures", "0"), cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: list(disk.glob("fills/trial_*/checkpoint_000000")), 180, "the first checkpoint",
                 alive=driver)
        try:   # something else fills the disk (the driver writes too: it may fill up first, which is the point)
            with open(disk / "filler", "wb") as fh:
                fh.write(b"\0" * (shutil.disk_usage(disk).free - 256 * 1024))
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        out, err = driver.communicate(timeout=300)
        errors = [line for line in err.splitlines() if "run_search.py: error:" in line]
        assert driver.returncode == 2 and len(errors) == 1, (out[-2000:], err[-3000:])
        assert "the disk is full" in errors[0] and "Free at least" in errors[0]

        (disk / "filler").unlink()
        time.sleep(0.5)
        resumed = subprocess.run(search(disk, "fills", "--resume"), cwd=REPO, env=env, capture_output=True,
                                 text=True, timeout=300)
    finally:
        cleanup_env(env)
    if "cannot be resumed" in errors[0]:   # Tune's own state was cut off: --resume says so, exit 2
        assert resumed.returncode == 2 and "is cut off" in resumed.stderr and "Fix: start a new --name" in resumed.stderr
    else:                                  # the state survived: the same search continues, every trial kept
        assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
        trials = pq.read_table(disk / "fills" / "trials.parquet").to_pylist()
        assert len([t for t in trials if t["in_experiment_state"]]) == 4
