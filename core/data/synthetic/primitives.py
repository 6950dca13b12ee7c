"""Single-person motion primitives: ``Action`` (what to do) -> pose channels (T, C).

Every builder starts from the subject's neutral standing posture, animates the channels that the
action needs with smooth key-frame curves, and returns to neutral (except ``sit_down``, which ends
seated, and ``stand_up``, which starts seated).  Attributes that captions mention (side, count,
speed, variant) are exact: "waves twice" produces exactly two wave cycles; everything else
(tempo, amplitude, hold times) is random per motion.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import skeleton
from .body import CH, NEUTRAL, Body, neutral_channels, side_sign
from .curves import blend, cycles, keys, limb_sides, ramp, set_arm, set_leg, time_axis, window
from .locomotion import jog, run, side_step, spin, turn, walk, walk_backward



@dataclass(frozen=True)
class Action:
    """One single-person primitive with the attributes its captions mention."""
    kind: str
    side: str | None = None      # "left" | "right" | "both"
    count: int | None = None     # repetitions
    speed: str | None = None     # "slow" | "normal" | "fast"
    variant: str | None = None   # turn: "90" | "180"; jump: "in_place" | "forward"; bow: "slight" | "deep"

    def key(self) -> str:
        """Canonical semantic key: equal keys <=> captions describe the same thing."""
        parts = [self.kind]
        if self.side:
            parts.append(self.side)
        if self.count is not None:
            parts.append(f"x{self.count}")
        if self.speed:
            parts.append(self.speed)
        if self.variant:
            parts.append(self.variant)
        return "|".join(parts)


# ---- whole-body repetitions -----------------------------------------------------------------------

def jump(a, body, rng, fps):
    period, pre = rng.uniform(0.9, 1.2), rng.uniform(0.1, 0.3)
    t = time_axis(pre + a.count * period + rng.uniform(0.1, 0.3), fps)
    ch = neutral_channels(len(t), body)
    k = cycles(t, pre, period, a.count)
    u = k - np.floor(k)
    active = (k > 0) & (k < a.count)
    takeoff, land = 0.38, 0.70
    crouch = np.where(active, keys(u, [0, 0.3, takeoff, land, 0.85, 1.0], [0, 1, 0, 0, 0.7, 0]), 0.0)
    flight = active & (u > takeoff) & (u < land)
    x = (u - takeoff) / (land - takeoff)
    height = rng.uniform(0.22, 0.38)
    ch[:, CH["lift"]] = np.where(flight, 4 * height * x * (1 - x), 0.0)
    if a.variant == "forward":
        dist = rng.uniform(0.5, 0.9)
        ch[:, CH["fwd_vel"]] = np.where(flight, dist / ((land - takeoff) * period), 0.0)
    air = np.where(flight, np.sin(np.pi * x), 0.0)
    for s in "lr":
        set_leg(ch, s, 1.0, hip=0.75 * crouch + 0.1 * air, knee=1.4 * crouch + 0.05, ankle=0.45 * air)
        set_arm(ch, s, np.maximum(crouch, air), upper=(0.7 + 1.5 * air, -1.0 + 2.4 * air),
                fore=(0.8 + 1.5 * air, -0.8 + 2.2 * air))
    blend(ch, "spine_flex", 0.35, crouch)
    return ch


def hop(a, body, rng, fps):
    """Hop on the ``side`` foot; the other foot is held up behind."""
    period, pre, post = rng.uniform(0.45, 0.6), rng.uniform(0.35, 0.5), rng.uniform(0.3, 0.5)
    t = time_axis(pre + a.count * period + post, fps)
    ch = neutral_channels(len(t), body)
    stand, free = limb_sides(a.side)[0], "r" if a.side == "left" else "l"
    hold = window(t, 0.0, t[-1], 0.3)
    set_leg(ch, free, hold, hip=0.35, knee=1.3, ankle=0.3)
    k = cycles(t, pre, period, a.count)
    u = k - np.floor(k)
    active = (k > 0) & (k < a.count)
    x = np.clip((u - 0.2) / 0.6, 0, 1)
    ch[:, CH["lift"]] = np.where(active, rng.uniform(0.08, 0.14) * 4 * x * (1 - x), 0.0)
    set_leg(ch, stand, 1.0, hip=0.3 * np.where(active, keys(u, [0, .2, .8, 1], [1, 0, 0, 1]), 0) * hold,
            knee=0.6 * np.where(active, keys(u, [0, .2, .8, 1], [1, 0, 0, 1]), 0) * hold)
    for s in "lr":
        set_arm(ch, s, hold, upper=(0.55, 0.3))
    return ch


def squat(a, body, rng, fps):
    period, pre = rng.uniform(1.3, 2.0), rng.uniform(0.1, 0.3)
    t = time_axis(pre + a.count * period + rng.uniform(0.1, 0.3), fps)
    ch = neutral_channels(len(t), body)
    k = cycles(t, pre, period, a.count)
    depth = rng.uniform(0.8, 1.0) * np.sin(np.pi * (k - np.floor(k))) ** 2   # one dip per cycle
    for s in "lr":
        set_leg(ch, s, 1.0, hip=1.75 * depth, knee=2.1 * depth)
        set_arm(ch, s, depth, upper=(1.45, 1.45), fore=(1.45, 1.5))
    blend(ch, "spine_flex", 0.35, depth)
    return ch


SEATED = {"hip": 1.5, "knee": 1.5, "upper": (0.35, 1.0), "fore": (1.3, 1.45)}


def _seat(ch, weight, lean):
    for s in "lr":
        set_leg(ch, s, weight, hip=SEATED["hip"], knee=SEATED["knee"])
        set_arm(ch, s, weight, upper=SEATED["upper"], fore=SEATED["fore"])
    ch[:, CH["spine_flex"]] += lean


def sit_down(a, body, rng, fps):
    move, hold = rng.uniform(1.2, 1.8), rng.uniform(1.0, 2.0)
    t = time_axis(move + hold, fps)
    ch = neutral_channels(len(t), body)
    w = ramp(t, 0.0, move)
    _seat(ch, w, 0.4 * np.sin(np.pi * np.clip(t / move, 0, 1)))     # lean forward while lowering
    ch[:, CH["fwd_vel"]] = -0.2 * np.pi / (2 * move) * np.sin(np.pi * np.clip(t / move, 0, 1))
    return ch


def stand_up(a, body, rng, fps):
    hold, move = rng.uniform(0.2, 0.5), rng.uniform(1.2, 1.8)
    t = time_axis(hold + move, fps)
    ch = neutral_channels(len(t), body)
    x = np.clip((t - hold) / move, 0, 1)
    _seat(ch, 1.0 - ramp(t, hold, hold + move), 0.45 * np.sin(np.pi * x))
    ch[:, CH["fwd_vel"]] = 0.2 * np.pi / (2 * move) * np.sin(np.pi * x)
    return ch


def jumping_jacks(a, body, rng, fps):
    period, pre = rng.uniform(0.8, 1.1), rng.uniform(0.1, 0.3)
    t = time_axis(pre + a.count * period + rng.uniform(0.1, 0.3), fps)
    ch = neutral_channels(len(t), body)
    k = cycles(t, pre, period, a.count)
    out = np.sin(np.pi * (k - np.floor(k))) ** 2          # 0 closed, 1 arms up and legs apart
    ch[:, CH["lift"]] = 0.06 * np.abs(np.sin(2 * np.pi * k))   # a small hop out and a hop back in
    for s in "lr":
        set_leg(ch, s, out, abd=0.3)
        set_arm(ch, s, out, upper=(2.75, 0.15), fore=(2.9, 0.2))
    return ch


# ---- arms ----------------------------------------------------------------------------------------

def wave(a, body, rng, fps):
    """Raise the hand, then ``count`` sways: each goes from the forearm upright out to the side
    and back, so every wave is one clear out-and-back swing of the hand."""
    period, up, down = rng.uniform(0.45, 0.65), rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6)
    t = time_axis(up + a.count * period + down, fps)
    ch = neutral_channels(len(t), body)
    raised = ramp(t, 0.0, up) * (1.0 - ramp(t, up + a.count * period, t[-1]))
    k = cycles(t, up, period, a.count)
    out = rng.uniform(0.55, 0.8) * 0.5 * (1.0 - np.cos(2 * np.pi * k))
    ut, fp = rng.uniform(1.9, 2.2), rng.uniform(0.2, 0.6)
    for s in limb_sides(a.side):
        set_arm(ch, s, raised, upper=(ut, fp + 0.2), fore=(3.0 - out, fp), wrist=0.4 * out)
    return ch


def raise_hand(a, body, rng, fps):
    up, hold, down = rng.uniform(0.5, 0.8), rng.uniform(0.8, 1.6), rng.uniform(0.5, 0.8)
    t = time_axis(up + hold + down, fps)
    ch = neutral_channels(len(t), body)
    w = window(t, 0.0, t[-1], up)
    psi = rng.uniform(0.3, 1.0)
    for s in limb_sides(a.side):
        set_arm(ch, s, w, upper=(2.8, psi), fore=(2.9, psi), collar=0.15)
    return ch


def punch(a, body, rng, fps):
    guard, period = rng.uniform(0.35, 0.5), rng.uniform(0.45, 0.65)
    t = time_axis(guard + a.count * period + guard, fps)
    ch = neutral_channels(len(t), body)
    g = window(t, 0.0, t[-1], guard)
    k = cycles(t, guard, period, a.count)
    ext = keys(k - np.floor(k), [0, 0.35, 1], [0, 1, 0]) * (k > 0) * (k < a.count)
    for s in "lr":  # both fists up in guard
        set_arm(ch, s, g, upper=(0.55, 1.1), fore=(2.3, 1.5))
    (s,) = limb_sides(a.side)
    set_arm(ch, s, ext, upper=(1.5, 1.5), fore=(1.5, 1.6))
    ch[:, CH["spine_twist"]] = -side_sign(a.side) * 0.3 * ext  # the punching shoulder comes forward
    return ch


def kick(a, body, rng, fps):
    pre, period = rng.uniform(0.2, 0.4), rng.uniform(0.9, 1.2)
    t = time_axis(pre + a.count * period + rng.uniform(0.2, 0.4), fps)
    ch = neutral_channels(len(t), body)
    k = cycles(t, pre, period, a.count)
    u = k - np.floor(k)
    on = (k > 0) & (k < a.count)
    hip = np.where(on, keys(u, [0, 0.3, 0.5, 0.7, 1], [0, 1.0, 1.35, 1.0, 0]), 0.0)
    knee = np.where(on, keys(u, [0, 0.3, 0.5, 0.7, 1], [0, 1.7, 0.1, 1.7, 0]), 0.0)
    (s,) = limb_sides(a.side)
    set_leg(ch, s, 1.0, hip=hip, knee=knee, ankle=-0.3 * hip)
    balance = window(t, 0.0, t[-1], pre)
    for arm in "lr":
        set_arm(ch, arm, balance, upper=(0.6, 0.4), fore=(1.2, 1.2))
    blend(ch, "spine_flex", -0.15, hip / 1.35)
    return ch


def _clap_psi(body, upper):
    """Forearm (theta, psi) that brings the wrist to the body's midline for a given upper-arm pose."""
    J, off = skeleton.JOINT_INDEX, body.offsets
    shoulder_x = off[J["left_collar"], 0] + off[J["left_shoulder"], 0]
    elbow_x = shoulder_x + np.linalg.norm(off[J["left_elbow"]]) * np.sin(upper[0]) * np.cos(upper[1])
    fore_theta = 1.5
    c = -(elbow_x - 0.02) / (np.linalg.norm(off[J["left_wrist"]]) * np.sin(fore_theta))
    return fore_theta, float(np.arccos(np.clip(c, -0.99, 0.99)))


