"""search/tune_state.py: the kept complete copy of Tune's state, and putting it back over a cut-off one."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from search.trainable import usable_checkpoint
from search.tune_state import (LAST_GOOD_DIR, TORN_DIR, is_complete, keeping_last_good_state,
                               last_good_copy, newest_state_files, restore_last_good, snapshot, torn_state_file)


def write_state(exp: Path, session: str, trials: int) -> dict[str, bytes]:
    """One set of Tune's three state files (same kinds and encodings Tune writes) for a session."""
    files = {
        f"experiment_state-{session}.json": json.dumps({"trial_data": [[f"t{i}", {}] for i in range(trials)]}).encode(),
        f"search_gen_state-{session}.json": pickle.dumps({"counter": trials}, protocol=5),
        f"searcher-state-{session}.pkl": pickle.dumps({"study": list(range(trials))}, protocol=5),
    }
    exp.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (exp / name).write_bytes(data)
    return files


def cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("name, data, complete", [
    ("experiment_state-a.json", b'{"trial_data": []}', True),
    ("experiment_state-a.json", b'{"trial_data": [', False),
    ("searcher-state-a.pkl", pickle.dumps({"x": list(range(100))}), True),
    ("searcher-state-a.pkl", pickle.dumps({"x": list(range(100))})[:-5], False),
    ("search_gen_state-a.json", pickle.dumps({"counter": 3}, protocol=5), True),
    ("searcher-state-a.pkl", b"", False),
])
def test_is_complete_parses_json_and_walks_pickles_without_loading_them(name, data, complete):
    assert is_complete(name, data) is complete


def test_a_pickle_that_would_run_code_is_only_walked():
    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('ran')",))
    assert is_complete("searcher-state-a.pkl", pickle.dumps(Boom()))   # complete, and nothing ran


def test_snapshot_keeps_the_newest_complete_set_and_ignores_a_cut_off_one(tmp_path):
    write_state(tmp_path, "2026-01-01_00-00-00", trials=2)
    second = write_state(tmp_path, "2026-01-01_00-00-00", trials=3)
    assert snapshot(tmp_path)
    kept = {p.name: p.read_bytes() for p in (tmp_path / LAST_GOOD_DIR).iterdir()}
    assert kept == second

    write_state(tmp_path, "2026-01-02_00-00-00", trials=4)   # a newer session, then a full disk cuts it off
    cut(tmp_path / "experiment_state-2026-01-02_00-00-00.json")
    assert not snapshot(tmp_path)
    assert {p.name: p.read_bytes() for p in (tmp_path / LAST_GOOD_DIR).iterdir()} == second


def test_restore_moves_the_cut_off_state_aside_and_puts_the_copy_back(tmp_path):
    good = write_state(tmp_path, "2026-01-01_00-00-00", trials=3)
    assert snapshot(tmp_path)
    write_state(tmp_path, "2026-01-01_00-00-00", trials=4)
    cut(tmp_path / "searcher-state-2026-01-01_00-00-00.pkl")
    assert torn_state_file(tmp_path).name == "searcher-state-2026-01-01_00-00-00.pkl"

    message = restore_last_good(tmp_path)
    assert message and "searcher-state-2026-01-01_00-00-00.pkl was cut off" in message
    assert torn_state_file(tmp_path) is None
    assert {p.name: p.read_bytes() for p in newest_state_files(tmp_path)} == good
    aside = list((tmp_path / TORN_DIR).glob("*/searcher-state-*.pkl"))
    assert len(aside) == 1 and not is_complete(aside[0].name, aside[0].read_bytes())
    assert restore_last_good(tmp_path) is None   # nothing cut off any more


def test_restore_does_nothing_without_a_complete_copy(tmp_path):
    write_state(tmp_path, "s1", trials=2)
    cut(tmp_path / "experiment_state-s1.json")
    assert last_good_copy(tmp_path) is None
    assert restore_last_good(tmp_path) is None
    assert (tmp_path / "experiment_state-s1.json").exists()


def test_a_crash_between_the_swaps_renames_leaves_a_usable_old_copy(tmp_path):
    good = write_state(tmp_path, "s1", trials=2)
    assert snapshot(tmp_path)
    (tmp_path / LAST_GOOD_DIR).rename(tmp_path / f"{LAST_GOOD_DIR}.old")
    cut(tmp_path / "experiment_state-s1.json")
    assert restore_last_good(tmp_path)
    assert {p.name: p.read_bytes() for p in newest_state_files(tmp_path)} == good


def test_the_keeper_thread_snapshots_at_the_end(tmp_path):
    with keeping_last_good_state(str(tmp_path), interval_s=60):
        files = write_state(tmp_path, "s1", trials=1)
    assert {p.name: p.read_bytes() for p in (tmp_path / LAST_GOOD_DIR).iterdir()} == files


def save_zip(directory: Path) -> Path:
    """A checkpoint as core.train writes it: weights in checkpoint.pt, the optimizer in training_state.pt."""
    from core.checkpoint import save_checkpoint

    return save_checkpoint(directory, {"epoch": 1, "model": {"w": torch.zeros(1000)},
                                       "optimizer": {"state": {}}, "scheduler": {}, "bad_epochs": 0}, {}, None)


def test_a_cut_off_or_missing_checkpoint_falls_back_to_the_newest_whole_one(tmp_path):
    save_zip(tmp_path / "checkpoint_000000")
    whole = save_zip(tmp_path / "checkpoint_000001")
    torn = save_zip(tmp_path / "checkpoint_000002")
    assert usable_checkpoint(str(whole)) == str(whole)
    cut(torn / "checkpoint.pt")
    assert usable_checkpoint(str(torn)) == str(whole)
    assert usable_checkpoint(str(tmp_path / "checkpoint_000003")) == str(whole)   # deleted by Tune


def test_a_checkpoint_kept_for_inference_only_is_not_resumed_from(tmp_path):
    """search/retention.py drops the training state of a trial's older checkpoints once a newer one is stored; a
    Tune state saved before that names the older one, and the trial continues from the newer instead."""
    from core.checkpoint import TRAINING_STATE_FILE, is_intact, strip_training_state

    best = save_zip(tmp_path / "checkpoint_000000")
    latest = save_zip(tmp_path / "checkpoint_000001")
    assert strip_training_state(best) > 0 and not (best / TRAINING_STATE_FILE).exists()
    assert is_intact(best) and not is_intact(best, resumable=True) and is_intact(latest, resumable=True)
    assert usable_checkpoint(str(best)) == str(latest)


def test_no_whole_checkpoint_is_one_clear_error(tmp_path):
    from core.checkpoint import CheckpointError

    cut(save_zip(tmp_path / "checkpoint_000000") / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="no other whole checkpoint"):
        usable_checkpoint(str(tmp_path / "checkpoint_000000"))
