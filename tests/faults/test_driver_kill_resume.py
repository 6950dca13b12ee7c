"""SIGKILL of the search driver (no Ctrl+C handler runs, no final save), then ``run_search.py --resume``.

What Tune guarantees (Ray 2.60) and what this test pins down:
  * The driver saves the experiment state (experiment_state-*.json + the searcher's pickle) at most every
    TUNE_GLOBAL_CHECKPOINT_S seconds ("auto": >= 10 s) and whenever a trial has registered num_to_keep new
    checkpoints.  Our CheckpointConfig(num_to_keep=1) forces a save after every checkpoint, so a saved state
    never names a checkpoint that the score-ordered retention has deleted since (with num_to_keep=2 a resume
    failed on exactly that: the state named epoch 2, deleted once epoch 3 beat it).
  * Here the period is an hour, so only those forced saves happen.  A SIGKILL in trial 2's 2nd epoch
    (max_concurrent=1) leaves a state that knows trial 1 as finished and trial 2 as of its 1st epoch;
    --resume continues trial 2 from that checkpoint (its 1st epoch runs once) and the restored searcher
    suggests the rest: exactly num_samples trials, no sample twice.
  * A trial folder that an earlier driver session started but never saved (the kill landed between a trial's
    start and the next save) stays on disk; results/ lists it as ABANDONED, never ranked or ensembled.
  * Resuming the finished experiment again only reports it (no Ray, no trial); see also the SIGINT test in
    tests/search/test_search.py.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import psutil
import pyarrow.parquet as pq

from tests.faults.procs import (PY, REPO, cleanup_env, descendants, kill_all, result_rows, subprocess_env,
                                wait_for)

SAMPLES, EPOCHS = 3, 3
# Epochs of ~0.6 s on 2 cores (n=200 trains one in 0.2 s: too quick to be killed inside one). n=600, as the e2e test
# and the concurrent-driver test use: one set of text features for all three (n=1000 cost ~22 CPU-s of its own).
DATA = "synthetic:n=600"
SEARCHED = ("lr", "dropout", "temperature", "mse_weight", "uniformity_weight", "weight_decay", "batch_size")


def registers_a_checkpoint(meta: dict) -> bool:
    """Whether a trial's saved state names a checkpoint. Tune records an epoch's result, then registers its
    checkpoint, and may save its state in between: such a trial restarts from scratch on --resume (by design,
    search/trainable.py), which this test does not ask about (tests/faults/test_kill_points.py stops drivers at
    random moments). The checkpoint manager is saved as pickled bytes: a registered checkpoint's path is in them."""
    manager = meta.get("checkpoint_manager") or {}
    raw = bytes.fromhex(manager["value"]) if isinstance(manager, dict) and "value" in manager else str(manager).encode()
    return b"checkpoint_0" in raw


def second_trial_in_its_second_epoch(experiment: Path) -> tuple[str, str] | None:
    """(trial 1, trial 2) once the saved state holds trial 1 finished and trial 2 running after 1 epoch, with its
    checkpoint registered."""
    try:
        data = json.loads(sorted(experiment.glob("experiment_state-*.json"))[-1].read_text())
    except (IndexError, OSError, ValueError):   # not saved yet, or being rewritten in place
        return None
    done, running = [], []
    for trial_json, meta_json in data["trial_data"]:
        trial, meta = json.loads(trial_json), json.loads(meta_json)
        iteration = (meta.get("last_result") or {}).get("training_iteration", 0)
        if iteration == EPOCHS:
            done.append(trial["trial_id"])
        elif iteration >= 1 and registers_a_checkpoint(meta):
            running.append(trial["trial_id"])
    return (done[0], running[0]) if len(done) == 1 and len(running) == 1 else None


def state_entry(experiment: Path, trial_id: str) -> dict:
    """Trial + run metadata of one trial in the newest experiment_state-*.json."""
    data = json.loads(sorted(experiment.glob("experiment_state-*.json"))[-1].read_text())
    for trial_json, meta_json in data["trial_data"]:
        trial, meta = json.loads(trial_json), json.loads(meta_json)
        if trial["trial_id"] == trial_id:
            return {**meta, **trial}
    raise KeyError(trial_id)


def sample_of(config: dict) -> tuple:
    return tuple(config[k] for k in SEARCHED)