def clap(a, body, rng, fps):
    up, period = rng.uniform(0.35, 0.5), rng.uniform(0.35, 0.5)
    t = time_axis(up + a.count * period + up, fps)
    ch = neutral_channels(len(t), body)
    w = window(t, 0.0, t[-1], up)
    upper = (rng.uniform(0.5, 0.8), 1.55)
    fore_theta, together = _clap_psi(body, upper)
    k = cycles(t, up, period, a.count)
    closed = np.sin(np.pi * (k - np.floor(k))) ** 2              # hands meet once per cycle
    for s in "lr":
        set_arm(ch, s, w, upper=upper, fore=(fore_theta, 1.5 + (together - 1.5) * closed))
    return ch


def bow(a, body, rng, fps):
    down, hold, upt = rng.uniform(0.6, 0.9), rng.uniform(0.4, 1.0), rng.uniform(0.6, 0.9)
    t = time_axis(down + hold + upt, fps)
    ch = neutral_channels(len(t), body)
    w = window(t, 0.0, t[-1], down)
    depth = rng.uniform(0.35, 0.5) if a.variant == "slight" else rng.uniform(0.95, 1.2)
    blend(ch, "spine_flex", depth, w)
    blend(ch, "pelvis_pitch", 0.25 * depth, w)
    blend(ch, "head_pitch", 0.3, w)
    for s in "lr":  # arms keep hanging towards the floor while the chest tilts
        set_arm(ch, s, w, upper=(0.12 + 0.8 * depth, 1.5), fore=(0.25 + 0.8 * depth, 1.5))
    return ch


