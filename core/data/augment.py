"""Train-only augmentation. Every transform has one knob in ``AugmentConfig`` a search can sweep.

Order matters: mirroring is a signed permutation of the *raw* features (the normalization mean is
not left/right symmetric), so it runs before normalization; crop and shift pick the frame window;
noise and time masking act on normalized features, in units of per-dimension std.
"""
from __future__ import annotations

import numpy as np

from ..config import AugmentConfig
from .mirror_text import mirror_caption
from .parts import mirror_parts
from .types import FeatureLayout

def choose_window(length: int, max_frames: int, cfg: AugmentConfig | None, rng: np.random.Generator | None
                  ) -> tuple[int, int]:
    """Frame window [start, end) for one motion.

    Evaluation (rng None): the centred max_frames. Training: random crop to 60-100 % with
    probability aug_crop, a temporal shift of up to aug_shift * length frames, then a random
    max_frames window if still too long.
    """
    if rng is None:
        start = max(0, (length - max_frames) // 2)
        return start, min(length, start + max_frames)
    start, end = 0, length
    if cfg is not None and cfg.aug_crop > 0 and length >= 8 and rng.random() < cfg.aug_crop:
        keep = max(4, int(round(length * rng.uniform(0.6, 1.0))))
        start = int(rng.integers(0, length - keep + 1))
        end = start + keep
    if cfg is not None and cfg.aug_shift > 0:
        shift = int(rng.integers(0, int(cfg.aug_shift * (end - start)) + 1))
        if end - start - shift >= 4:  # drop `shift` frames from the start or from the end
            if rng.random() < 0.5:
                start += shift
            else:
                end -= shift
    if end - start > max_frames:
        start = int(rng.integers(start, end - max_frames + 1))
        end = start + max_frames
    return start, end


def augment_normalized(x: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Noise and time masking on a normalized (T, D) clip; returns a new array."""
    if cfg.aug_noise > 0:
        x = x + rng.normal(0.0, cfg.aug_noise, size=x.shape).astype(np.float32)
    if cfg.aug_time_mask > 0 and len(x) >= 10 and rng.random() < cfg.aug_time_mask:
        span = max(1, int(len(x) * rng.uniform(0.1, 0.2)))
        s = int(rng.integers(0, len(x) - span + 1))
        x = x.copy()
        x[s:s + span] = 0.0  # the training-set mean pose/velocity, in normalized units
    return x


def maybe_mirror(x: np.ndarray, caption: str, layout: FeatureLayout, cfg: AugmentConfig | None,
                 rng: np.random.Generator | None, parts: tuple[str, ...] | None = None
                 ) -> tuple[np.ndarray, str, tuple[str, ...] | None]:
    """Mirror motion, caption and part texts together with probability aug_mirror (layouts that support it)."""
    if rng is None or cfg is None or cfg.aug_mirror <= 0 or not layout.can_mirror:
        return x, caption, parts
    if rng.random() < cfg.aug_mirror:
        return layout.mirror(x), mirror_caption(caption), mirror_parts(parts) if parts is not None else None
    return x, caption, parts
