"""Training checkpoints: everything needed to continue exactly, or to load a model for inference.

One directory per checkpoint:
  checkpoint.pt   model, optimizer, scheduler, scaler, epoch, RNG states, best-so-far, history,
                  the resolved flat config and the normalization mean/std
  config.json     the flat config (readable without torch)
  embeddings.npz  val-split text/motion embeddings, ids and captions (heatmaps, t-SNE, ensembles)
Files are written under temp names and renamed, so a crash never leaves a torn checkpoint.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_FILE = "checkpoint.pt"


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(directory: Path, state: dict[str, Any], flat_config: dict, embeddings: dict | None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    _atomic(directory / CHECKPOINT_FILE, lambda p: torch.save(state, p))
    _atomic(directory / "config.json", lambda p: Path(p).write_text(json.dumps(flat_config, indent=1, sort_keys=True)))
    if embeddings is not None:
        def write_npz(p):
            with open(p, "wb") as f:
                np.savez(f, **embeddings)
        _atomic(directory / "embeddings.npz", write_npz)
    return directory


def read_checkpoint(directory: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint here (expected {CHECKPOINT_FILE} written by core.train). "
                                "Fix: pass a checkpoint folder: a trial's checkpoint_00000N or a trainer's OUT/last.")
    # weights_only=False: the state holds numpy RNG/normalization arrays we wrote ourselves.
    return torch.load(path, map_location=map_location, weights_only=False)
