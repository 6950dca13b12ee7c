"""Pose channels -> joint rotations and world positions (forward kinematics), vectorised over frames.

Pipeline (``pose_batch``, for many people at once):
  1. integrate the root: heading yaw from ``yaw_rate``, ground-plane position from the heading-frame
     velocities;
  2. gait: a phase advanced by the distance travelled (so steps match the speed, and walking
     backwards runs the cycle backwards) drives leg and arm swing on top of the posture channels;
  3. forward kinematics over the 22-joint tree: the spine, neck and head use Euler angles, limbs are
     *aimed* (each joint gets the smallest rotation turning its bone's rest direction onto the
     bone direction the channels ask for, expressed in the parent's frame);
  4. grounding: the body is lifted so the lowest foot touches the floor (plus ``lift`` for jumps).

Rotations follow the feature layout's convention: index 0 is the root's *global* rotation, every
other index the joint's *local* (parent-relative) rotation.  All matrices act on column vectors.
"""
from __future__ import annotations

import numpy as np

from .. import skeleton
from .body import CH, Body

J = skeleton.JOINT_INDEX
PARENTS = skeleton.PARENTS
_SPINE_SHARE = {"spine1": 0.3, "spine2": 0.35, "spine3": 0.35}


# ---- rotation helpers ((T,) angles -> (T, 3, 3) matrices) --------------------------------------

