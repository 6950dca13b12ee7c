"""Checkpoints open without running code: only tensors and plain values are unpickled."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.checkpoint import (CHECKPOINT_FILE, TRAINING_STATE_FILE, CheckpointError, is_intact, read_checkpoint,
                             save_checkpoint, strip_training_state)
from tests.faults.bad_input_fixtures import code_checkpoint, torn_checkpoint


def test_a_checkpoint_that_runs_code_is_refused_before_the_code_runs(tmp_path):
    folder = code_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="refused to open it.*could run code"):
        read_checkpoint(folder)
    assert not (tmp_path / "PWNED").exists()
    # The fixture is a real attack: the unsafe load it replaces would have run it.
    torch.load(folder / CHECKPOINT_FILE, weights_only=False)
    assert (tmp_path / "PWNED").exists()


def test_a_torn_checkpoint_is_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="truncated or not a torch checkpoint"):
        read_checkpoint(torn_checkpoint(tmp_path))


def test_numpy_values_are_stored_as_tensors_and_plain_numbers(tmp_path):
    mean = np.linspace(0, 1, 5, dtype=np.float32)
    state = {"mean": mean, "history": [{"recall_at_1": np.float64(12.5), "epoch": np.int64(1)}], "epoch": 1}
    save_checkpoint(tmp_path, state, {"lr": 1e-3}, None)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / CHECKPOINT_FILE) == []
    assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / TRAINING_STATE_FILE) == []
    loaded = read_checkpoint(tmp_path, training=True)
    np.testing.assert_array_equal(np.asarray(loaded["mean"]), mean)
    assert loaded["history"] == [{"recall_at_1": 12.5, "epoch": 1}]
    assert type(loaded["history"][0]["recall_at_1"]) is float


def test_checkpoints_written_before_with_numpy_arrays_still_open(tmp_path):
    mean = np.arange(4, dtype=np.float32)
    torch.save({"mean": mean, "std": mean.astype(np.float64)}, tmp_path / CHECKPOINT_FILE)
    loaded = read_checkpoint(tmp_path)
    np.testing.assert_array_equal(loaded["mean"], mean)
    assert loaded["std"].dtype == np.float64


def trainer_state() -> dict:
    model = torch.nn.Linear(8, 4)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(2, 8)).sum().backward()
    optimizer.step()
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": {"last_epoch": 3},
            "torch_rng": torch.get_rng_state(), "bad_epochs": 0, "history": [{"epoch": 1}], "epoch": 1,
            "config": {"lr": 1e-3}}


def test_a_checkpoint_keeps_weights_and_training_state_in_two_files(tmp_path):
    """Inference reads checkpoint.pt only; resuming also needs training_state.pt, which a checkpoint kept as a
    trial's best (not its latest) drops: AdamW's moments are twice the weights."""
    save_checkpoint(tmp_path, trainer_state(), {"lr": 1e-3}, None)
    weights = read_checkpoint(tmp_path)
    assert "model" in weights and "optimizer" not in weights and "history" not in weights
    assert {"optimizer", "scheduler", "torch_rng", "history"} <= set(read_checkpoint(tmp_path, training=True))
    assert is_intact(tmp_path, resumable=True)
    assert strip_training_state(tmp_path) > 0 and strip_training_state(tmp_path) == 0
    assert is_intact(tmp_path) and not is_intact(tmp_path, resumable=True)
    assert "model" in read_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="holds the model only"):
        read_checkpoint(tmp_path, training=True)


def test_an_older_single_file_checkpoint_still_resumes(tmp_path):
    torch.save(trainer_state(), tmp_path / CHECKPOINT_FILE)   # before the split: everything in checkpoint.pt
    assert is_intact(tmp_path, resumable=True)
    assert "optimizer" in read_checkpoint(tmp_path, training=True)
