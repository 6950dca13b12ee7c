"""Training checkpoints: everything needed to continue exactly, or to load a model for inference.

One directory per checkpoint, files by purpose:
  checkpoint.pt       what inference needs: model weights, epoch, best-so-far, the resolved flat config, the
                      normalization mean/std, dims and corpus hash (ensembles, --query, evaluation)
  training_state.pt   what resuming needs on top: optimizer, LR scheduler, RNG state, early-stopping counter,
                      history. A checkpoint kept only as a trial's best (not its latest) drops it
                      (``strip_training_state``): AdamW's moments are twice the weights.
  config.json         the flat config (readable without torch)
  embeddings.npz      val-split text/motion embeddings, ids and captions (heatmaps, t-SNE, ensembles)
Files are written under temp names and renamed, so a crash never leaves a torn checkpoint.

Opening a checkpoint never runs code from it: ``checkpoint.pt`` holds only tensors and plain Python values
(numpy arrays are stored as tensors) and is read with ``torch.load(weights_only=True)``, which refuses any
other pickled object.  Checkpoints written before that stored numpy arrays; the three numpy globals that
rebuild a plain array are allowed for them, nothing else.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pickle
import re
import zipfile

import numpy as np
import torch

from .atomic import atomic_path, atomic_write_text
from .errors import ClearError

CHECKPOINT_FILE = "checkpoint.pt"
TRAINING_STATE_FILE = "training_state.pt"
# the keys of a trainer's state that only resuming reads (core/train: _Trainer.state)
TRAINING_KEYS = ("optimizer", "scheduler", "torch_rng", "bad_epochs", "history")
# What np.save-free pickling of a plain ndarray needs (older checkpoints): data constructors, no code.
_MULTIARRAY = importlib.import_module("numpy._core.multiarray" if hasattr(np, "_core") else "numpy.core.multiarray")
_LEGACY_NUMPY_GLOBALS = [np.ndarray, np.dtype, _MULTIARRAY._reconstruct,
                         *{type(np.dtype(t)) for t in (np.float32, np.float64, np.int64, np.int32)}]


class CheckpointError(ClearError):
    """A checkpoint file that cannot be opened safely (truncated, not ours, or holding code)."""


def _plain(value: Any) -> Any:
    """numpy arrays -> tensors, numpy scalars -> Python numbers, recursively: what weights_only accepts."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))   # a copy: the array may be read-only (Ray's object store)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def save_checkpoint(directory: Path, state: dict[str, Any], flat_config: dict, embeddings: dict | None) -> Path:
    """``state``'s ``TRAINING_KEYS`` go to training_state.pt, the rest to checkpoint.pt."""
    directory.mkdir(parents=True, exist_ok=True)
    training = {k: v for k, v in state.items() if k in TRAINING_KEYS}
    if training:
        with atomic_path(directory / TRAINING_STATE_FILE) as tmp:
            torch.save(_plain(training), tmp)
    with atomic_path(directory / CHECKPOINT_FILE) as tmp:
        torch.save(_plain({k: v for k, v in state.items() if k not in TRAINING_KEYS}), tmp)
    atomic_write_text(directory / "config.json", json.dumps(flat_config, indent=1, sort_keys=True))
    if embeddings is not None:
        with atomic_path(directory / "embeddings.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **embeddings)   # a file object: np.savez would append .npz to a temp name
    return directory


def _zip_intact(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError):
        return False


def is_intact(directory: str | Path, *, resumable: bool = False) -> bool:
    """``checkpoint.pt`` is there and whole (torch writes a zip, so its CRCs are checked; nothing is unpickled);
    ``resumable``: the training state too (a checkpoint that holds it in checkpoint.pt, as older ones do, counts)."""
    directory = Path(directory)
    if not _zip_intact(directory / CHECKPOINT_FILE):
        return False
    if not resumable or _zip_intact(directory / TRAINING_STATE_FILE):
        return True
    return not (directory / TRAINING_STATE_FILE).exists() and _holds_training_keys(directory / CHECKPOINT_FILE)


def _holds_training_keys(path: Path) -> bool:
    """An older single-file checkpoint: checkpoint.pt itself holds the optimizer (read without unpickling)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("data.pkl") and b"optimizer" in archive.read(name) for name in archive.namelist())
    except (OSError, zipfile.BadZipFile, EOFError, KeyError):
        return False


def strip_training_state(directory: str | Path) -> int:
    """Drop the training state of a checkpoint that is no longer anyone's latest (a trial's best, kept for
    inference); returns the bytes freed (0 when there was none)."""
    path = Path(directory) / TRAINING_STATE_FILE
    try:
        size = path.stat().st_size
        path.unlink()
        return size
    except OSError:   # already gone (a parallel strip, a retention delete) or read-only: nothing freed
        return 0


def read_checkpoint(directory: str | Path, map_location: str | torch.device = "cpu", *,
                    training: bool = False) -> dict[str, Any]:
    """The checkpoint's state; ``training``: with its training state merged in (for resuming; a checkpoint kept
    for inference only is then a CheckpointError naming the fix)."""
    state = _load(Path(directory) / CHECKPOINT_FILE, map_location)
    if not training or all(k in state for k in TRAINING_KEYS if k != "history"):   # an older single-file one
        return state
    extra = Path(directory) / TRAINING_STATE_FILE
    if not extra.exists():
        raise CheckpointError("it holds the model only (a trial's best checkpoint, kept for inference), not the "
                              "optimizer and schedule that resuming needs.", where=Path(directory),
                              fix="resume from the run's latest checkpoint (a trainer's OUT/last, or --resume of "
                                  "the search, which picks it).")
    return {**state, **_load(extra, map_location)}


def _load(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint here (expected {path.name} written by core.train). "
                                "Fix: pass a checkpoint folder: a trial's checkpoint_00000N or a trainer's OUT/last.")
    try:
        with torch.serialization.safe_globals(_LEGACY_NUMPY_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:   # weights_only refused a global: code, or an object we never write
        refused = re.search(r"(?:but got|Unsupported global:) .*?(?=\. |\n|$)", str(e))   # not torch's "allow it" advice
        raise CheckpointError(f"refused to open it: it holds pickled objects other than tensors and plain values "
                              f"({refused.group(0)[:200] if refused else 'a pickled global'}), so loading it could "
                              "run code. It was not "
                              "written by core.train.", where=path,
                              fix="open only checkpoints this project wrote; retrain to get a safe one.") from None
    except PermissionError as e:
        raise CheckpointError(f"cannot read it: {e.strerror}.", where=path,
                              fix="make the file readable by this user.") from None
    except (EOFError, RuntimeError, OSError) as e:  # torn or not a torch file at all (a cut zip: EINVAL)
        raise CheckpointError(f"cannot read it ({type(e).__name__}: {str(e)[:200]}): the file is truncated or "
                              "not a torch checkpoint.", where=path,
                              fix="use another checkpoint of the trial (or --resume, which retrains the epoch).") \
            from None
