"""The one rule for which torch device a run uses (training, inference, ensembles)."""
from __future__ import annotations

import torch

from .config import ConfigError


def pick_device(device: str | torch.device | None) -> torch.device:
    """None/'auto' -> CUDA when visible, else CPU; an explicit 'cuda...' without CUDA is a ConfigError."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {str(device)!r} but no CUDA device is visible to this process. "
                          "Fix: use device auto or cpu, or run where a GPU is visible.")
    try:
        return torch.device(device)
    except RuntimeError:   # torch's "Invalid device string"
        raise ConfigError(f"device {str(device)!r} is not a torch device. Fix: use auto, cpu, cuda or cuda:N.") \
            from None
