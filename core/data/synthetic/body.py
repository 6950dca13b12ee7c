"""Bodies and the pose-channel vocabulary of the synthetic generator.

A motion is authored as a (T, C) array of *pose channels* (one row per frame, columns named in
``CHANNELS``) rather than as rotation matrices: channels are angles and velocities with an
anatomical meaning ("left hip flexion", "right upper-arm elevation"), so primitives are short to
write, cross-fading two motions is a linear blend, and a left/right mirror of a motion is a signed
permutation of channels (``mirror_channels``).  ``kinematics.py`` turns channels into joint
rotations and positions.

Channel conventions (radians, metres, seconds; "s" below is +1 for left limbs, -1 for right):

* root motion, *added* when motions overlap: ``fwd_vel``/``lat_vel`` (m/s in the body's heading
  frame; lateral positive = towards the body's left), ``yaw_rate`` (rad/s, positive = turning
  left), ``lift`` (m above the grounded height, for jumps).
* posture, *cross-faded* when motions overlap: pelvis pitch/roll, spine flexion (forward),
  lateral bend (towards the left) and twist (shoulders turning left), head pitch (down) and yaw
  (left); gait amplitudes (``gait_fwd`` drives leg/arm swing from the distance walked, ``gait_side``
  sideways steps, ``gait_run`` the longer running swing); per leg hip flexion (thigh forward),
  abduction (away from the midline), knee flexion, ankle (toes down); per arm the upper arm and
  forearm directions in the chest frame as spherical angles (theta: 0 = hanging down, pi/2 =
  horizontal, pi = straight up; psi: 0 = out to the side, pi/2 = forward, > pi/2 = across the
  body, < 0 = behind), collar shrug and wrist flexion.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import skeleton

_ROOT = ("fwd_vel", "lat_vel", "yaw_rate", "lift")
_POSTURE = ("pelvis_pitch", "pelvis_roll", "spine_flex", "spine_lat", "spine_twist",
            "head_pitch", "head_yaw", "gait_fwd", "gait_side", "gait_run")
_LEG = ("hip_flex", "hip_abd", "knee", "ankle")
_ARM = ("uarm_theta", "uarm_psi", "farm_theta", "farm_psi", "collar", "wrist")
SIDES = ("l", "r")

CHANNELS: tuple[str, ...] = (_ROOT + _POSTURE
                             + tuple(f"{n}_{s}" for s in SIDES for n in _LEG)
                             + tuple(f"{n}_{s}" for s in SIDES for n in _ARM))
NUM_CHANNELS = len(CHANNELS)
CH = {name: i for i, name in enumerate(CHANNELS)}
ADDITIVE = np.zeros(NUM_CHANNELS, dtype=bool)
ADDITIVE[[CH[n] for n in _ROOT]] = True

# Channels whose sign flips under a left/right mirror (lateral velocity, turning, sideways bends).
_MIRROR_NEGATE = ("lat_vel", "yaw_rate", "pelvis_roll", "spine_lat", "spine_twist", "head_yaw")


def _mirror_tables() -> tuple[np.ndarray, np.ndarray]:
    perm = np.arange(NUM_CHANNELS)
    for i, name in enumerate(CHANNELS):
        if name.endswith("_l"):
            perm[i] = CH[name[:-2] + "_r"]
        elif name.endswith("_r"):
            perm[i] = CH[name[:-2] + "_l"]
    sign = np.ones(NUM_CHANNELS)
    sign[[CH[n] for n in _MIRROR_NEGATE]] = -1.0
    return perm, sign


_MIRROR_PERM, _MIRROR_SIGN = _mirror_tables()


def mirror_channels(channels: np.ndarray) -> np.ndarray:
    """(T, C) -> (T, C): the same motion performed with left and right exchanged."""
    return channels[:, _MIRROR_PERM] * _MIRROR_SIGN


def side_sign(side: str) -> float:
    """+1 for the left limb (+X in the body frame), -1 for the right."""
    return 1.0 if side in ("l", "left") else -1.0


# ---- the skeleton's rest pose ------------------------------------------------------------------

# Offsets of each joint from its parent in an SMPL-like T-pose (arms along +-X, facing +Z), for a
# 1.72 m adult, left side only (+X); right joints are mirrored so every body is exactly symmetric
# (a mirrored motion is then a valid motion of the same body).
_REFERENCE_HEIGHT = 1.72
_LEFT_OFFSETS = {
    "left_hip": (0.060, -0.090, -0.010), "left_knee": (0.005, -0.380, 0.000),
    "left_ankle": (-0.010, -0.400, -0.030), "left_foot": (0.020, -0.055, 0.125),
    "left_collar": (0.075, 0.115, -0.010), "left_shoulder": (0.110, 0.040, -0.010),
    "left_elbow": (0.260, 0.000, -0.005), "left_wrist": (0.250, 0.000, 0.000),
}
_MID_OFFSETS = {
    "pelvis": (0.0, 0.0, 0.0), "spine1": (0.0, 0.110, -0.020), "spine2": (0.0, 0.135, 0.010),
    "spine3": (0.0, 0.055, 0.000), "neck": (0.0, 0.210, -0.020), "head": (0.0, 0.090, 0.045),
}
ANKLE_HEIGHT = 0.08  # rest-pose height of the ankle joint above the floor at the reference height

_LEG_JOINTS = ("knee", "ankle", "foot")
_ARM_JOINTS = ("elbow", "wrist")


@dataclass(frozen=True)
class Body:
    """One subject: rest offsets (22, 3) in metres and a few style constants."""
    offsets: np.ndarray      # (22, 3) joint offset from its parent, T-pose
    height: float            # approximate standing height, m
    leg_length: float        # hip to floor, m
    ankle_height: float      # ankle joint above the floor when the foot is flat, m
    arm_swing: float         # style: scales the arm swing while walking
    posture: float           # style: forward lean of the upper body, rad


def make_body(height: float = _REFERENCE_HEIGHT, leg: float = 1.0, arm: float = 1.0, torso: float = 1.0,
              shoulders: float = 1.0, hips: float = 1.0, arm_swing: float = 1.0, posture: float = 0.0) -> Body:
    """A body scaled to ``height`` with relative limb proportions (1.0 = reference)."""
    s = height / _REFERENCE_HEIGHT
    offsets = np.zeros((skeleton.NUM_JOINTS, 3))
    for name, off in _MID_OFFSETS.items():
        offsets[skeleton.JOINT_INDEX[name]] = np.asarray(off) * s * torso
    for name, off in _LEFT_OFFSETS.items():
        off = np.asarray(off) * s
        part = name[len("left_"):]
        if part in _LEG_JOINTS:
            off = off * leg
        elif part in _ARM_JOINTS:
            off = off * arm
        elif part == "hip":
            off = off * np.array([hips, 1.0, 1.0])
        elif part in ("collar", "shoulder"):
            off = off * np.array([shoulders, torso, 1.0])
        offsets[skeleton.JOINT_INDEX[name]] = off
        twin = skeleton.MIRROR_JOINTS[skeleton.JOINT_INDEX[name]]
        offsets[twin] = off * np.array([-1.0, 1.0, 1.0])
    ankle_height = ANKLE_HEIGHT * s * leg
    hip, knee, ankle = (skeleton.JOINT_INDEX[n] for n in ("left_hip", "left_knee", "left_ankle"))
    leg_length = float(-(offsets[hip, 1] + offsets[knee, 1] + offsets[ankle, 1]) + ankle_height)
    return Body(offsets, float(height), leg_length, float(ankle_height), float(arm_swing), float(posture))


def sample_body(rng: np.random.Generator) -> Body:
    """A random adult: height 1.50-1.95 m and +-6-12 % limb proportions."""
    return make_body(height=float(np.clip(rng.normal(1.72, 0.09), 1.50, 1.95)),
                     leg=rng.uniform(0.94, 1.06), arm=rng.uniform(0.93, 1.07),
                     torso=rng.uniform(0.95, 1.05), shoulders=rng.uniform(0.90, 1.12),
                     hips=rng.uniform(0.90, 1.12), arm_swing=rng.uniform(0.6, 1.4),
                     posture=rng.uniform(-0.04, 0.10))


# ---- neutral posture ---------------------------------------------------------------------------

# Relaxed standing: arms hang slightly away from the body, elbows a little bent, knees soft.
NEUTRAL = {"uarm_theta": 0.12, "uarm_psi": 0.0, "farm_theta": 0.30, "farm_psi": 1.2, "knee": 0.05}


def neutral_channels(frames: int, body: Body) -> np.ndarray:
    """(T, C) channels of a person standing still in their own relaxed posture."""
    ch = np.zeros((frames, NUM_CHANNELS))
    for name, value in NEUTRAL.items():
        for s in SIDES:
            ch[:, CH[f"{name}_{s}"]] = value
    ch[:, CH["spine_flex"]] = body.posture
    return ch
