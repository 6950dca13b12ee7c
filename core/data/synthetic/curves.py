"""Time curves and channel setters shared by the single-person primitives and the interactions."""
from __future__ import annotations

import numpy as np

from .body import CH


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def ramp(t: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """0 before t0, 1 after t1, smooth in between."""
    if t1 <= t0:
        return (t >= t0).astype(float)
    return smoothstep((t - t0) / (t1 - t0))


def window(t: np.ndarray, t0: float, t1: float, rise: float) -> np.ndarray:
    """1 on [t0 + rise, t1 - rise], smooth edges of length ``rise``, 0 outside [t0, t1]."""
    rise = min(rise, 0.5 * (t1 - t0))
    return ramp(t, t0, t0 + rise) * (1.0 - ramp(t, t1 - rise, t1))


def keys(u: np.ndarray, knots, values) -> np.ndarray:
    """Smooth key-frame curve: ``values`` at the increasing ``knots``, smoothstep in between.

    Velocity is zero at every knot, so consecutive keys read as distinct poses (a punch out and
    back, a kick chambered then extended) rather than one blurred swing.
    """
    knots, values = np.asarray(knots, float), np.asarray(values, float)
    i = np.clip(np.searchsorted(knots, u, side="right") - 1, 0, len(knots) - 2)
    x = smoothstep((u - knots[i]) / (knots[i + 1] - knots[i]))
    return values[i] + (values[i + 1] - values[i]) * x


def cycles(t: np.ndarray, start: float, period: float, count: int) -> np.ndarray:
    """Phase in [0, count] over ``count`` cycles of ``period`` s starting at ``start``; clamped outside."""
    return np.clip((t - start) / period, 0.0, float(count))


def blend(ch: np.ndarray, name: str, value, weight) -> None:
    """Move channel ``name`` towards ``value`` with per-frame ``weight`` in [0, 1] (in place)."""
    col = CH[name]
    ch[:, col] = ch[:, col] * (1.0 - weight) + np.asarray(value, float) * weight


def set_arm(ch: np.ndarray, side: str, weight, upper=None, fore=None, collar=None, wrist=None) -> None:
    """Blend one arm ('l' or 'r') towards (theta, psi) directions of the upper arm / forearm."""
    if upper is not None:
        blend(ch, f"uarm_theta_{side}", upper[0], weight)
        blend(ch, f"uarm_psi_{side}", upper[1], weight)
    if fore is not None:
        blend(ch, f"farm_theta_{side}", fore[0], weight)
        blend(ch, f"farm_psi_{side}", fore[1], weight)
    if collar is not None:
        blend(ch, f"collar_{side}", collar, weight)
    if wrist is not None:
        blend(ch, f"wrist_{side}", wrist, weight)


def set_leg(ch: np.ndarray, side: str, weight, hip=None, knee=None, ankle=None, abd=None) -> None:
    """Blend one leg ('l' or 'r') towards hip flexion / knee flexion / ankle / abduction angles."""
    for name, value in (("hip_flex", hip), ("knee", knee), ("ankle", ankle), ("hip_abd", abd)):
        if value is not None:
            blend(ch, f"{name}_{side}", value, weight)


def limb_sides(side: str | None) -> tuple[str, ...]:
    """'left' -> ('l',), 'right' -> ('r',), 'both' -> ('l', 'r')."""
    return {"left": ("l",), "right": ("r",), "both": ("l", "r")}[side or "both"]


def time_axis(duration: float, fps: float) -> np.ndarray:
    """(T,) seconds for a clip of ``duration`` s (at least 2 frames)."""
    return np.arange(max(2, int(round(duration * fps)))) / fps
