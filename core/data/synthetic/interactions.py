"""Two-person interactions: ``Interaction`` -> pose channels of the initiator and the other person,
plus where the other person stands.

Builders work in the initiator's frame (initiator at the origin facing +Z).  A ``Placement`` says
where the other person starts and which way they face; for contact interactions (handshake, hug,
push, ...) it also names the joints that must meet at the contact frame, and the scene assembler
shifts the other person so that those joints end ``gap`` metres apart (so hands really meet,
whatever the two bodies' sizes and however far they walked before).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .body import CH, Body, neutral_channels, side_sign
from .curves import blend, keys, limb_sides, ramp, set_arm, time_axis, window
from .primitives import Action, build_action
from .timeline import overlap_frames, sequence

_LR, _LRB = ("left", "right"), ("left", "right", "both")
# kind -> the attributes it takes and their values ("initiator": roles are named in captions;
# "approach": may start by walking up to each other).  Every value is stated in every caption.
INTERACTION_KINDS = {
    "handshake": {"approach": True}, "high_five": {"side": ("right", "both"), "approach": True},
    "hug": {"approach": True}, "push": {"initiator": True, "side": _LRB}, "pull": {"initiator": True},
    "handover": {"initiator": True, "side": _LR}, "wave_each_other": {"initiator": True, "side": _LRB},
    "bow_each_other": {"initiator": True, "variant": ("slight", "deep")},
    "approach": {"initiator": True, "variant": ("walk", "run")}, "walk_away": {"initiator": True},
    "follow": {"initiator": True, "variant": ("walk", "jog")},
    "punch": {"initiator": True, "side": _LR, "count": (1, 2)}, "kick": {"initiator": True, "side": _LR},
    "pass_by": {},
}


@dataclass(frozen=True)
class Interaction:
    kind: str
    initiator: int | None = None   # 0 or 1: the person who starts it; None for symmetric kinds
    side: str | None = None        # the initiator's hand/leg ("both" for two-handed)
    approach: bool = False         # they first walk up to each other
    count: int | None = None       # repetitions (punches)
    variant: str | None = None     # bow depth, walking or running, ...

    def key(self) -> str:
        parts = [self.kind]
        if self.initiator is not None:
            parts.append(f"by={self.initiator}")
        if self.side:
            parts.append(self.side)
        if self.count is not None:
            parts.append(f"x{self.count}")
        if self.variant:
            parts.append(self.variant)
        if self.approach:
            parts.append("approach")
        return "|".join(parts)


@dataclass(frozen=True)
class Followup:
    """After the interaction, one person (index in the output order) performs a solo action."""
    person: int
    action: Action

    def key(self) -> str:
        return f"p{self.person}:{self.action.key()}"


# Solo actions that make sense right after an interaction, wherever the partner stands.
FOLLOWUP_KINDS = ("wave", "raise", "turn", "jump", "clap", "bow", "squat", "spin", "lean", "stretch",
                  "arm_circle")


@dataclass(frozen=True)
class Placement:
    other_yaw: float = np.pi                # the other person's heading (pi = facing the initiator)
    other_xz: tuple = (0.0, 2.0)            # the other person's start, in the initiator's frame
    contact_time: float | None = None       # seconds; None = no contact constraint
    initiator_joints: tuple = ()
    other_joints: tuple = ()
    gap: float = 0.0                        # distance left between the contact joints, m


def _move(ch, t, t0, duration, dist, gait=1.0):
    """Add a displacement of ``dist`` m (negative = backwards) over [t0, t0 + duration] with steps."""
    x = np.clip((t - t0) / duration, 0.0, 1.0)
    inside = (t >= t0) & (t <= t0 + duration)
    ch[:, CH["fwd_vel"]] += np.where(inside, dist * (1 - np.cos(2 * np.pi * x)) / duration, 0.0)
    ch[:, CH["gait_fwd"]] = np.maximum(ch[:, CH["gait_fwd"]], gait * np.sin(np.pi * x) ** 0.5 * inside)


def _insert(ch, clip, start):
    """Overwrite frames [start, start + len(clip)) with a clip that starts and ends at neutral."""
    end = min(len(ch), start + len(clip))
    ch[start:end] = clip[:end - start]


def _walk(ch, t, t0, dist, speed, rise=0.5, run=0.0):
    """Walk (or run) ``dist`` m from t0 at ``speed`` with smooth ramps.  Returns the end time."""
    t1 = t0 + dist / speed + rise            # the ramps lose rise/2 each, so the distance is exact
    w = window(t, t0, t1, rise)
    ch[:, CH["fwd_vel"]] += speed * w
    ch[:, CH["gait_fwd"]] = np.maximum(ch[:, CH["gait_fwd"]], w)
    if run:
        blend(ch, "gait_run", run, w)
        blend(ch, "spine_flex", 0.1 + 0.08 * run, w)
        for s in "lr":  # elbows bent, forearms forward
            set_arm(ch, s, w, upper=(0.2, 0.3), fore=(1.2 + 0.4 * run, 1.45))
    return t1


def _approach_walk(rng, ch_pair, t, t0):
    """Both walk 0.8-1.8 m towards each other starting near t0; returns when both have arrived."""
    return max(_walk(ch, t, t0 + rng.uniform(0.0, 0.3), rng.uniform(0.8, 1.8), rng.uniform(0.9, 1.3))
               for ch in ch_pair)


def _reach(ch, side, t, t_on, t_off, upper, fore, rise=0.55):
    w = window(t, t_on, t_off, rise)
    set_arm(ch, side, w, upper=upper, fore=fore)
    return w


def _contact_scene(kind, inter, bodies, rng, fps):
    """Handshake, high five, hug (optionally after walking up to each other)."""
    t = time_axis(10.0, fps)
    a, b = (neutral_channels(len(t), body) for body in bodies)
    t0 = rng.uniform(0.2, 0.6)
    if inter.approach:
        t0 = _approach_walk(rng, (a, b), t, t0) - rng.uniform(0.3, 0.5)
    reach = rng.uniform(0.5, 0.7)
    tc = t0 + reach + rng.uniform(0.0, 0.2)
    if kind == "handshake":
        n, period = int(rng.integers(2, 4)), rng.uniform(0.35, 0.45)
        hold = n * period
        shake = 0.15 * np.sin(2 * np.pi * np.clip((t - tc) / period, 0, n))   # both hands move together
        for ch, delay in ((a, 0.0), (b, rng.uniform(0.0, 0.25))):
            _reach(ch, "r", t, t0 + delay, tc + hold + 0.5, (0.8, 1.45), (1.45 + shake, 1.75), rise=tc - t0 - delay)
            blend(ch, "spine_flex", 0.08, window(t, t0, tc + hold + 0.5, 0.4))
        joints, gap = ("right_wrist",), 0.10
    elif kind == "high_five":
        sides = ("r",) if inter.side == "right" else ("l", "r")
        hold = 0.3
        slap = keys(t, [tc - 0.2, tc, tc + 0.3], [0.0, 1.0, 0.0])
        for ch in (a, b):
            for s in sides:
                _reach(ch, s, t, t0, tc + 0.8, (2.0 - 0.3 * slap, 1.25), (2.6 - 0.5 * slap, 1.5), rise=tc - t0)
        joints, gap = (("right_wrist",) if inter.side == "right" else ("left_wrist", "right_wrist")), 0.08
    else:  # hug
        hold = rng.uniform(1.0, 2.0)
        turn = rng.choice([-1.0, 1.0]) * 0.35
        for ch in (a, b):
            w = window(t, t0, tc + hold + 0.6, tc - t0)
            for s in "lr":
                set_arm(ch, s, w, upper=(1.25, 1.3), fore=(1.5, 2.5))
            blend(ch, "spine_flex", 0.12, w)
            blend(ch, "head_yaw", turn, w)
        joints, gap = ("spine3",), rng.uniform(0.26, 0.32)
    end = tc + hold + 0.6 + rng.uniform(0.3, 0.8)
    frames = int(round(end * fps))
    placement = Placement(contact_time=tc, initiator_joints=joints, other_joints=joints, gap=gap)
    return a[:frames], b[:frames], placement


def _push_pull(kind, inter, bodies, rng, fps):
    t = time_axis(6.0, fps)
    a, b = (neutral_channels(len(t), body) for body in bodies)
    tc = rng.uniform(0.9, 1.5)
    if kind == "push":
        w = keys(t, [tc - 0.45, tc, tc + 0.15, tc + 0.7], [0, 1, 1, 0])
        hands = limb_sides(inter.side or "both")
        inward = 0.0 if len(hands) == 2 else 0.27     # one hand aims at the middle of the chest
        for s in hands:
            set_arm(a, s, w, upper=(1.45, 1.5 + inward), fore=(1.5, 1.6 + inward))
        if len(hands) == 1:   # a one-handed push turns that shoulder into it
            a[:, CH["spine_twist"]] += -side_sign(hands[0]) * 0.25 * w
        _move(a, t, tc - 0.45, 0.65, rng.uniform(0.2, 0.35), gait=0.6)
        stagger = rng.uniform(0.5, 0.9)
        _move(b, t, tc, 1.0, -stagger, gait=1.0)
        hit = window(t, tc, tc + 1.4, 0.2)
        blend(b, "spine_flex", -0.25, hit)
        blend(b, "head_pitch", -0.2, hit)
        for s in "lr":
            set_arm(b, s, hit, upper=(0.7, 0.4), fore=(1.2, 0.9))
        names = {"l": "left_wrist", "r": "right_wrist"}
        placement = Placement(contact_time=tc, initiator_joints=tuple(names[h] for h in hands),
                              other_joints=("spine3",), gap=0.12)
        end = tc + 1.4
    else:  # pull: grab the other's right wrist with the right hand and step back
        d = rng.uniform(0.5, 0.8)
        grip = window(t, tc - 0.6, tc + 1.7, 0.6)
        bend = ramp(t, tc + 0.2, tc + 1.3)
        set_arm(a, "r", grip, upper=(0.8 - 0.3 * bend, 1.45), fore=(1.45 + 0.3 * bend, 1.75))
        set_arm(b, "r", grip, upper=(0.8, 1.45), fore=(1.4, 1.75))
        _move(a, t, tc + 0.2, 1.1, -d, gait=0.8)
        _move(b, t, tc + 0.25, 1.1, d * rng.uniform(0.95, 1.1), gait=1.0)
        blend(b, "spine_flex", 0.3, window(t, tc + 0.2, tc + 1.6, 0.3))
        placement = Placement(contact_time=tc, initiator_joints=("right_wrist",), other_joints=("right_wrist",),
                              gap=0.05)
        end = tc + 1.7
    frames = int(round((end + rng.uniform(0.3, 0.8)) * fps))
    return a[:frames], b[:frames], placement


def _handover(kind, inter, bodies, rng, fps):
    t = time_axis(6.0, fps)
    a, b = (neutral_channels(len(t), body) for body in bodies)
    s = "l" if inter.side == "left" else "r"
    tc = rng.uniform(1.0, 1.6)
    _reach(a, s, t, tc - 0.7, tc + 0.6, (0.85, 1.4), (1.45, 1.6))
    take = ramp(t, tc + 0.15, tc + 0.8)
    w = window(t, tc - 0.6, t[-1], 0.5)
    set_arm(b, "r", w, upper=(0.85 - 0.45 * take, 1.4 - 0.2 * take), fore=(1.45 + 0.8 * take, 1.65 + 0.2 * take))
    end = tc + rng.uniform(1.4, 2.0)
    lower = ramp(t, end - 0.5, end)
    set_arm(b, "r", lower, upper=(0.12, 0.0), fore=(0.3, 1.2))
    placement = Placement(contact_time=tc, initiator_joints=(f"{'left' if s == 'l' else 'right'}_wrist",),
                          other_joints=("right_wrist",), gap=0.10)
    frames = int(round((end + rng.uniform(0.2, 0.6)) * fps))
    return a[:frames], b[:frames], placement


def _gesture_reply(kind, inter, bodies, rng, fps):
    """Wave or bow, and the other person answers in kind."""
    if kind == "wave_each_other":
        first = Action("wave", inter.side, int(rng.integers(2, 4)))
        reply = Action("wave", str(rng.choice(["left", "right"])), int(rng.integers(2, 4)))
        dist, answer = rng.uniform(2.5, 5.0), rng.uniform(0.0, 0.4)
    else:
        first = reply = Action("bow", variant=inter.variant or "slight")
        dist, answer = rng.uniform(1.3, 2.4), rng.uniform(0.8, 1.3)
    clip_a, clip_b = build_action(first, bodies[0], rng, fps), build_action(reply, bodies[1], rng, fps)
    start_a = int(rng.uniform(0.2, 0.7) * fps)
    start_b = start_a + int(len(clip_a) * (0.55 if kind == "bow_each_other" else 1.0)) + int(answer * fps)
    frames = start_b + len(clip_b) + int(rng.uniform(0.2, 0.6) * fps)
    a, b = neutral_channels(frames, bodies[0]), neutral_channels(frames, bodies[1])
    _insert(a, clip_a, start_a)
    _insert(b, clip_b, start_b)
    return a, b, Placement(other_xz=(rng.uniform(-0.4, 0.4), dist))


def _walk_clip(body, rng, fps, dist, speed, run=0.0):
    """A walk (run) of exactly ``dist`` metres at ``speed``, standing still at both ends."""
    t = time_axis(dist / speed + 0.5 + 1.0 / fps, fps)
    ch = neutral_channels(len(t), body)
    _walk(ch, t, 0.0, dist, speed, run=run)
    return ch


def _locomotion(kind, inter, bodies, rng, fps):
    a_body, b_body = bodies
    pre = int(rng.uniform(0.2, 0.5) * fps)
    if kind == "approach":
        running = inter.variant == "run"
        start, stop = rng.uniform(5.0, 8.0) if running else rng.uniform(3.5, 6.0), rng.uniform(0.8, 1.3)
        speed = rng.uniform(2.6, 3.4) if running else rng.uniform(1.0, 1.4)
        walk = _walk_clip(a_body, rng, fps, start - stop, speed, run=1.0 if running else 0.0)
        clip_a, clip_b, placement = walk, None, Placement(other_xz=(rng.uniform(-0.2, 0.2), start))
    elif kind == "walk_away":
        turn = build_action(Action("turn", str(rng.choice(["left", "right"])), variant="180"), a_body, rng, fps)
        walk = _walk_clip(a_body, rng, fps, rng.uniform(2.0, 3.5), rng.uniform(1.0, 1.4))
        clip_a = sequence([turn, walk], overlap_frames([turn, walk], rng, fps))
        clip_b, placement = None, Placement(other_xz=(rng.uniform(-0.2, 0.2), rng.uniform(0.9, 1.4)))
    elif kind == "follow":
        jog = 0.55 if inter.variant == "jog" else 0.0
        speed = rng.uniform(2.0, 2.6) if jog else rng.uniform(0.9, 1.4)
        dist = rng.uniform(5.0, 8.0) if jog else rng.uniform(3.0, 5.5)
        clip_a = _walk_clip(a_body, rng, fps, dist, speed, run=jog)
        clip_b = _walk_clip(b_body, rng, fps, dist * rng.uniform(0.9, 1.05), speed, run=jog)
        placement = Placement(other_yaw=0.0, other_xz=(rng.uniform(-0.3, 0.3), -rng.uniform(1.2, 2.2)))
    else:  # pass_by: walk towards each other, offset sideways, and keep going past
        gap = rng.uniform(6.0, 8.0)
        v = rng.uniform(1.0, 1.5, size=2)
        duration = gap / v.sum() + rng.uniform(1.2, 2.0)
        clip_a = _walk_clip(a_body, rng, fps, duration * v[0], v[0])
        clip_b = _walk_clip(b_body, rng, fps, duration * v[1], v[1])
        placement = Placement(other_xz=(rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 0.8), gap))
    delay = int(rng.uniform(0.4, 0.9) * fps) if kind == "follow" else 0
    busy = max(len(clip_a), delay + (len(clip_b) if clip_b is not None else 0))
    frames = pre + busy + int(rng.uniform(0.3, 0.8) * fps)
    a, b = neutral_channels(frames, a_body), neutral_channels(frames, b_body)
    a[pre:pre + len(clip_a)] = clip_a
    if clip_b is not None:
        b[pre + delay:pre + delay + len(clip_b)] = clip_b
    return a, b, placement


def _strike(kind, inter, bodies, rng, fps):
    """Punch(es) or a kick; the other person is hit (at every strike) and staggers back."""
    clip = build_action(Action(kind, inter.side, inter.count or 1), bodies[0], rng, fps)
    s = "l" if inter.side == "left" else "r"
    limb = clip[:, CH[f"uarm_theta_{s}"] if kind == "punch" else CH[f"hip_flex_{s}"]]
    high = limb.min() + 0.7 * (limb.max() - limb.min())
    peaks = [i for i in range(1, len(limb) - 1) if limb[i] >= limb[i - 1] and limb[i] > limb[i + 1] and limb[i] > high]
    start = int(rng.uniform(0.3, 0.7) * fps)
    frames = start + max(len(clip), peaks[-1] + int(1.8 * fps)) + int(rng.uniform(0.2, 0.5) * fps)
    a, b = neutral_channels(frames, bodies[0]), neutral_channels(frames, bodies[1])
    _insert(a, clip, start)
    t = np.arange(frames) / fps
    hits = [(start + p) / fps for p in peaks]
    recoil = sum(keys(t, [h, h + 0.15, h + 0.7], [0.0, 1.0, 0.0]) for h in hits)    # one jolt per strike
    guard = window(t, hits[0], hits[-1] + 1.5, 0.15)
    back = rng.uniform(0.3, 0.5)
    for h in hits:
        _move(b, t, h, 0.9, -back / len(hits), gait=0.8)
    if kind == "punch":
        blend(b, "head_pitch", -0.4, recoil)
        blend(b, "spine_flex", -0.25, np.maximum(recoil, 0.5 * guard))
        for arm in "lr":
            set_arm(b, arm, guard, upper=(0.5, 1.1), fore=(2.3, 1.5))
        joints, target, gap = (f"{inter.side}_wrist",), ("head",), 0.10
    else:
        blend(b, "spine_flex", 0.5, guard)
        for arm in "lr":
            set_arm(b, arm, guard, upper=(0.6, 1.4), fore=(1.5, 2.0))
        joints, target, gap = (f"{inter.side}_ankle",), ("spine1",), 0.12
    return a, b, Placement(contact_time=hits[0], initiator_joints=joints, other_joints=target, gap=gap)


_BUILDERS = {"handshake": _contact_scene, "high_five": _contact_scene, "hug": _contact_scene,
             "push": _push_pull, "pull": _push_pull, "handover": _handover,
             "wave_each_other": _gesture_reply, "bow_each_other": _gesture_reply,
             "approach": _locomotion, "walk_away": _locomotion, "follow": _locomotion, "pass_by": _locomotion,
             "punch": _strike, "kick": _strike}


def build_interaction(inter: Interaction, bodies: tuple[Body, Body], rng: np.random.Generator, fps: float
                      ) -> tuple[np.ndarray, np.ndarray, Placement]:
    """(initiator channels (T, C), other channels (T, C), placement of the other person)."""
    return _BUILDERS[inter.kind](inter.kind, inter, bodies, rng, fps)
