"""A full --storage disk: refused up front when the search cannot fit; named as such (with what to free and
--resume continues the same search after space is freed, even when the fill cut Tune's own state off) when it fills up mid-search; nothing left half-written by the refusal.

Uses a small tmpfs mounted by the test (root on Linux); skips, saying why, where mounting is not allowed.
"""
from __future__ import annotations

import errno
import json
import shutil
import subprocess
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from search.tune_state import LAST_GOOD_DIR
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


# The search alone: what these tests check is the search's own writes (--smoke-test would refit and ensemble after
# the resumed search, ~12 s on 2 cores; tests/search/test_refit.py covers those stages)
SMOKE = ("--smoke-test", "--no-wandb", "--max-concurrent", "1", "--refit-top-k", "0", "--ensemble-top-k", "0")


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
    assert "MiB free, but this search needs at least" in errors[0] and "a whole checkpoint of ~" in errors[0]
    assert "Started a local Ray instance" not in proc.stdout + proc.stderr
    assert list(disk.iterdir()) == []   # nothing written


def test_a_disk_that_fills_mid_search_is_named_and_resume_continues_the_same_search(small_disk):
    disk = small_disk(100)
    exp = disk / "fills"
    env = subprocess_env()
    try:
        driver = psutil.Popen(search(disk, "fills", *SMOKE, "--max-failures", "0"), cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: list(exp.glob("trial_*/checkpoint_000000")) and (exp / LAST_GOOD_DIR).is_dir(), 180,
                 "the first checkpoint and a kept copy of Tune's state", alive=driver)
        try:   # something else fills the disk (the driver writes too: it may fill up first, which is the point)
            with open(disk / "filler", "wb") as fh:
                fh.write(b"\0" * (shutil.disk_usage(disk).free - 256 * 1024))
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        out, err = driver.communicate(timeout=300)
        errors = [line for line in err.splitlines() if "run_search.py: error:" in line]
        assert driver.returncode == 2 and len(errors) == 1, (out[-2000:], err[-3000:])
        assert "the disk is full" in errors[0] and "Free at least" in errors[0] and "--resume" in errors[0]
        kept = json.loads(next((exp / LAST_GOOD_DIR).glob("experiment_state-*.json")).read_text())
        before = {json.loads(state)["trial_id"]: json.loads(state)["config"] for state, _ in kept["trial_data"]}
        assert before   # the copy was taken after the first trial had started

        (disk / "filler").unlink()
        # Tear Tune's newest state the way a full disk does (the race above does not always reach it).
        state = max(exp.glob("experiment_state-*.json"))
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
        resumed = subprocess.run(search(disk, "fills", "--resume"), cwd=REPO, env=env, capture_output=True,
                                 text=True, timeout=300)
    finally:
        cleanup_env(env)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    assert "continuing from the last complete copy of Tune's state" in resumed.stdout
    assert list((exp / ".torn_state").glob("*/" + state.name))   # the cut-off file is kept aside, not deleted
    trials = {t["trial_id"]: t for t in pq.read_table(exp / "trials.parquet").to_pylist() if t["in_experiment_state"]}
    assert len(trials) == 4 and all(t["status"] == "TERMINATED" for t in trials.values()), trials
    for trial_id, config in before.items():   # the same search: every trial Tune knew of is kept, config and all
        assert trial_id in trials, (trial_id, sorted(trials))
        assert json.loads((exp / f"trial_{trial_id}" / "params.json").read_text()) == config


def test_core_train_on_a_disk_that_fills_names_it_in_one_line(small_disk):
    """core.train --out on a disk with room for less than one checkpoint (a shutil.Error traceback before): one
    line naming --out and the full disk, exit 2, and nothing left behind."""
    disk = small_disk(1)
    out = disk / "run"
    proc = subprocess.run([PY, "-m", "core.train", "--smoke-test", "--epochs", "1", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"--out {out}: cannot write here (No space left on device). Fix: free space there" in errors[0], errors[0]
    assert not out.exists()   # no epoch fitted: nothing half-written, and no empty --out left behind
