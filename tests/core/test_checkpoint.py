"""Checkpoints open without running code: only tensors and plain values are unpickled."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.checkpoint import CHECKPOINT_FILE, CheckpointError, read_checkpoint, save_checkpoint
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
    loaded = read_checkpoint(tmp_path)
    np.testing.assert_array_equal(np.asarray(loaded["mean"]), mean)
    assert loaded["history"] == [{"recall_at_1": 12.5, "epoch": 1}]
    assert type(loaded["history"][0]["recall_at_1"]) is float


def test_checkpoints_written_before_with_numpy_arrays_still_open(tmp_path):
    mean = np.arange(4, dtype=np.float32)
    torch.save({"mean": mean, "std": mean.astype(np.float64)}, tmp_path / CHECKPOINT_FILE)
    loaded = read_checkpoint(tmp_path)
    np.testing.assert_array_equal(loaded["mean"], mean)
    assert loaded["std"].dtype == np.float64
