"""Sampling motion specs, rendering them to joints, and assembling the corpus.

Determinism: motion i of a corpus uses its own generator seeded from (seed, people, i) via
``SeedSequence(seed, spawn_key=(people, i))``, so it is the same whatever n is, and nothing uses
numpy's global RNG.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import DataError
from ..features import JOINTS22_LAYOUT, joints_to_features
from ..types import MotionItem, RawCorpus
from .body import Body, sample_body
from .captions import action_captions, sequence_key
from .interaction_captions import interaction_captions
from .interactions import FOLLOWUP_KINDS, INTERACTION_KINDS, Followup, Interaction, Placement, build_interaction
from .kinematics import J, pose_batch
from .layout import INTERACTION396_LAYOUT, interaction_features
from .part_texts import part_descriptions
from .primitives import BUILDERS, Action, build_action
from .timeline import add_pose_noise, overlap_frames, pad, sequence

GENERATOR_VERSION = 1   # bump whenever the generated output changes
MIN_SECONDS, MAX_SECONDS = 2.0, 10.0
LR, LRB = ("left", "right"), ("left", "right", "both")
# Attributes each action kind can take (every combination is a distinct caption group).
ACTION_DOMAINS = {
    "walk": {"speed": ("slow", "normal", "fast")}, "walk_backward": {"speed": ("slow", "normal")},
    "jog": {}, "run": {}, "side_step": {"side": LR}, "turn": {"side": LR, "variant": ("90", "180")},
    "spin": {"side": LR}, "jump": {"count": (1, 2, 3), "variant": ("in_place", "forward")},
    "hop": {"side": LR, "count": (2, 3)}, "squat": {"count": (1, 2, 3)}, "sit_down": {},
    "jumping_jacks": {"count": (2, 3, 4)}, "wave": {"side": LRB, "count": (1, 2, 3)}, "raise": {"side": LRB},
    "punch": {"side": LR, "count": (1, 2, 3)}, "kick": {"side": LR, "count": (1, 2)},
    "clap": {"count": (2, 3, 4)}, "bow": {"variant": ("slight", "deep")}, "stretch": {}, "lean": {"side": LR},
    "march": {}, "arm_circle": {"side": LRB}, "throw": {"side": LR},
}
assert set(ACTION_DOMAINS) | {"stand_up"} == set(BUILDERS)
SEQUENCE_LENGTH_P = (0.40, 0.35, 0.25)   # 1, 2 or 3 actions
CHUNK = 64                               # motions per forward-kinematics batch
FOLLOWUP_P = 0.35                        # two people: share of scenes where one then acts alone


@dataclass
class SyntheticMotion:
    """One rendered motion with its raw kinematics (world frame) and its text."""
    spec: tuple                    # (Action, ...), (Interaction,) or (Interaction, Followup)
    joints: np.ndarray             # (T, 22, 3) or (T, 2, 22, 3) world metres, +Y up
    rotations: np.ndarray          # (T, 22, 3, 3) or (T, 2, 22, 3, 3): root global, others local
    captions: list[str]
    group: str


def motion_rng(seed: int, people: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(people, index)))


# ---- spec sampling -------------------------------------------------------------------------------

def sample_action(rng: np.random.Generator, kind: str | None = None) -> Action:
    if kind is None:
        kinds = list(ACTION_DOMAINS)
        kind = kinds[int(rng.integers(len(kinds)))]
    attrs = {name: values[int(rng.integers(len(values)))] for name, values in ACTION_DOMAINS[kind].items()}
    return Action(kind, **attrs)


def sample_actions(rng: np.random.Generator) -> tuple[Action, ...]:
    """1-3 actions; no kind twice in a row; sitting down ends the clip or is followed by standing up."""
    n = int(rng.choice(3, p=SEQUENCE_LENGTH_P)) + 1
    out: list[Action] = []
    while len(out) < n:
        a = sample_action(rng)
        if out and a.kind == out[-1].kind:
            continue
        out.append(a)
        if a.kind == "sit_down" and len(out) < n:
            out.append(Action("stand_up"))
    return tuple(out)


def sample_interaction(rng: np.random.Generator, kind: str | None = None) -> Interaction:
    kinds = list(INTERACTION_KINDS)
    kind = kind or kinds[int(rng.integers(len(kinds)))]
    domain = INTERACTION_KINDS[kind]

    def choose(name):
        values = domain.get(name)
        return values[int(rng.integers(len(values)))] if values else None

    return Interaction(kind, initiator=int(rng.integers(2)) if domain.get("initiator") else None,
                       side=choose("side"), approach=bool(domain.get("approach") and rng.random() < 0.4),
                       count=choose("count"), variant=choose("variant"))


def sample_spec(rng: np.random.Generator, people: int) -> tuple:
    """(Action, ...) for one person; (Interaction,) or (Interaction, Followup) for two."""
    if people == 1:
        return sample_actions(rng)
    inter = sample_interaction(rng)
    if rng.random() >= FOLLOWUP_P:
        return (inter,)
    action = sample_action(rng, FOLLOWUP_KINDS[int(rng.integers(len(FOLLOWUP_KINDS)))])
    if action.kind == "jump":      # jumping forward could land on the partner
        action = Action("jump", count=action.count, variant="in_place")
    return inter, Followup(int(rng.integers(2)), action)


# ---- rendering -----------------------------------------------------------------------------------

def _pads(frames: int, rng: np.random.Generator, fps: float) -> tuple[int, int]:
    """Idle frames before/after: 0.2-1.0 s each, more if the clip is shorter than MIN_SECONDS."""
    before, after = (int(rng.uniform(0.2, 1.0) * fps) for _ in range(2))
    short = int(np.ceil(MIN_SECONDS * fps)) - (frames + before + after)
    if short > 0:
        before += short // 2
        after += short - short // 2
    room = int(MAX_SECONDS * fps) - frames
    return min(before, max(room // 2, 0)), min(after, max(room - room // 2, 0))


def _world_pose(rng: np.random.Generator) -> tuple[float, tuple[float, float]]:
    return float(rng.uniform(-np.pi, np.pi)), (float(rng.uniform(-2, 2)), float(rng.uniform(-2, 2)))


@dataclass
class _Draft:
    """A motion whose channels, bodies and text are drawn, waiting for forward kinematics."""
    spec: tuple
    captions: list[str]
    group: str
    clips: list[np.ndarray]               # per person (T, C) channels
    bodies: list[Body]
    yaw0s: list[float]
    starts: list[tuple[float, float]]
    phase0s: list[float]
    finish: Callable[[list], tuple[np.ndarray, np.ndarray]]   # posed people -> (joints, rotations)


def _single_finish(posed):
    return posed[0]


def prepare_actions(actions: tuple[Action, ...], rng: np.random.Generator, fps: float = 20.0,
                    body: Body | None = None, noise: bool = True) -> _Draft:
    body = body or sample_body(rng)
    actions = tuple(actions)
    clips = [build_action(a, body, rng, fps) for a in actions]
    overlaps = overlap_frames(clips, rng, fps)
    # too long for MAX_SECONDS: drop actions from the end (keeping the captions in step)
    while len(clips) > 1 and sum(map(len, clips)) - sum(overlaps) > MAX_SECONDS * fps:
        clips, overlaps, actions = clips[:-1], overlaps[:-1], actions[:-1]
    ch = sequence(clips, overlaps) if len(clips) > 1 else clips[0]
    ch = pad(ch, *_pads(len(ch), rng, fps), body)[: int(MAX_SECONDS * fps)]
    if noise:
        ch = add_pose_noise(ch, rng, fps)
    yaw0, start = _world_pose(rng)
    phase0 = float(rng.choice([0.0, np.pi]))
    return _Draft(actions, action_captions(list(actions), rng), sequence_key(actions), [ch], [body], [yaw0],
                  [start], [phase0], _single_finish)


def _place_other(pos_a: np.ndarray, pos_b: np.ndarray, placement: Placement, frame: int) -> np.ndarray:
    """Shift the other person (T, 22, 3) in the ground plane so the contact joints end ``gap`` apart."""
    a = pos_a[frame, [J[n] for n in placement.initiator_joints]].mean(0)
    b = pos_b[frame, [J[n] for n in placement.other_joints]].mean(0)
    shift = a + np.array([0.0, 0.0, placement.gap]) - b     # the other person stands in front (+Z)
    shift[1] = 0.0
    return pos_b + shift


def _turn_scene(pos: np.ndarray, rot: np.ndarray, yaw: float, offset) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(yaw), np.sin(yaw)
    turn = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    pos = pos @ turn.T + np.array([offset[0], 0.0, offset[1]])
    rot = rot.copy()
    rot[..., 0, :, :] = turn @ rot[..., 0, :, :]
    return pos, rot


def _append_followup(ch_pair, bodies, who: int, followup: Followup, rng, fps):
    """Person ``who`` (0 = initiator's channels) performs the follow-up; the other holds still.
    Returns the new channel pair, or None if the result would be longer than MAX_SECONDS."""
    clip = build_action(followup.action, bodies[who], rng, fps)
    overlap = overlap_frames([ch_pair[who], clip], rng, fps)
    extra = len(clip) - overlap[0]
    if len(ch_pair[who]) + extra > (MAX_SECONDS - 0.4) * fps:
        return None
    out = list(ch_pair)
    out[who] = sequence([ch_pair[who], clip], overlap)
    out[1 - who] = pad(ch_pair[1 - who], 0, extra, bodies[1 - who])
    return out


def prepare_interaction(inter: Interaction, rng: np.random.Generator, fps: float = 20.0,
                        bodies: tuple[Body, Body] | None = None, noise: bool = True,
                        followup: Followup | None = None) -> _Draft:
    bodies = bodies or (sample_body(rng), sample_body(rng))
    # person 0 is the initiator when there is one; symmetric scenes put either first
    first = inter.initiator if inter.initiator is not None else int(rng.integers(2))
    ch_a, ch_b, placement = build_interaction(inter, bodies, rng, fps)
    if followup is not None:
        # follow-up person in output order -> channel index (0 = the initiator's channels)
        pair = _append_followup((ch_a, ch_b), bodies, 0 if followup.person == first else 1, followup, rng, fps)
        if pair is None:
            followup = None                       # too long: the captions will not mention it
        else:
            ch_a, ch_b = pair
    before, after = _pads(len(ch_a), rng, fps)
    limit = int(MAX_SECONDS * fps)
    ch_a, ch_b = (pad(ch, before, after, body)[:limit] for ch, body in zip((ch_a, ch_b), bodies))
    if noise:
        ch_a, ch_b = add_pose_noise(ch_a, rng, fps), add_pose_noise(ch_b, rng, fps)
    phases = rng.uniform(0, 2 * np.pi, size=2)
    yaw, offset = _world_pose(rng)

    def finish(posed):
        (pos_a, rot_a), (pos_b, rot_b) = posed
        if placement.contact_time is not None:
            frame = min(len(pos_a) - 1, before + int(round(placement.contact_time * fps)))
            pos_b = _place_other(pos_a, pos_b, placement, frame)
        order = (0, 1) if first == 0 else (1, 0)
        pos = np.stack([(pos_a, pos_b)[k] for k in order], axis=1)        # (T, 2, 22, 3)
        rot = np.stack([(rot_a, rot_b)[k] for k in order], axis=1)        # (T, 2, 22, 3, 3)
        return _turn_scene(pos, rot, yaw, offset)

    spec = (inter,) if followup is None else (inter, followup)
    group = inter.key() if followup is None else f"{inter.key()} > {followup.key()}"
    return _Draft(spec, interaction_captions(inter, rng, followup), group, [ch_a, ch_b], list(bodies),
                  [0.0, placement.other_yaw], [(0.0, 0.0), placement.other_xz], list(phases), finish)


def prepare(spec, rng: np.random.Generator, fps: float = 20.0, noise: bool = True) -> _Draft:
    """Draw everything random for an ``Action``, a sequence of Actions, an ``Interaction`` or
    (Interaction, Followup)."""
    if isinstance(spec, (Action, Interaction)):
        spec = (spec,)
    if isinstance(spec[0], Interaction):
        return prepare_interaction(spec[0], rng, fps, noise=noise, followup=spec[1] if len(spec) > 1 else None)
    return prepare_actions(tuple(spec), rng, fps, noise=noise)


def finish_all(drafts: list[_Draft], fps: float) -> list[SyntheticMotion]:
    """Forward kinematics for all drafts in one batch, then each draft's placement."""
    people = [(d, k) for d in drafts for k in range(len(d.clips))]
    posed = pose_batch([d.clips[k] for d, k in people], [d.bodies[k] for d, k in people], fps,
                       [d.yaw0s[k] for d, k in people], [d.starts[k] for d, k in people],
                       [d.phase0s[k] for d, k in people])
    out, at = [], 0
    for d in drafts:
        joints, rotations = d.finish(posed[at:at + len(d.clips)])
        at += len(d.clips)
        out.append(SyntheticMotion(d.spec, joints, rotations, d.captions, d.group))
    return out


def render(spec, rng: np.random.Generator, fps: float = 20.0, noise: bool = True) -> SyntheticMotion:
    """Render one spec (see ``prepare``) to world joints, rotations, captions and group."""
    return finish_all([prepare(spec, rng, fps, noise)], fps)[0]


def generate_motion(spec, rng: np.random.Generator, fps: float = 20.0, noise: bool = True
                    ) -> tuple[np.ndarray, list[str], str]:
    """(world joints (T, 22, 3) or (T, 2, 22, 3), captions, group) for one spec."""
    m = render(spec, rng, fps, noise)
    return m.joints, m.captions, m.group


def motion_features(m: SyntheticMotion, fps: float) -> np.ndarray:
    """(T, 396) interaction features for two people, (T, 137) joints22 features for one."""
    if m.joints.ndim == 4:
        return interaction_features(m.joints, m.rotations)
    return joints_to_features(m.joints, fps)


def generate_synthetic(n: int = 1500, people: int = 2, seed: int = 0, fps: float = 20.0) -> RawCorpus:
    """The embedded text-motion corpus: n motions of 1 person (joints22 features, D=137) or
    2 people (interaction features, D=396), 2-10 s each, 2-4 captions per motion."""
    if people not in (1, 2):
        raise DataError(f"synthetic option people={people} is invalid; use 1 or 2.")
    if n < 1:
        raise DataError(f"synthetic option n={n} is invalid; use n >= 1.")
    if not 0 < fps < float("inf"):   # inf passes "> 0" and overflows int(seconds * fps)
        raise DataError(f"synthetic option fps={fps} is invalid; use a positive number such as 20.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:   # SeedSequence: >= 0
        raise DataError(f"synthetic option seed={seed!r} is invalid; use a whole number >= 0.")
    items = []
    for lo in range(0, n, CHUNK):
        drafts = []
        for i in range(lo, min(n, lo + CHUNK)):
            rng = motion_rng(seed, people, i)
            drafts.append(prepare(sample_spec(rng, people), rng, fps))
        for i, m in enumerate(finish_all(drafts, fps), lo):
            items.append(MotionItem(id=f"syn{people}p_{i:05d}", features=motion_features(m, fps),
                                    captions=m.captions, group=m.group, source="synthetic",
                                    parts=part_descriptions(m.spec)))
    kinds = sorted(INTERACTION_KINDS) if people == 2 else sorted(BUILDERS)
    return RawCorpus(
        name=f"synthetic(n={n},people={people},seed={seed})", items=items, fps=float(fps),
        layout=INTERACTION396_LAYOUT if people == 2 else JOINTS22_LAYOUT, splits=None,
        meta={"generator_version": GENERATOR_VERSION, "generator": "core.data.synthetic", "n": n,
              "people": people, "seed": seed, "kinds": kinds,
              "groups": len({it.group for it in items})},
    )
