"""SIGKILL of the search driver (no Ctrl+C handler runs, no final save), then ``run_search.py --resume``.

What Tune guarantees (Ray 2.60) and what this test pins down:
  * The driver saves the experiment state (experiment_state-*.json + the searcher's pickle) at most every
    TUNE_GLOBAL_CHECKPOINT_S seconds ("auto": >= 10 s) and whenever a trial has registered num_to_keep new
    checkpoints.  A SIGKILL loses what happened since: here the period is an hour, so the state lags
    deterministically (trial 1 saved after its 2nd epoch, trial 2 not saved at all).
  * --resume continues trial 1 from its last checkpoint in the state (epoch 2), not from epoch 1.
  * Trial 2 is unknown to the restored state AND to the restored searcher, which therefore suggests the same
    config again under a new trial id: the search still ends with exactly num_samples trials, none twice.
    The lost trial's folder stays on disk; results/ lists it as ABANDONED (never ranked or ensembled).
  * Resuming the finished experiment again only reports it (no Ray, no trial); see also the SIGINT test in
    tests/search/test_search.py.
"""
from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import psutil
import pyarrow.parquet as pq

from tests.faults.procs import (PY, REPO, cleanup_env, descendants, kill_all, result_rows, subprocess_env,
                                trial_ids_in_state, wait_for)

SAMPLES, EPOCHS = 3, 3
SEARCHED = ("lr", "dropout", "temperature", "mse_weight", "uniformity_weight", "weight_decay", "batch_size")


def lost_trial(experiment: Path) -> tuple[Path, set[str]] | None:
    """(a trial folder with a checkpoint that the newest experiment state does not know, the ids it knows)."""
    known = trial_ids_in_state(experiment)
    if known is None:
        return None
    for trial_dir in sorted(experiment.glob("trial_*")):
        if trial_dir.name.removeprefix("trial_") not in known and (trial_dir / "checkpoint_000000").is_dir():
            return trial_dir, known
    return None


def state_entry(experiment: Path, trial_id: str) -> dict:
    """Trial + run metadata of one trial in the newest experiment_state-*.json."""
    data = json.loads(sorted(experiment.glob("experiment_state-*.json"))[-1].read_text())
    for trial_json, meta_json in data["trial_data"]:
        trial = json.loads(trial_json)
        if trial["trial_id"] == trial_id:
            return {**json.loads(meta_json), **trial}
    raise KeyError(trial_id)


def sample_of(config: dict) -> tuple:
    return tuple(config[k] for k in SEARCHED)


def test_sigkill_driver_then_resume_finishes_every_trial_once(tmp_path):
    name = "killed"
    exp = tmp_path / name
    cmd = [PY, str(REPO / "run_search.py"), "--storage", str(tmp_path), "--name", name]
    env = subprocess_env(TUNE_GLOBAL_CHECKPOINT_S="3600")
    log = open(tmp_path / "driver1.log", "w")
    driver = psutil.Popen(cmd + ["--smoke-test", "--no-wandb", "--num-samples", str(SAMPLES), "--max-epochs",
                                 str(EPOCHS), "--grace-period", str(EPOCHS), "--max-concurrent", "1",
                                 "--ensemble-top-k", "0"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    ray_processes: list[psutil.Process] = []
    try:
        lost, saved = wait_for(lambda: lost_trial(exp), 150, "a trial the experiment state does not know yet",
                               alive=driver)
        ray_processes = descendants(driver.pid)
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
    finally:
        ray_processes += descendants(driver.pid)
        if driver.poll() is None:
            driver.kill()
        kill_all(ray_processes)  # Ray's agents outlive a SIGKILLed driver for a while
        log.close()
        cleanup_env(env)
    # The state on disk lags: it holds trial 1 only (max_concurrent=1), as of its 2nd checkpoint.
    (first,) = saved
    assert state_entry(exp, first)["status"] == "RUNNING"
    assert state_entry(exp, first)["last_result"]["training_iteration"] == EPOCHS - 1

    env = subprocess_env()
    try:
        resumed = subprocess.run(cmd + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-4000:]
        again = subprocess.run(cmd + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    finally:
        cleanup_env(env)

    trials = pq.read_table(exp / "trials.parquet").to_pylist()
    in_search = [t for t in trials if t["in_experiment_state"]]
    # Exactly num_samples trials, each finished once.
    assert len(in_search) == SAMPLES and len({t["trial_id"] for t in trials}) == len(trials)
    assert all(t["status"] == "TERMINATED" and t["epochs_run"] == EPOCHS for t in in_search), in_search
    assert sorted(t["rank"] for t in in_search) == list(range(1, SAMPLES + 1))
    # Trial 1 continued from the checkpoint in the state: epoch 1 ran once, the resumed run started later.
    rows = result_rows(exp / f"trial_{first}")
    assert [r["epoch"] for r in rows].count(1) == 1 and sorted({r["epoch"] for r in rows}) == [1, 2, 3]
    assert rows[-1]["iterations_since_restore"] < EPOCHS
    # The lost trial: kept, labelled, not ranked; its config (read from its checkpoint) was re-suggested by
    # the restored searcher, which proves the searcher continued instead of starting over ...
    (abandoned,) = [t for t in trials if not t["in_experiment_state"]]
    assert abandoned["trial_id"] == lost.name.removeprefix("trial_")
    assert abandoned["status"] == "ABANDONED" and abandoned["rank"] is None
    assert abandoned["error"].startswith("abandoned:")
    samples = [sample_of({k.removeprefix("config/"): v for k, v in t.items()}) for t in in_search]
    config_of_lost = {k.removeprefix("config/"): v for k, v in abandoned.items()}
    assert sample_of(config_of_lost) in samples
    # ... and no trial of the search repeats another one's sample (a fresh searcher would repeat trial 1's).
    assert len(set(samples)) == SAMPLES
    assert "ABANDONED" in resumed.stdout

    # Resuming the finished experiment only reports it.
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "already finished" in again.stdout and "top 10 by best val recall@1" in again.stdout
    assert "Traceback" not in again.stderr
    assert sorted(p.name for p in exp.glob("trial_*")) == sorted(f"trial_{t['trial_id']}" for t in trials)
    assert len(list(exp.glob("experiment_state-*.json"))) == 2  # killed session + resumed one: no third
