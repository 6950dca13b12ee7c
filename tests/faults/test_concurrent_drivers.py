"""Two drivers on one experiment: the same --name started twice at once, and --resume while it runs.

Exactly one driver runs the experiment; the other exits 2 with one line (before Ray starts) and touches
nothing; the survivor ends with num_samples trials, one experiment state, and its lock released.
"""
from __future__ import annotations

import subprocess

import psutil
import pyarrow.parquet as pq

from search.lock import LOCK_FILE
from tests.faults.procs import PY, REPO, cleanup_env, subprocess_env, wait_for

SAMPLES = 3


def test_one_driver_per_experiment(tmp_path):
    exp = tmp_path / "twice"
    cmd = [PY, str(REPO / "run_search.py"), "--storage", str(tmp_path), "--name", "twice"]
    flags = ["--smoke-test", "--no-wandb", "--num-samples", str(SAMPLES), "--max-epochs", "2", "--max-concurrent",
             "1", "--ensemble-top-k", "0", "--refit-top-k", "0", "--data", "synthetic:n=600"]
    envs = [subprocess_env() for _ in range(3)]
    logs = [open(tmp_path / f"driver{i}.log", "w+") for i in range(2)]
    try:
        drivers = [psutil.Popen(cmd + flags, cwd=REPO, env=envs[i], stdout=logs[i], stderr=subprocess.STDOUT)
                   for i in range(2)]
        wait_for(lambda: any(d.poll() is not None for d in drivers), 120, "one of the two drivers to give up")
        (loser,) = [i for i, d in enumerate(drivers) if d.poll() is not None]
        winner = drivers[1 - loser]
        assert drivers[loser].returncode == 2 and winner.poll() is None
        logs[loser].seek(0)
        said = logs[loser].read()
        assert "Traceback" not in said and ("being run by another driver" in said or "already exists" in said), said

        wait_for(lambda: (exp / LOCK_FILE).is_file() and list(exp.glob("trial_*")), 120, "the first trial",
                 alive=winner)
        resumed = subprocess.run(cmd + ["--resume"], cwd=REPO, env=envs[2], capture_output=True, text=True,
                                 timeout=120)
        assert resumed.returncode == 2, resumed.stdout[-2000:] + resumed.stderr[-2000:]
        errors = [line for line in resumed.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1 and f"pid {winner.pid}" in errors[0] and "Fix: wait for it" in errors[0], errors
        assert "Traceback" not in resumed.stderr

        assert winner.wait(300) == 0
    finally:
        for d in locals().get("drivers", []):
            if d.poll() is None:
                d.kill()
        for log in logs:
            log.close()
        for env in envs:
            cleanup_env(env)
    trials = pq.read_table(exp / "trials.parquet").to_pylist()
    assert len(trials) == SAMPLES and all(t["status"] == "TERMINATED" for t in trials)
    assert len(list(exp.glob("experiment_state-*.json"))) == 1
    assert not (exp / LOCK_FILE).exists()