def stretch(a, body, rng, fps):
    up, hold = rng.uniform(0.7, 1.0), rng.uniform(0.8, 1.6)
    t = time_axis(2 * up + hold, fps)
    ch = neutral_channels(len(t), body)
    w = window(t, 0.0, t[-1], up)
    for s in "lr":
        set_arm(ch, s, w, upper=(2.85, 0.5), fore=(3.0, 0.4), collar=0.2)
    blend(ch, "spine_flex", -0.15, w)
    blend(ch, "head_pitch", -0.25, w)
    return ch


def lean(a, body, rng, fps):
    move, hold = rng.uniform(0.6, 0.9), rng.uniform(0.6, 1.4)
    t = time_axis(2 * move + hold, fps)
    ch = neutral_channels(len(t), body)
    w = window(t, 0.0, t[-1], move)
    s = side_sign(a.side)
    blend(ch, "spine_lat", s * rng.uniform(0.3, 0.45), w)
    blend(ch, "pelvis_roll", s * 0.05, w)
    return ch


def march(a, body, rng, fps):
    period = rng.uniform(0.9, 1.2)
    t = time_axis(rng.uniform(2.5, 4.0), fps)
    ch = neutral_channels(len(t), body)
    env = window(t, 0.0, t[-1], 0.4)
    phase = 2 * np.pi * t / period
    for s, off in (("l", 0.0), ("r", np.pi)):
        up = env * np.maximum(0.0, np.sin(phase + off)) ** 2
        set_leg(ch, s, 1.0, hip=1.2 * up, knee=1.6 * up, ankle=0.3 * up)
        set_arm(ch, s, 1.0, upper=(0.12 + 0.6 * env * np.maximum(0, -np.sin(phase + off)), 1.5))
    return ch


