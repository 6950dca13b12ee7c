"""One real search, two faults: a trial's Ray worker is SIGKILLed mid-epoch, and another trial diverges.

* The killed trial restarts from its last checkpoint (FailureConfig max_failures=1): its epochs continue instead
  of starting over, it ends TERMINATED with num_failures >= 1, and no trial is missing from trials.parquet.
* The diverging trial (TEMOS VAE at lr=0.9: the KL term explodes, a real config, no test hook) ends with a clear
  reason in its row (diverged=True, error="NonFiniteLossError: ...") while the other trials finish.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from search import resolve_args, run
from spaces import register_space
from spaces.registry import _SPACES
from tests.faults.procs import record_rows

SAMPLES, EPOCHS = 3, 3
DIVERGING_LR, STABLE_LR = 0.9, 3e-4


def fault_mix(trial):
    """Searched: dropout uniform [0, 0.2]. Fixed: TEMOS VAE (kl_weight=1, batch_size=128); lr=0.9 for the
    second trial (diverges: exploding gradients), 3e-4 for the others."""
    trial.suggest_float("dropout", 0.0, 0.2)
    # trial.number counts the study's asks: the same trial diverges in every run.
    lr = DIVERGING_LR if trial.number == 1 else STABLE_LR
    return {"loss": "temos", "vae": True, "kl_weight": 1.0, "batch_size": 128, "lr": lr}


class WorkerKiller(threading.Thread):
    """Watches the experiment and SIGKILLs the Ray worker of the first stable trial caught mid-run: the driver
    has registered its epoch-1 checkpoint and the worker has not saved its last epoch yet (checkpoint folders on
    disk are written by the worker itself, before it reports).

    Registered: Tune registers a checkpoint in a save step after the result's callbacks (trial.json's row) and
    only then lets the trial go on, so the epoch-2 row proves epoch 1's checkpoint registered. A kill between
    the epoch-1 row and that step restarts the trial from scratch (Tune knows no checkpoint of it yet)."""

    def __init__(self, experiment: Path):
        super().__init__(daemon=True)
        self.experiment, self.stop = experiment, threading.Event()
        self.killed: tuple[str, int] | None = None   # (trial folder, pid)

    def target(self) -> tuple[Path, psutil.Process] | None:
        for trial_dir in sorted(self.experiment.glob("trial_*")):
            rows = record_rows(trial_dir)
            if len(rows) < 2 or rows[0]["config"]["lr"] != STABLE_LR:
                continue
            saved = [int(p.name.rsplit("_", 1)[1]) for p in trial_dir.glob("checkpoint_*")]   # emptied ones too
            if max(saved, default=EPOCHS) + 1 >= EPOCHS:   # checkpoint_00000K holds epoch K + 1
                continue
            try:
                return trial_dir, psutil.Process(rows[-1]["pid"])   # the actor that runs this trial
            except psutil.NoSuchProcess:
                continue
        return None

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set() and self.killed is None:
            found = self.target()
            if found is not None:
                trial_dir, worker = found
                # Only a Ray worker that this test process started (ray_local's raylet is our child).
                assert any(p.pid == me for p in worker.parents()), worker
                assert worker.name().startswith("ray::"), worker.name()
                worker.send_signal(signal.SIGKILL)
                self.killed = (trial_dir.name, worker.pid)
            time.sleep(0.05)


@pytest.fixture(scope="module")
def faulty_search(ray_local, tmp_path_factory):
    register_space(fault_mix)
    storage = tmp_path_factory.mktemp("faults")
    args = resolve_args({"space": "fault_mix", "smoke_test": True, "num_samples": SAMPLES, "max_epochs": EPOCHS,
                         "grace_period": EPOCHS, "max_concurrent": 2, "max_failures": 1, "wandb": False,
                         "ensemble_top_k": 0, "storage": str(storage), "name": "faults"})
    killer = WorkerKiller(Path(args.experiment_path))
    killer.start()
    try:
        outcome = run(args)
    finally:
        killer.stop.set()
        _SPACES.pop("fault_mix", None)
    exp = Path(args.experiment_path)
    print(f"killed the worker (pid {killer.killed and killer.killed[1]}) of {killer.killed and killer.killed[0]}")
    return outcome, killer.killed, pq.read_table(exp / "trials.parquet").to_pylist(), \
        pq.read_table(exp / "epochs.parquet").to_pylist()


def test_a_killed_worker_resumes_from_its_checkpoint_and_nothing_is_lost(faulty_search):
    outcome, killed, trials, epochs = faulty_search
    assert killed is not None, "the worker was never killed"
    assert not outcome.interrupted and outcome.num_errors == 0
    # Every sampled trial is in trials.parquet exactly once, and finished.
    assert len(trials) == SAMPLES and len({t["trial_id"] for t in trials}) == SAMPLES
    assert all(t["status"] == "TERMINATED" for t in trials), [(t["trial_id"], t["status"]) for t in trials]
    victim = next(t for t in trials if Path(t["trial_dir"]).name == killed[0])
    assert victim["num_failures"] >= 1 and "actor died" in (victim["error"] or "")
    assert victim["epochs_run"] == EPOCHS and not victim["diverged"]
    assert sorted(e["epoch"] for e in epochs if e["trial_id"] == victim["trial_id"]) == list(range(1, EPOCHS + 1))
    # Restored, not retrained: epoch 1's row (the trial's own record keeps the latest report of each epoch) still
    # comes from the killed worker; a new worker, restored after the killed epoch, reported the last one.
    # (Not Tune's result.json: restarting a trial, Tune copies it back from storage, which may miss the newest lines.)
    rows = {r["epoch"]: r for r in record_rows(Path(victim["trial_dir"]))}
    assert sorted(rows) == list(range(1, EPOCHS + 1)), sorted(rows)
    assert rows[1]["pid"] == killed[1], (rows[1]["pid"], killed)
    assert rows[EPOCHS]["pid"] != killed[1] and rows[EPOCHS]["iterations_since_restore"] < EPOCHS


def test_a_diverging_trial_ends_with_its_reason_and_the_others_finish(faulty_search):
    outcome, _, trials, _ = faulty_search
    diverged = [t for t in trials if t["diverged"]]
    assert [t["config/lr"] for t in diverged] == [DIVERGING_LR]
    bad = diverged[0]
    assert bad["status"] == "TERMINATED" and not bad["stopped_early"]
    assert bad["error"].startswith("NonFiniteLossError: "), bad["error"]
    assert "became inf" in bad["error"] or "became nan" in bad["error"]
    assert "at epoch" in bad["error"] and "lr=0.9" in bad["error"]
    assert bad["last_recall_at_1"] == 0.0  # reported as a useless model: TPE learns to avoid it
    stable = [t for t in trials if not t["diverged"]]
    assert len(stable) == SAMPLES - 1 and all(t["epochs_run"] == EPOCHS for t in stable)
    assert "diverged" in outcome.leaderboard and bad["trial_id"] in outcome.leaderboard
