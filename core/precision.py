"""Which float type the encoders run in: bf16 autocast where the hardware does bf16 natively, else fp32.

``RuntimeConfig.amp`` (default true) asks for bf16 autocast; it is honoured on CUDA and on CPUs with native
bf16 matrix instructions (AVX512-BF16 or AMX, e.g. AMD Zen 4+, Intel Sapphire Rapids+). On such a CPU a
transformer training step runs ~1.6x faster (measured by ``bench/p1b_cpu_bf16.py``; matmul 2.8x). Older
CPUs would emulate bf16 (slower than fp32), so there ``amp`` silently means fp32. Losses always see float32
(callers cast), so the contrastive logits and their softmax keep full precision.
"""
from __future__ import annotations

import contextlib
from functools import lru_cache

import torch


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when oneDNN can run bf16 matmuls with native instructions on this CPU."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(torch.cpu, name)()) for name in probes if hasattr(torch.cpu, name))
    except Exception:   # a private probe changed between torch versions: fp32 is always safe
        return False


def autocast_enabled(device: torch.device, amp: bool) -> bool:
    """Whether bf16 autocast runs for this device when the config asks for ``amp``."""
    if not amp:
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and cpu_has_native_bf16()


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in bf16 when :func:`autocast_enabled`, a no-op context otherwise."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_enabled(device, amp))
