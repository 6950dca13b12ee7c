"""Training checkpoints: everything needed to continue exactly, or to load a model for inference.

One directory per checkpoint:
  checkpoint.pt   model, optimizer, scheduler, scaler, epoch, RNG states, best-so-far, history,
                  the resolved flat config and the normalization mean/std
  config.json     the flat config (readable without torch)
  embeddings.npz  val-split text/motion embeddings, ids and captions (heatmaps, t-SNE, ensembles)
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
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / CHECKPOINT_FILE) as tmp:
        torch.save(_plain(state), tmp)
    atomic_write_text(directory / "config.json", json.dumps(flat_config, indent=1, sort_keys=True))
    if embeddings is not None:
        with atomic_path(directory / "embeddings.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **embeddings)   # a file object: np.savez would append .npz to a temp name
    return directory


def is_intact(directory: str | Path) -> bool:
    """``checkpoint.pt`` is there and whole: torch writes a zip, so its CRCs are checked (nothing is unpickled)."""
    path = Path(directory) / CHECKPOINT_FILE
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError):
        return False


def read_checkpoint(directory: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint here (expected {CHECKPOINT_FILE} written by core.train). "
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
