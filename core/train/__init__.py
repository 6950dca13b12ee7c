"""The per-epoch training function every search trial runs: ``core/train/trainer.py`` (plain PyTorch; no ray,
no wandb). Its names (``train_retrieval``, ``NonFiniteLossError``, ...) are loaded on first use, so that
``python -m core.train`` starts (and answers Ctrl+C with one line) before torch is imported.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["train_retrieval", "prepare_shared", "SharedInputs", "NonFiniteLossError", "Reporter"]


def __getattr__(name: str) -> Any:
    trainer = importlib.import_module(f"{__name__}.trainer")   # not "from . import": that would call this again
    try:
        return getattr(trainer, name)
    except AttributeError:
        raise AttributeError(f"module 'core.train' has no attribute {name!r}") from None
