"""results/trial_record.py: a trial's own record is read only when it has its schema's types; a damaged one is
named in one warning and the trial is read from Tune's files instead (as a torn one is)."""
from __future__ import annotations

import json

import pytest

from results.trial_record import RECORD_FILE, RECORD_FORMAT, read_record

GOOD_EPOCH = {"epoch": 1, "recall_at_1": 12.5, "weighted_recall": 20.0, "checkpoint_dir_name": "checkpoint_000000"}


def write(tmp_path, epochs):
    record = {"format": RECORD_FORMAT, "trial_id": "t1", "config": {"lr": 1e-3}, "status": "TERMINATED",
              "epochs": epochs}
    (tmp_path / RECORD_FILE).write_text(json.dumps(record))
    return tmp_path


def test_a_whole_record_is_read(tmp_path):
    warnings: list[str] = []
    record = read_record(write(tmp_path, [GOOD_EPOCH, {**GOOD_EPOCH, "epoch": 2, "checkpoint_dir_name": None}]),
                         warnings)
    assert record is not None and [e["epoch"] for e in record["epochs"]] == [1, 2] and warnings == []


@pytest.mark.parametrize("row, named", [
    ({**GOOD_EPOCH, "epoch": "2"}, "epoch '2' is not a whole number >= 1"),
    ({**GOOD_EPOCH, "epoch": True}, "epoch True is not a whole number >= 1"),
    ({**GOOD_EPOCH, "epoch": 0}, "epoch 0 is not a whole number >= 1"),
    ({**GOOD_EPOCH, "recall_at_1": "high"}, "epoch 1: recall_at_1 'high' is not a number"),
    ({**GOOD_EPOCH, "checkpoint_dir_name": 7}, "epoch 1: checkpoint_dir_name 7 is not a folder name"),
    (["epoch", 1], "an epoch row is list, not an object"),
])
def test_a_damaged_record_is_named_and_left_for_tunes_files(tmp_path, row, named):
    warnings: list[str] = []
    assert read_record(write(tmp_path, [GOOD_EPOCH, row]), warnings) is None
    assert warnings == [f"{tmp_path.name}/{RECORD_FILE} is damaged ({named}); read Tune's files instead."]
