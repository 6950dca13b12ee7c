"""Locomotion primitives (walk, jog, run, side steps, turns, spins): speed and heading profiles.

Root velocities ramp up and down inside each clip, so the distance walked and the angle turned are
exact even when the clip is cross-faded with its neighbours (root channels add, see timeline.py).
"""
from __future__ import annotations

import numpy as np

from .body import CH, neutral_channels, side_sign
from .curves import blend, set_arm, time_axis, window

SPEEDS = {"slow": (0.7, 0.9), "normal": (1.1, 1.4), "fast": (1.7, 2.0)}
BACK_SPEEDS = {"slow": (0.45, 0.6), "normal": (0.8, 1.0)}


def _locomotion(body, fps, speed, duration, running=0.0, lateral=False):
    """(t, channels, envelope) of a clip moving at ``speed`` with ramped start and stop."""
    t = time_axis(duration, fps)
    ch = neutral_channels(len(t), body)
    env = window(t, 0.0, t[-1], min(0.6, 0.3 + 0.15 * abs(speed)))
    if lateral:
        ch[:, CH["lat_vel"]] = speed * env
        ch[:, CH["gait_side"]] = env
    else:
        ch[:, CH["fwd_vel"]] = speed * env
        ch[:, CH["gait_fwd"]] = env
        ch[:, CH["gait_run"]] = running
    return t, ch, env


def walk(a, body, rng, fps):
    v = rng.uniform(*SPEEDS[a.speed])
    t, ch, env = _locomotion(body, fps, v, rng.uniform(2.2, 4.0))
    blend(ch, "spine_flex", body.posture + 0.04 * (v - 1.2), env)
    return ch


def walk_backward(a, body, rng, fps):
    v = -rng.uniform(*BACK_SPEEDS[a.speed])
    t, ch, env = _locomotion(body, fps, v, rng.uniform(2.0, 3.5))
    blend(ch, "head_yaw", rng.choice([-0.3, 0.3]) * rng.uniform(0.3, 1.0), env)
    return ch


def _running(body, fps, v, duration, running):
    t, ch, env = _locomotion(body, fps, v, duration, running=running)
    blend(ch, "spine_flex", body.posture + 0.08 + 0.08 * running, env)
    for s in "lr":  # elbows bent ~90 degrees, forearms forward
        set_arm(ch, s, env, upper=(0.2, 0.3), fore=(1.2 + 0.4 * running, 1.45))
    return ch


def jog(a, body, rng, fps):
    return _running(body, fps, rng.uniform(2.1, 2.6), rng.uniform(2.0, 3.5), running=0.55)


def run(a, body, rng, fps):
    return _running(body, fps, rng.uniform(3.2, 4.0), rng.uniform(1.8, 3.0), running=1.0)


def side_step(a, body, rng, fps):
    v = side_sign(a.side) * rng.uniform(0.4, 0.6)
    t, ch, env = _locomotion(body, fps, v, rng.uniform(1.6, 3.0), lateral=True)
    return ch


def _turn(body, rng, fps, angle, duration, arms_out=0.0):
    t = time_axis(duration, fps)
    ch = neutral_channels(len(t), body)
    D = t[-1] + 1.0 / fps
    # raised-cosine yaw rate whose integral over the clip is exactly `angle`
    ch[:, CH["yaw_rate"]] = angle * (1.0 - np.cos(2 * np.pi * t / D)) / D
    env = np.sin(np.pi * t / D) ** 2
    ch[:, CH["gait_fwd"]] = 0.45 * env
    ch[:, CH["head_yaw"]] = 0.25 * np.sign(angle) * env       # the head leads the turn
    if arms_out:
        for s in "lr":
            set_arm(ch, s, env, upper=(arms_out, 0.2), fore=(arms_out + 0.2, 0.6))
    return ch


def turn(a, body, rng, fps):
    angle = np.pi / 2 if a.variant == "90" else np.pi
    lo, hi = (1.0, 1.5) if a.variant == "90" else (1.6, 2.3)
    return _turn(body, rng, fps, side_sign(a.side) * angle, rng.uniform(lo, hi))


def spin(a, body, rng, fps):
    return _turn(body, rng, fps, side_sign(a.side) * 2 * np.pi, rng.uniform(1.5, 2.3),
                 arms_out=rng.uniform(0.3, 0.9))
