"""A crash while ``ensemble/`` is being written never leaves a half-written ensemble, and rerunning works.

results/ensemble.py fills a hidden ``.ensemble-tmp-*`` folder and renames it into place.  The test SIGKILLs
``run_ensemble.py`` right after that temp folder appears (and a little later: mid-PNG, around the rename),
then checks that ``ensemble/`` is either absent or complete (every file parses), and that a rerun succeeds
and clears the leftovers.
"""
from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import torch

from results.demo_experiment import SMOKE_BASE, write_demo_experiment
from tests.faults.procs import PY, REPO, cleanup_env, subprocess_env

FILES = {"manifest.json", "metrics.json", "predictions_test.csv", "members_vs_ensemble.png"}
KILL_DELAYS_S = (0.0, 0.25)   # after the temp folder appears: at its first file, mid-PNG
MEMBERS = ({"motion_encoder": "tmr", "seed": 0}, {"motion_encoder": "gru", "seed": 1})


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ensemble-crash") / "exp"
    # synthetic:n=200 like every smoke search: its cached text features are reused.
    return write_demo_experiment(out, [{**SMOKE_BASE, "data": "synthetic:n=200", "epochs": 1, **m} for m in MEMBERS])


def assert_complete(ensemble: Path) -> None:
    """Every file an ensemble build writes is present and parses."""
    assert {p.name for p in ensemble.iterdir()} == FILES, sorted(p.name for p in ensemble.iterdir())
    manifest = json.loads((ensemble / "manifest.json").read_text())
    assert [m["member_id"] for m in manifest["members"]] and manifest["selected"]
    metrics = json.loads((ensemble / "metrics.json").read_text())
    assert "recall_at_1" in metrics["ensemble"]["test"]
    with open(ensemble / "predictions_test.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:3] == ["query_id", "query_text", "rank_1"] and len(rows) == metrics["split_sizes"]["test"] + 1
    assert all(len(r) == len(rows[0]) for r in rows)
    png = (ensemble / "members_vs_ensemble.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82")


def build_and_kill(experiment: Path, delay: float, env: dict) -> bool:
    """Start a build, SIGKILL it `delay` s after its temp folder appears. True if it was killed mid-write."""
    proc = psutil.Popen([PY, str(REPO / "run_ensemble.py"), str(experiment), "--top-k", "2", "--quiet"], cwd=REPO,
                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if any(experiment.glob(".ensemble-tmp-*")):
                time.sleep(delay)
                break
            time.sleep(0.002)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        assert killed or proc.returncode == 0, proc.stderr.read().decode()[-2000:]
        return killed
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


def test_killed_ensemble_builds_leave_no_half_written_files(experiment):
    env = subprocess_env()
    ensemble = experiment / "ensemble"
    try:
        for delay in KILL_DELAYS_S:   # no ensemble yet: it must stay absent, or appear complete
            killed = build_and_kill(experiment, delay, env)
            assert killed or delay > 0, "the build finished before it could be killed"
            print(f"killed {delay:.2f} s after the temp folder appeared: ensemble/ "
                  f"{'complete' if ensemble.exists() else 'absent'}")
            if ensemble.exists():
                assert_complete(ensemble)
        assert list(experiment.glob(".ensemble-tmp-*")), "no kill landed while the temp folder was being filled"

        rerun = subprocess.run([PY, str(REPO / "run_ensemble.py"), str(experiment), "--top-k", "2"], cwd=REPO,
                               env=env, capture_output=True, text=True, timeout=180)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert "wrote" in rerun.stdout
        assert_complete(ensemble)
        assert not list(experiment.glob(".ensemble-*")), "the rerun did not clear the crashed builds' temp folders"

        # A crash while REPLACING an ensemble keeps the previous one whole.
        before = (ensemble / "manifest.json").read_bytes()
        assert build_and_kill(experiment, 0.0, env)
    finally:
        cleanup_env(env)
    assert_complete(ensemble)
    assert (ensemble / "manifest.json").read_bytes() == before