def rot_x(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    out = np.zeros(a.shape + (3, 3))
    out[..., 0, 0] = 1.0
    out[..., 1, 1], out[..., 1, 2], out[..., 2, 1], out[..., 2, 2] = c, -s, s, c
    return out


def rot_y(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    out = np.zeros(a.shape + (3, 3))
    out[..., 1, 1] = 1.0
    out[..., 0, 0], out[..., 0, 2], out[..., 2, 0], out[..., 2, 2] = c, s, -s, c
    return out


def rot_z(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    out = np.zeros(a.shape + (3, 3))
    out[..., 2, 2] = 1.0
    out[..., 0, 0], out[..., 0, 1], out[..., 1, 0], out[..., 1, 1] = c, -s, s, c
    return out


def swing(rest: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vector(s) ``rest`` (3,) or (T, 3) onto the direction of ``target`` (T, 3).

    Rodrigues with v = a x b, c = a . b:  R = I + [v]x + [v]x^2 / (1 + c).  Poses never ask for a
    bone to point exactly opposite its rest direction; 1 + c is floored to stay finite anyway.
    """
    bx, by, bz = target[:, 0], target[:, 1], target[:, 2]
    inv = 1.0 / np.sqrt(bx * bx + by * by + bz * bz)
    bx, by, bz = bx * inv, by * inv, bz * inv
    rest = np.broadcast_to(rest, target.shape)
    ax, ay, az = rest[:, 0], rest[:, 1], rest[:, 2]
    vx, vy, vz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx     # a x b
    k = 1.0 / np.maximum(1.0 + ax * bx + ay * by + az * bz, 1e-6)
    out = np.empty(target.shape[:1] + (3, 3))
    # I + K + K^2 k, with K^2 = v v^T - |v|^2 I
    vv = vx * vx + vy * vy + vz * vz
    out[:, 0, 0] = 1 + k * (vx * vx - vv)
    out[:, 1, 1] = 1 + k * (vy * vy - vv)
    out[:, 2, 2] = 1 + k * (vz * vz - vv)
    out[:, 0, 1] = -vz + k * vx * vy
    out[:, 1, 0] = vz + k * vx * vy
    out[:, 0, 2] = vy + k * vx * vz
    out[:, 2, 0] = -vy + k * vx * vz
    out[:, 1, 2] = -vx + k * vy * vz
    out[:, 2, 1] = vx + k * vy * vz
    return out


def spherical(theta: np.ndarray, psi: np.ndarray, side: float) -> np.ndarray:
    """Arm direction (T, 3) in the chest frame: theta from hanging down, psi from out-to-the-side."""
    st = np.sin(theta)
    return np.stack([side * st * np.cos(psi), -np.cos(theta), st * np.sin(psi)], axis=-1)


def _rotate_x(vec: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate (T, 3) vectors about +X by (T,) angles."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([vec[:, 0], c * vec[:, 1] - s * vec[:, 2], s * vec[:, 1] + c * vec[:, 2]], axis=-1)


# ---- root trajectory and gait ------------------------------------------------------------------
#
# Everything below works on a *batch*: several clips (people, motions) concatenated along the
# frame axis, so a whole chunk of the corpus goes through forward kinematics in one set of numpy
# calls (per-call overhead, not arithmetic, dominates for 100-frame clips).

def _integrate(rate: np.ndarray, bounds: np.ndarray, fps: float) -> np.ndarray:
    """Per clip, the integral of a per-second rate up to each frame (0 on the clip's first frame).

    rate (F, ...); bounds (n_clips + 1,) frame offsets of the clips.  Each clip is summed on its
    own, so a clip's result does not depend on which other clips share the batch.
    """
    out = np.zeros_like(rate)
    for a, b in zip(bounds[:-1], bounds[1:]):
        np.cumsum(rate[a:b - 1], axis=0, out=out[a + 1:b])
    return out / fps


def cycle_length(speed: np.ndarray, leg_length) -> np.ndarray:
    """Metres per gait cycle (two steps): ~1.5 m walking at 1.3 m/s, ~2.5 m running at 3.5 m/s."""
    return leg_length * (1.0 + 0.55 * np.abs(speed))


def apply_gait(ch: np.ndarray, bounds: np.ndarray, fps: float, leg_length, arm_style, phase0
               ) -> tuple[np.ndarray, np.ndarray]:
    """Add leg/arm swing driven by the distance travelled.  Returns (channels, arm swing (F, 2)).

    The left leg's phase is phi (right: phi + pi); hip flexion follows sin(phi), so the leg moving
    in the direction of travel (the swing leg) has cos(phi) * dphi/dt > 0 and bends its knee.
    """
    ch = ch.copy()
    fwd = ch[:, CH["fwd_vel"]]
    # turning on the spot also makes people step: ~one step per 90 degrees
    turn_steps = np.abs(ch[:, CH["yaw_rate"]]) * 0.32
    rate = fwd / cycle_length(fwd, leg_length) + turn_steps
    phi = phase0 + 2 * np.pi * _integrate(rate, bounds, fps)
    phi_side = 2 * np.pi * _integrate(np.abs(ch[:, CH["lat_vel"]]) / 0.8, bounds, fps)
    amp, run = ch[:, CH["gait_fwd"]], ch[:, CH["gait_run"]]
    side_amp = ch[:, CH["gait_side"]]
    hip_amp = amp * (0.32 + 0.28 * run)
    knee_amp = amp * (0.55 + 0.85 * run)
    direction = np.sign(rate + 1e-9)
    swing_arm = np.zeros((len(ch), 2))
    for k, (s, offset) in enumerate((("l", 0.0), ("r", np.pi))):
        p = phi + offset
        sin_p, cos_p = np.sin(p), np.cos(p)
        ch[:, CH[f"hip_flex_{s}"]] += hip_amp * sin_p
        ch[:, CH[f"knee_{s}"]] += knee_amp * np.maximum(0.0, cos_p * direction) ** 2 + 0.1 * amp
        ch[:, CH[f"ankle_{s}"]] += amp * (0.35 * np.maximum(0.0, -sin_p) - 0.12 * np.maximum(0.0, sin_p))
        # arms swing opposite to the leg on the same side
        swing_arm[:, k] = -amp * (0.22 + 0.25 * run) * arm_style * sin_p
        lifted = np.maximum(0.0, np.sin(phi_side + offset))
        ch[:, CH[f"hip_abd_{s}"]] += side_amp * 0.20 * lifted
        ch[:, CH[f"knee_{s}"]] += side_amp * 0.35 * lifted
    return ch, swing_arm


# ---- forward kinematics ------------------------------------------------------------------------

_AIMED = {  # joint whose rotation aims a bone -> the child at the bone's end
    "left_hip": "left_knee", "right_hip": "right_knee", "left_knee": "left_ankle",
    "right_knee": "right_ankle", "left_ankle": "left_foot", "right_ankle": "right_foot",
    "left_shoulder": "left_elbow", "right_shoulder": "right_elbow", "left_elbow": "left_wrist",
    "right_elbow": "right_wrist",
}


def _inverse_apply(rot: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """R^T v for (F, 3, 3) and (F, 3): a direction in the parent frame -> the joint's frame."""
    return np.einsum("fji,fj->fi", rot, vec)


def _apply(rot: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """R v for (F, 3, 3) and (F, 3)."""
    return np.einsum("fij,fj->fi", rot, vec)


def forward_kinematics(ch: np.ndarray, arm_swing: np.ndarray, yaw: np.ndarray, offsets: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Channels (F, C), joint-major offsets (22, F, 3) -> joint-major positions (22, F, 3) with each
    root at the origin and layout rotations (22, F, 3, 3)."""
    F = len(ch)
    rest_dir = {J[j]: offsets[J[c]] / np.linalg.norm(offsets[J[c]], axis=-1, keepdims=True)
                for j, c in _AIMED.items()}
    local: list[np.ndarray | None] = [None] * skeleton.NUM_JOINTS   # contiguous (F, 3, 3) each

    def c(name):
        return ch[:, CH[name]]

    local[0] = rot_y(yaw) @ rot_x(c("pelvis_pitch")) @ rot_z(-c("pelvis_roll"))
    for name, share in _SPINE_SHARE.items():
        local[J[name]] = (rot_y(share * c("spine_twist")) @ rot_x(share * c("spine_flex"))
                          @ rot_z(-share * c("spine_lat")))
    local[J["neck"]] = local[J["head"]] = rot_y(0.5 * c("head_yaw")) @ rot_x(0.5 * c("head_pitch"))
    identity = np.broadcast_to(np.eye(3), (F, 3, 3))
    for s, side in (("l", 1.0), ("r", -1.0)):
        prefix = "left_" if s == "l" else "right_"
        hip, knee, ankle = J[prefix + "hip"], J[prefix + "knee"], J[prefix + "ankle"]
        f, a, k = c(f"hip_flex_{s}"), c(f"hip_abd_{s}"), c(f"knee_{s}")
        ca = np.cos(a)
        lateral = side * np.sin(a)
        thigh = np.stack([lateral, -ca * np.cos(f), ca * np.sin(f)], axis=-1)       # pelvis frame
        shin = np.stack([lateral, -ca * np.cos(f - k), ca * np.sin(f - k)], axis=-1)
        foot = _rotate_x(rest_dir[ankle], c(f"ankle_{s}"))
        local[hip] = swing(rest_dir[hip], thigh)
        local[knee] = swing(rest_dir[knee], _inverse_apply(local[hip], shin))
        local[ankle] = swing(rest_dir[ankle], _inverse_apply(local[hip] @ local[knee], foot))
        local[J[prefix + "foot"]] = identity

        collar, shoulder, elbow = J[prefix + "collar"], J[prefix + "shoulder"], J[prefix + "elbow"]
        sw = arm_swing[:, 0 if s == "l" else 1]
        upper = _rotate_x(spherical(c(f"uarm_theta_{s}"), c(f"uarm_psi_{s}"), side), -sw)  # chest frame
        fore = _rotate_x(spherical(c(f"farm_theta_{s}"), c(f"farm_psi_{s}"), side), -sw)
        local[collar] = rot_z(side * c(f"collar_{s}"))
        local[shoulder] = swing(rest_dir[shoulder], _inverse_apply(local[collar], upper))
        local[elbow] = swing(rest_dir[elbow], _inverse_apply(local[collar] @ local[shoulder], fore))
        local[J[prefix + "wrist"]] = rot_x(c(f"wrist_{s}"))

    glob = [local[0]]
    pos = [np.zeros((F, 3))]
    for j in range(1, skeleton.NUM_JOINTS):
        p = PARENTS[j]
        glob.append(glob[p] @ local[j])
        pos.append(pos[p] + _apply(glob[p], offsets[j]))
    # joint-major (22, F, ...) stacks are plain block copies; callers slice clips and transpose
    return np.stack(pos), np.stack(local)


def ground(pos: np.ndarray, ankle_height: np.ndarray, toe_height: np.ndarray) -> np.ndarray:
    """(F,) vertical shift that puts the lowest ankle/toe of each frame on the floor (pos: (22, F, 3))."""
    ankles = np.minimum(pos[J["left_ankle"], :, 1], pos[J["right_ankle"], :, 1]) - ankle_height
    toes = np.minimum(pos[J["left_foot"], :, 1], pos[J["right_foot"], :, 1]) - toe_height
    return -np.minimum(ankles, toes)


def pose_batch(clips: list[np.ndarray], bodies: list[Body], fps: float, yaw0s, starts, phase0s
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Many people at once: channels (T_i, C) -> [(world joints (T_i, 22, 3), rotations (T_i, 22, 3, 3))].

    yaw0s / starts / phase0s: per clip initial heading, ground-plane (x, z) and gait phase.
    """
    lengths = np.array([len(c) for c in clips])
    seg = np.repeat(np.arange(len(clips)), lengths)                       # (F,) clip of each frame
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    ch = np.concatenate(clips, axis=0)

    def per_frame(values):
        return np.asarray(values, dtype=float)[seg]

    leg = per_frame([b.leg_length for b in bodies])
    ankle_h = per_frame([b.ankle_height for b in bodies])
    toe_h = ankle_h + per_frame([b.offsets[J["left_foot"], 1] for b in bodies])
    offsets = np.stack([b.offsets for b in bodies], axis=1)[:, seg]       # (22, F, 3) joint-major

    yaw = per_frame(yaw0s) + _integrate(ch[:, CH["yaw_rate"]], bounds, fps)
    sin_y, cos_y = np.sin(yaw), np.cos(yaw)
    fwd, lat = ch[:, CH["fwd_vel"]], ch[:, CH["lat_vel"]]
    # heading frame -> world: forward = (sin, cos), left = (cos, -sin) in (x, z)
    vel = np.stack([fwd * sin_y + lat * cos_y, fwd * cos_y - lat * sin_y], axis=-1)
    xz = np.asarray(starts, dtype=float)[seg] + _integrate(vel, bounds, fps)

    gait_ch, arm_swing = apply_gait(ch, bounds, fps, leg, per_frame([b.arm_swing for b in bodies]),
                                    per_frame(phase0s))
    pos, rot = forward_kinematics(gait_ch, arm_swing, yaw, offsets)          # (22, F, 3), (22, F, 3, 3)
    pos[:, :, 1] += ground(pos, ankle_h, toe_h) + ch[:, CH["lift"]]
    pos[:, :, 0] += xz[:, 0]
    pos[:, :, 2] += xz[:, 1]
    return [(pos[:, a:b].transpose(1, 0, 2), rot[:, a:b].transpose(1, 0, 2, 3))
            for a, b in zip(bounds[:-1], bounds[1:])]