def arm_circle(a, body, rng, fps):
    n = int(rng.integers(2, 4))
    period = rng.uniform(0.8, 1.2)
    t = time_axis(n * period + 0.4, fps)
    ch = neutral_channels(len(t), body)
    angle = NEUTRAL["uarm_theta"] + 2 * np.pi * keys(t, [0.2, t[-1] - 0.2], [0.0, n])   # forward, up, back, down
    for s in limb_sides(a.side):
        set_arm(ch, s, 1.0, upper=(angle, 1.2), fore=(angle + 0.1, 1.2))
    return ch


def throw(a, body, rng, fps):
    wind, strike = rng.uniform(0.5, 0.7), rng.uniform(0.2, 0.3)
    t = time_axis(wind + strike + rng.uniform(0.6, 0.9), fps)
    ch = neutral_channels(len(t), body)
    knots = [0, wind, wind + strike, t[-1]]
    back = keys(t, knots, [0, 1, 0, 0])
    fwd = keys(t, knots, [0, 0, 1, 0])
    (s,) = limb_sides(a.side)
    sg = side_sign(a.side)
    set_arm(ch, s, back, upper=(2.2, -0.5), fore=(2.6, -0.3))
    set_arm(ch, s, fwd, upper=(1.4, 1.5), fore=(1.4, 1.55))
    ch[:, CH["spine_twist"]] = sg * 0.35 * back - sg * 0.35 * fwd
    blend(ch, "spine_flex", body.posture + 0.2, fwd)
    other = "r" if s == "l" else "l"
    set_leg(ch, other, 1.0, hip=0.35 * (back + fwd))      # the opposite foot steps forward
    return ch


BUILDERS = {
    "walk": walk, "walk_backward": walk_backward, "jog": jog, "run": run, "side_step": side_step,
    "turn": turn, "spin": spin, "jump": jump, "hop": hop, "squat": squat, "sit_down": sit_down,
    "stand_up": stand_up, "jumping_jacks": jumping_jacks, "wave": wave, "raise": raise_hand,
    "punch": punch, "kick": kick, "clap": clap, "bow": bow, "stretch": stretch, "lean": lean,
    "march": march, "arm_circle": arm_circle, "throw": throw,
}


def build_action(action: Action, body: Body, rng: np.random.Generator, fps: float) -> np.ndarray:
    """(T, C) pose channels for one action."""
    return BUILDERS[action.kind](action, body, rng, fps)
