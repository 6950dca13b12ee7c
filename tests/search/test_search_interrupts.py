"""A real run_search.py driver stopped like Ctrl+C or `kill` (SIGTERM) mid-search, then --resume."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import optuna

from .drivers import REPO, epochs_of, history_of, interrupt_when, trials_of


def test_sigterm_stops_the_search_like_ctrl_c(tmp_path):
    """SIGTERM (`kill`, a job scheduler's preemption) is turned into Ctrl+C's graceful stop: exit 130, the
    --resume command, Tune's state saved, no C++ stack dump (what Ray's own handler printed)."""
    cmd = [sys.executable, str(REPO / "run_search.py"), "--storage", str(tmp_path), "--name", "termed"]
    out = interrupt_when(cmd + ["--smoke-test", "--no-wandb", "--num-samples", "2", "--max-epochs", "3",
                                "--grace-period", "3", "--max-concurrent", "1", "--ensemble-top-k", "0",
                                "--refit-top-k", "0"], tmp_path / "termed", "trial_*/checkpoint_000000",
                         timeout=120, sig=signal.SIGTERM)
    assert "--resume --name termed" in out and "SIGTERM received" not in out and "Traceback" not in out
    assert list((tmp_path / "termed").glob("experiment_state-*.json"))   # what --resume continues from


def test_sigint_then_resume_completes_every_trial_once(tmp_path, sig=signal.SIGINT):
    """Interrupt a real driver mid-search like Ctrl+C, then --resume: every trial finishes, none runs
    twice, and an interrupted trial continues from its last registered checkpoint."""
    name, samples, epochs = "interrupted", 3, 5
    cmd = [sys.executable, str(REPO / "run_search.py"), "--storage", str(tmp_path), "--name", name]
    # W&B stays on: its per-trial logging actors must not keep the interrupted driver waiting.
    exp = tmp_path / name
    # Interrupt once some trial has saved its SECOND epoch: by then the driver has registered its
    # first checkpoint, and the trial is still mid-way through its 5 epochs.
    out1 = interrupt_when(cmd + ["--smoke-test", "--num-samples", str(samples), "--max-epochs", str(epochs),
                                 "--grace-period", str(epochs), "--max-concurrent", "1", "--ensemble-top-k", "0",
                                 "--refit-top-k", "0"], exp, "trial_*/checkpoint_000001", timeout=120, sig=sig)
    assert "--resume --name interrupted" in out1
    assert "Traceback" not in out1
    before = {t.trial_id: t.last_result.get("training_iteration", 0) for t in trials_of(str(exp))}
    assert sum(before.values()) < samples * epochs  # really interrupted mid-search

    # Resumed from a copy in another folder (a moved or copied experiment): the copy continues in its own
    # optuna.db, not in the original's, whose URL Tune's pickled searcher holds.
    original, original_db = exp, (exp / "optuna.db").read_bytes()
    shutil.copytree(original, tmp_path / "moved" / name)
    exp = tmp_path / "moved" / name
    cmd = [sys.executable, str(REPO / "run_search.py"), "--storage", str(tmp_path / "moved"), "--name", name]
    second = subprocess.run(cmd + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    assert (original / "optuna.db").read_bytes() == original_db
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{exp / 'optuna.db'}")
    assert len(study.trials) == samples and all(t.state.is_finished() for t in study.trials)
    trials = trials_of(str(exp))
    assert len(trials) == samples and len({t.trial_id for t in trials}) == samples
    assert set(before) <= {t.trial_id for t in trials}
    resumed = [tid for tid, it in before.items() if 0 < it < epochs]
    assert resumed, f"no trial was stopped mid-way: {before}"
    for t in trials:
        assert t.status == "TERMINATED" and t.last_result["training_iteration"] == epochs
        seen = epochs_of(Path(t.path))
        if t.trial_id not in resumed:
            assert seen == list(range(1, epochs + 1)), (t.trial_id, seen)
            continue
        # Restored from its checkpoint, not retrained from epoch 1. Tune logs a result before it
        # registers that epoch's checkpoint, so a Ctrl+C in between makes the resumed trial redo
        # that one epoch (results/ keeps the later report): at most one epoch may repeat.
        assert sorted(set(seen)) == list(range(1, epochs + 1)), (t.trial_id, seen)
        assert seen.count(1) == 1 and len(seen) - len(set(seen)) <= 1, (t.trial_id, seen)
        assert history_of(t.path, "iterations_since_restore")[-1] < epochs
    wandb_trials = {r.name.rsplit("-", 1)[-1] for r in (exp / "wandb").glob("offline-run-*")}
    assert {t.trial_id for t in trials} <= wandb_trials
