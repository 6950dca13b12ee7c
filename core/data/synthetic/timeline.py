"""Putting pose-channel clips on a timeline: cross-faded sequences, idle padding and pose noise."""
from __future__ import annotations

import numpy as np

from .body import ADDITIVE, CHANNELS, Body
from .curves import smoothstep

# Channels that get smooth pose noise (angles only: velocities, lift and gait amplitudes are left
# exact so counts, directions and distances stay what the captions say).
_NOISY = np.array([i for i, name in enumerate(CHANNELS) if not ADDITIVE[i] and not name.startswith("gait")])


def sequence(clips: list[np.ndarray], overlaps: list[int]) -> np.ndarray:
    """Join clips (T_i, C) so consecutive ones overlap by ``overlaps[i]`` frames.

    Within an overlap, posture channels cross-fade (smoothstep weights summing to 1) and root
    motion channels (velocities, lift) add, so a turn still turns by its full angle and a walk
    still covers its distance while the next clip fades in.
    """
    total = sum(len(c) for c in clips) - sum(overlaps)
    out = np.zeros((total, clips[0].shape[1]))
    start = 0
    for i, clip in enumerate(clips):
        T = len(clip)
        w = np.ones(T)
        if i > 0 and overlaps[i - 1] > 0:
            b = overlaps[i - 1]
            w[:b] = smoothstep((np.arange(b) + 0.5) / b)
        if i < len(clips) - 1 and overlaps[i] > 0:
            b = overlaps[i]
            w[T - b:] = 1.0 - smoothstep((np.arange(b) + 0.5) / b)
        weights = np.where(ADDITIVE[None, :], 1.0, w[:, None])     # (T, C)
        out[start:start + T] += clip * weights
        start += T - (overlaps[i] if i < len(clips) - 1 else 0)
    return out


def overlap_frames(clips: list[np.ndarray], rng: np.random.Generator, fps: float) -> list[int]:
    """Random 0.3-0.6 s overlaps, at most a third of either neighbouring clip."""
    return [int(min(round(rng.uniform(0.3, 0.6) * fps), len(a) // 3, len(b) // 3))
            for a, b in zip(clips[:-1], clips[1:])]


def pad(ch: np.ndarray, before: int, after: int, body: Body) -> np.ndarray:
    """Hold still before/after a clip: repeat its first/last posture with zero root motion."""
    first = np.repeat(ch[:1], before, axis=0)
    last = np.repeat(ch[-1:], after, axis=0)
    first[:, ADDITIVE] = 0.0
    last[:, ADDITIVE] = 0.0
    return np.concatenate([first, ch, last], axis=0)


def smooth_noise(frames: int, channels: int, rng: np.random.Generator, fps: float, std: float,
                 spacing: float = 0.5) -> np.ndarray:
    """(frames, channels) smooth random drift: Gaussian knots every ~``spacing`` s joined by
    smoothstep curves (one small matrix product, no per-sample trigonometry)."""
    knots = int(np.ceil(frames / (spacing * fps))) + 1
    values = rng.normal(0.0, std, size=(knots + 1, channels))
    pos = np.arange(frames) / (spacing * fps) + rng.uniform(0.0, 1.0)         # knot coordinate
    i = np.floor(pos).astype(int)
    w = smoothstep(pos - i)
    return values[i] * (1.0 - w)[:, None] + values[i + 1] * w[:, None]


def add_pose_noise(ch: np.ndarray, rng: np.random.Generator, fps: float, std: float = 0.035) -> np.ndarray:
    """Slow random drift on every joint angle: no two performances of an action are identical."""
    out = ch.copy()
    out[:, _NOISY] += smooth_noise(len(ch), len(_NOISY), rng, fps, std)
    return out