def fake_abandoned_copy(experiment: Path, source_id: str) -> str:
    """A trial folder from before the newest driver session that its state does not list: what a SIGKILL
    between a trial's start and the next state save leaves (rare with a save per checkpoint)."""
    abandoned_id = "0bad0bad"
    target = experiment / f"trial_{abandoned_id}"
    shutil.copytree(experiment / f"trial_{source_id}", target)
    lines = (target / "result.json").read_text().splitlines()[:1]
    (target / "result.json").write_text("".join(
        json.dumps({**json.loads(line), "trial_id": abandoned_id}) + "\n" for line in lines))
    session_start = float(json.loads(sorted(experiment.glob("experiment_state-*.json"))[-1].read_text())
                          ["stats"]["start_time"])
    os.utime(target / "params.json", (session_start - 3600, session_start - 3600))
    # Its own record as that driver left it: one epoch, still RUNNING, last written by the older session.
    record = json.loads((target / "trial.json").read_text())
    record.update(trial_id=abandoned_id, status="RUNNING", session_start=record["session_start"] - 3600,
                  epochs=[{**record["epochs"][0], "trial_id": abandoned_id}])
    (target / "trial.json").write_text(json.dumps(record))
    return abandoned_id


def test_sigkill_driver_then_resume_finishes_every_trial_once(tmp_path):
    name = "killed"
    exp = tmp_path / name
    cmd = [PY, str(REPO / "run_search.py"), "--storage", str(tmp_path), "--name", name]
    # Tune saves its state on every step of its loop: the kill lands when that state holds trial 1 finished and
    # trial 2 mid-way (tests/faults/test_kill_points.py kills at random moments with Tune's own save period)
    env = subprocess_env(TUNE_GLOBAL_CHECKPOINT_S="0")
    log = open(tmp_path / "driver1.log", "w")
    driver = psutil.Popen(cmd + ["--smoke-test", "--no-wandb", "--num-samples", str(SAMPLES), "--max-epochs",
                                 str(EPOCHS), "--grace-period", str(EPOCHS), "--max-concurrent", "1",
                                 "--ensemble-top-k", "0", "--refit-top-k", "0", "--data", DATA],
                          cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    ray_processes: list[psutil.Process] = []
    try:
        first, second = wait_for(lambda: second_trial_in_its_second_epoch(exp), 150,
                                 "trial 2 saved with its 1st checkpoint", alive=driver, poll=0.02)
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
    # The state on disk: trial 1 as of its last checkpoint, trial 2 as of a checkpoint that still exists.
    assert state_entry(exp, first)["last_result"]["training_iteration"] == EPOCHS
    kept = sorted(p.name for p in (exp / f"trial_{first}").glob("checkpoint_*") if not (p / "retired.json").exists())
    assert 1 <= len(kept) <= 2, kept   # the best and the latest hold a model; superseded ones were emptied
    saved_iteration = state_entry(exp, second)["last_result"]["training_iteration"]
    assert 1 <= saved_iteration < EPOCHS

    env = subprocess_env()
    try:
        resumed = subprocess.run(cmd + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-4000:]
        assert "Could not recover from checkpoint" not in resumed.stdout + resumed.stderr
        abandoned_id = fake_abandoned_copy(exp, second)
        again = subprocess.run(cmd + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    finally:
        cleanup_env(env)

    trials = pq.read_table(exp / "trials.parquet").to_pylist()
    in_search = [t for t in trials if t["in_experiment_state"]]
    # Exactly num_samples trials, each finished once.
    assert len(in_search) == SAMPLES and len({t["trial_id"] for t in trials}) == len(trials)
    assert all(t["status"] == "TERMINATED" and t["epochs_run"] == EPOCHS for t in in_search), in_search
    assert sorted(t["rank"] for t in in_search) == list(range(1, SAMPLES + 1))
    # Trial 2 continued from the checkpoint in the state: its saved epochs ran once, the resumed run later.
    rows = result_rows(exp / f"trial_{second}")
    epochs = [r["epoch"] for r in rows]
    assert all(epochs.count(e) == 1 for e in range(1, saved_iteration + 1)), epochs
    assert sorted(set(epochs)) == list(range(1, EPOCHS + 1))
    assert rows[-1]["iterations_since_restore"] < EPOCHS
    # The restored searcher continued: no trial of the search repeats another one's sample.
    samples = [sample_of({k.removeprefix("config/"): v for k, v in t.items()}) for t in in_search]
    assert len(set(samples)) == SAMPLES

    # Resuming the finished experiment only reports it, with the unsaved folder kept, labelled, not ranked.
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "already finished" in again.stdout and "top 10 by best val recall@1" in again.stdout
    assert "Traceback" not in again.stderr
    (abandoned,) = [t for t in trials if not t["in_experiment_state"]]
    assert abandoned["trial_id"] == abandoned_id and abandoned["status"] == "ABANDONED"
    assert abandoned["rank"] is None and abandoned["error"].startswith("abandoned:")
    assert "ABANDONED" in again.stdout
    assert sorted(p.name for p in exp.glob("trial_*")) == sorted(f"trial_{t['trial_id']}" for t in trials)
