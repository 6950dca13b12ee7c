"""search/records.py + results/trial_record.py: every trial keeps its own trial.json, and results/ reads it."""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from types import SimpleNamespace

from results.experiment_dir import read_experiment
from results.trial_record import RECORD_FILE, RECORD_FORMAT
from search.records import TrialRecords


def fake_trial(root: Path, trial_id: str) -> SimpleNamespace:
    (root / f"trial_{trial_id}").mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(trial_id=trial_id, config={"lr": 1e-3, "epochs": 3}, path=str(root / f"trial_{trial_id}"))


def report(epoch: int, r1: float, checkpoint: int) -> dict:
    return {"epoch": epoch, "recall_at_1": r1, "weighted_recall": 2 * r1, "training_iteration": epoch,
            "checkpoint_dir_name": f"checkpoint_{checkpoint:06d}", "config": {"lr": 1e-3}, "trial_id": "aaaa0001"}


def record_of(root: Path, trial_id: str) -> dict:
    return json.loads((root / f"trial_{trial_id}" / RECORD_FILE).read_text())


def test_a_trial_record_follows_its_trial_through_a_failure_and_a_resume(tmp_path):
    records = TrialRecords(str(tmp_path))
    records.setup()
    trial = fake_trial(tmp_path, "aaaa0001")
    records.on_trial_start(0, [], trial)
    records.on_trial_result(1, [], trial, report(1, 10.0, 0))
    records.on_trial_recover(2, [], trial)          # failed; Tune retries it from checkpoint 0
    records.on_trial_result(3, [], trial, report(2, 12.0, 1))
    record = record_of(tmp_path, "aaaa0001")
    assert record["format"] == RECORD_FORMAT and record["status"] == "RUNNING" and record["num_failures"] == 1
    assert [e["epoch"] for e in record["epochs"]] == [1, 2] and "config" not in record["epochs"][0]
    first_session = record["session_start"]

    # --resume: Tune restores the callback from tuner.pkl (no per-session state in it), then calls setup.
    resumed = pickle.loads(pickle.dumps(records))
    resumed.setup()
    resumed.on_trial_restore(0, [], trial)
    resumed.on_trial_result(1, [], trial, report(2, 13.0, 2))   # epoch 2 again: the later report wins
    resumed.on_trial_result(2, [], trial, report(3, 14.0, 3))
    resumed.on_trial_complete(3, [], trial)
    record = record_of(tmp_path, "aaaa0001")
    assert record["status"] == "TERMINATED" and record["num_failures"] == 1
    assert [(e["epoch"], e["recall_at_1"]) for e in record["epochs"]] == [(1, 10.0), (2, 13.0), (3, 14.0)]
    assert record["session_start"] > first_session


def test_results_read_the_records_without_any_tune_state(tmp_path):
    records = TrialRecords(str(tmp_path))
    records.setup()
    done, failed, left, resumed = (fake_trial(tmp_path, t) for t in ("aaaa0001", "bbbb0002", "cccc0003", "dddd0004"))
    for trial, r1 in ((done, 20.0), (failed, 5.0), (left, 30.0), (resumed, 25.0)):
        records.on_trial_start(0, [], trial)
        records.on_trial_result(1, [], trial, {**report(1, r1, 0), "trial_id": trial.trial_id})
    records.on_trial_complete(2, [], done)
    records.on_trial_error(2, [], failed)
    # A new driver session continues 'resumed'; 'left' stays RUNNING from the old one: abandoned.
    later = TrialRecords(str(tmp_path))
    later.setup()
    later.session_start += 10
    later.on_trial_restore(0, [], resumed)

    exp = read_experiment(tmp_path)
    assert exp.state_file is None and not list(tmp_path.glob("experiment_state-*"))
    by_id = {t.trial_id: t for t in exp.trials}
    assert by_id["aaaa0001"].status == "TERMINATED" and by_id["aaaa0001"].rows[0]["recall_at_1"] == 20.0
    assert by_id["bbbb0002"].status == "ERROR" and by_id["bbbb0002"].num_failures == 1
    assert by_id["cccc0003"].status == "ABANDONED" and not by_id["cccc0003"].in_state
    assert by_id["dddd0004"].status == "RUNNING" and by_id["dddd0004"].in_state


def test_a_damaged_record_falls_back_to_tunes_files_with_a_warning(tmp_path):
    trial_dir = tmp_path / "trial_aaaa0001"
    trial_dir.mkdir()
    (trial_dir / RECORD_FILE).write_text('{"format": "motion-retrieval-search/trial@1", "epo')
    (trial_dir / "result.json").write_text(json.dumps(report(1, 9.0, 0)) + "\n")
    exp = read_experiment(tmp_path)
    assert exp.trials[0].rows[0]["recall_at_1"] == 9.0
    assert any(f"{RECORD_FILE} is unreadable" in w for w in exp.warnings)


def test_an_ended_trial_that_tune_starts_again_keeps_its_record_ended(tmp_path):
    """A driver killed after a trial ended but before Tune's saved state knew it: --resume starts the trial again.
    Its record must still say TERMINATED while it restarts (the trainable reads it to report where the trial
    ended instead of training it anew), and the repeated last report without a checkpoint keeps the epoch's own."""
    records = TrialRecords(str(tmp_path))
    records.setup()
    trial = fake_trial(tmp_path, "aaaa0001")
    records.on_trial_start(0, [], trial)
    records.on_trial_result(1, [], trial, report(1, 10.0, 0))
    records.on_trial_complete(2, [], trial)          # stopped early by ASHA after epoch 1; then the driver dies

    resumed = pickle.loads(pickle.dumps(records))
    resumed.setup()
    resumed.on_trial_start(0, [], trial)             # Tune's state had it PENDING: a fresh start
    assert record_of(tmp_path, "aaaa0001")["status"] == "TERMINATED"
    again = {k: v for k, v in report(1, 10.0, 0).items() if k != "checkpoint_dir_name"}
    resumed.on_trial_result(1, [], trial, {**again, "checkpoint_dir_name": None})
    record = record_of(tmp_path, "aaaa0001")
    assert record["status"] == "TERMINATED"
    assert [(e["epoch"], e["checkpoint_dir_name"]) for e in record["epochs"]] == [(1, "checkpoint_000000")]
    resumed.on_trial_complete(2, [], trial)
    assert record_of(tmp_path, "aaaa0001")["status"] == "TERMINATED"

    # A trial the earlier session left RUNNING starts as RUNNING.
    other = fake_trial(tmp_path, "bbbb0002")
    records.on_trial_start(0, [], other)
    later = pickle.loads(pickle.dumps(records))
    later.setup()
    later.on_trial_start(0, [], other)
    assert record_of(tmp_path, "bbbb0002")["status"] == "RUNNING"
