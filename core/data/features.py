"""Per-frame motion features and the column layouts (with their left/right mirrors) we know.

``joints_to_features`` turns world joint positions of the 22-joint layout (``skeleton.py``) into a
representation that does not change when the whole motion is rotated about the vertical axis or
translated: every quantity is either a height or expressed in the body's own facing frame.  It is
our own representation (not HumanML3D's 263-D one) so that any joint source (BVH, AMASS joints)
can be turned into features without inverse kinematics.  ``pair_features`` does the same for two
people (T, 2, 22, 3) -> (T, 278): both persons' features plus where B stands and faces relative to A.

``HML263_LAYOUT`` / ``KIT251_LAYOUT`` describe the HumanML3D ``new_joint_vecs`` features (SMPL
22 joints / KIT-ML 21 joints) so their mirror can be applied without going back to joints.
"""
from __future__ import annotations

import numpy as np

from . import skeleton
from .types import FeatureLayout

FEATURE_DIM = 137
# Column blocks of the joints22 layout (see joints_to_features).
ROOT_HEIGHT = slice(0, 1)
ROOT_VELOCITY = slice(1, 3)
YAW_VELOCITY = slice(3, 4)
LOCAL_POSITIONS = slice(4, 67)
LOCAL_VELOCITIES = slice(67, 133)
FOOT_CONTACTS = slice(133, 137)

# Foot contact = the joint is slow and close to the floor.  HumanML3D uses a speed of ~0.9 m/s
# (0.002 squared metres per frame at 20 fps); ankles sit ~8 cm above the floor when flat, toes ~2 cm.
CONTACT_MAX_SPEED = 0.9                     # m/s
CONTACT_MAX_HEIGHT = (0.15, 0.08, 0.15, 0.08)  # m above the floor, per FOOT_JOINTS entry
FACING_SMOOTH_SECONDS = 0.05               # Gaussian sigma for the facing direction ("lightly smoothed")


def _gaussian_smooth_time(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Smooth (T, ...) along time with a Gaussian, repeating the edge frames (linear, so it
    commutes with rotations and reflections of the vectors being smoothed)."""
    if sigma_frames < 0.5 or len(x) < 2:
        return x
    radius = int(np.ceil(3 * sigma_frames))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma_frames) ** 2)
    weights /= weights.sum()
    idx = np.clip(np.arange(len(x))[:, None] + offsets[None, :], 0, len(x) - 1)  # (T, K)
    return np.tensordot(weights, x[idx], axes=([0], [1])) if x.ndim > 1 else x[idx] @ weights


def facing_directions(joints: np.ndarray, fps: float) -> np.ndarray:
    """(T, 22, 3) -> (T, 2) unit forward direction (x, z) in the ground plane, per frame.

    across = (r_hip - l_hip) + (r_shoulder - l_shoulder); forward = up x across (for a person whose
    left is +X this is +Z).  Frames where the body's across axis is vertical (lying on one side)
    have no ground-plane facing: they reuse the nearest earlier valid frame (+Z if none).
    """
    l_hip, r_hip = skeleton.HIP_JOINTS
    l_sh, r_sh = skeleton.SHOULDER_JOINTS
    across = (joints[:, r_hip] - joints[:, l_hip]) + (joints[:, r_sh] - joints[:, l_sh])  # (T, 3)
    across = _gaussian_smooth_time(across, FACING_SMOOTH_SECONDS * fps)
    # up x across with up = (0, 1, 0): (across_z, 0, -across_x)
    forward = np.stack([across[:, 2], -across[:, 0]], axis=-1)  # (T, 2) as (x, z)
    norm = np.linalg.norm(forward, axis=-1)
    valid = norm > 1e-6
    if not valid.any():
        out = np.zeros_like(forward)
        out[:, 1] = 1.0
        return out
    # forward-fill invalid frames from the last valid one (back-fill the leading ones)
    last_valid = np.maximum.accumulate(np.where(valid, np.arange(len(valid)), -1))
    last_valid = np.where(last_valid < 0, int(np.argmax(valid)), last_valid)
    forward, norm = forward[last_valid], norm[last_valid]
    return forward / norm[:, None]


def _to_facing_frame(vectors: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Rotate world vectors (T, ..., 3) about Y so that each frame's forward maps to +Z.

    With forward f = (fx, fz): local_z = v . f, local_x = v . (fz, -fx) (the body's left, +X for a
    person facing +Z), local_y = v_y.
    """
    fx, fz = forward[:, 0], forward[:, 1]
    shape = (len(forward),) + (1,) * (vectors.ndim - 2)
    fx, fz = fx.reshape(shape), fz.reshape(shape)
    vx, vy, vz = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    return np.stack([vx * fz - vz * fx, vy, vx * fx + vz * fz], axis=-1)


def _forward_difference(x: np.ndarray, fps: float) -> np.ndarray:
    """(T, ...) -> (T, ...) per-second change x[t+1] - x[t]; the last frame repeats the one before."""
    if len(x) < 2:
        return np.zeros_like(x)
    d = np.diff(x, axis=0) * fps
    return np.concatenate([d, d[-1:]], axis=0)


def joints_to_features(joints: np.ndarray, fps: float, floor: float | None = None) -> np.ndarray:
    """World joints (T, 22, 3) in metres, +Y up -> invariant features (T, 137) float32.

    Heights are measured above the motion's floor = the lowest point any foot joint reaches in the
    clip (or ``floor``, a world height, when given: a scene's shared floor), so a clip recorded with
    the floor at y != 0 gives the same features.  "Facing frame" =
    the frame's heading (from hips + shoulders, see ``facing_directions``), with x = the body's
    lateral (left) axis, y = up, z = forward.  Columns:

      [0]        root (pelvis) height above the floor, m
      [1:3]      root velocity in the ground plane, in the facing frame (lateral x, forward z), m/s
      [3]        yaw angular velocity of the facing direction, rad/s (positive = turning left)
      [4:67]     joints 1..21 relative to the root in the facing frame: (x, height above floor, z)
      [67:133]   velocities of all 22 joints in the facing frame (x, y, z), m/s
      [133:137]  foot contacts of left_ankle, left_foot, right_ankle, right_foot in {0, 1}
                 (speed < 0.9 m/s and height < 15 cm (ankle) / 8 cm (toes))

    Velocities are forward differences (x[t+1] - x[t]) * fps rotated by frame t's facing; the
    last frame repeats the previous one so the output has T rows.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape (T, {skeleton.NUM_JOINTS}, 3), got {joints.shape}")
    T = len(joints)
    floor = joints[:, list(skeleton.FOOT_JOINTS), 1].min() if floor is None else float(floor)
    root = joints[:, 0]                                                   # (T, 3)
    forward = facing_directions(joints, fps)                              # (T, 2)

    root_height = root[:, 1:2] - floor                                    # (T, 1)
    root_velocity = _to_facing_frame(_forward_difference(root, fps), forward)[:, [0, 2]]  # (T, 2)
    yaw = np.arctan2(forward[:, 0], forward[:, 1])                        # (T,) angle from +Z towards +X
    yaw_step = np.angle(np.exp(1j * np.diff(yaw))) * fps if T > 1 else np.zeros(0)
    yaw_velocity = np.concatenate([yaw_step, yaw_step[-1:] if T > 1 else [0.0]])[:, None]  # (T, 1)

    relative = joints[:, 1:] - root[:, None, :]                           # (T, 21, 3)
    local = _to_facing_frame(relative, forward)
    local[..., 1] = joints[:, 1:, 1] - floor                              # absolute height
    velocities = _forward_difference(joints, fps)                         # (T, 22, 3)
    local_vel = _to_facing_frame(velocities, forward)

    feet = list(skeleton.FOOT_JOINTS)
    speed = np.linalg.norm(velocities[:, feet], axis=-1)                  # (T, 4)
    height = joints[:, feet, 1] - floor
    contacts = (speed < CONTACT_MAX_SPEED) & (height < np.asarray(CONTACT_MAX_HEIGHT))

    out = np.concatenate([root_height, root_velocity, yaw_velocity, local.reshape(T, -1),
                          local_vel.reshape(T, -1), contacts.astype(np.float64)], axis=1)
    return out.astype(np.float32)


# ---- two people ---------------------------------------------------------------------------------
# (T, 278) = person A's 137 columns, person B's 137 columns (each as joints_to_features, in that
# person's own facing frame, heights above the scene's shared floor), then where B is relative to A,
# in A's facing frame: B's root - A's root on the ground (lateral x, forward z; m) and B's forward
# direction (unit (x, z)).
PAIR_FEATURE_DIM = 2 * FEATURE_DIM + 4
PAIR_B = slice(FEATURE_DIM, 2 * FEATURE_DIM)
PAIR_RELATIVE_POSITION = slice(2 * FEATURE_DIM, 2 * FEATURE_DIM + 2)
PAIR_RELATIVE_FACING = slice(2 * FEATURE_DIM + 2, 2 * FEATURE_DIM + 4)


def pair_features(joints: np.ndarray, fps: float) -> np.ndarray:
    """World joints of two people (T, 2, 22, 3), metres, +Y up -> (T, 278) float32.

    Each person's own features say how each moves but not where the two are relative to each other
    (each block is in its own facing frame); the last 4 columns keep that, per frame, in A's facing
    frame: B's root offset on the ground (x = A's left, z = A's forward) and B's facing direction
    ((0, 1) = the same way as A, (0, -1) = towards A when B stands in front).  B's height relative to
    A is in the two root heights, which share one floor (the lowest foot joint of either person).
    Invariant to rotating / translating the whole scene, like ``joints_to_features``.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 4 or joints.shape[1:] != (2, skeleton.NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape (T, 2, {skeleton.NUM_JOINTS}, 3), got {joints.shape}")
    floor = joints[:, :, list(skeleton.FOOT_JOINTS), 1].min()
    a, b = joints[:, 0], joints[:, 1]                                      # (T, 22, 3) each
    forward_a = facing_directions(a, fps)                                  # (T, 2) as (x, z)
    forward_b = facing_directions(b, fps)
    offset = _to_facing_frame(b[:, 0] - a[:, 0], forward_a)[:, [0, 2]]     # (T, 2)
    b_forward = np.stack([forward_b[:, 0], np.zeros(len(b)), forward_b[:, 1]], axis=-1)  # (T, 3)
    facing = _to_facing_frame(b_forward, forward_a)[:, [0, 2]]            # (T, 2)
    return np.concatenate([joints_to_features(a, fps, floor), joints_to_features(b, fps, floor),
                           offset.astype(np.float32), facing.astype(np.float32)], axis=1)


def resample_linear(x: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Resample (T, ...) sampled at src_fps to dst_fps by linear interpolation in time.

    Output frame k is at time k / dst_fps, for every k whose time lies within the source clip.
    """
    if abs(src_fps - dst_fps) < 1e-9 or len(x) < 2:
        return x
    duration = (len(x) - 1) / src_fps
    n_out = int(np.floor(duration * dst_fps + 1e-6)) + 1
    pos = np.arange(n_out) * (src_fps / dst_fps)                           # fractional source index
    lo = np.minimum(np.floor(pos).astype(np.int64), len(x) - 2)
    w = (pos - lo).reshape((-1,) + (1,) * (x.ndim - 1))
    return x[lo] * (1 - w) + x[lo + 1] * w


# ---- mirror signed permutations -----------------------------------------------------------------

def _mirror_tables(dim: int, blocks: list[tuple[int, list[int], int, list[float]]],
                   negate: tuple[int, ...], swaps: tuple[tuple[int, int], ...]):
    """Build (perm, sign) so that mirrored = x[:, perm] * sign.

    blocks: (start, twin, width, per-component sign) — a block of len(twin) joints, ``width``
    columns each; joint k's columns take twin[k]'s columns times the sign pattern.
    negate: single columns whose sign flips.  swaps: pairs of single columns exchanged.
    """
    perm, sign = list(range(dim)), [1.0] * dim
    for start, twin, width, comp_sign in blocks:
        for k, t in enumerate(twin):
            for c in range(width):
                perm[start + k * width + c] = start + t * width + c
                sign[start + k * width + c] = comp_sign[c]
    for col in negate:
        sign[col] = -1.0
    for a, b in swaps:
        perm[a], perm[b] = b, a
    return tuple(perm), tuple(sign)


_POS_SIGN = [-1.0, 1.0, 1.0]                 # lateral x flips
# 6D rotation = first two columns of R; mirroring is R -> M R M with M = diag(-1, 1, 1), so entry
# (i, j) gets sign m_i * m_j: column 0 -> (+, -, -), column 1 -> (-, +, +).
_ROT6D_SIGN = [1.0, -1.0, -1.0, -1.0, 1.0, 1.0]

_TWIN22 = list(skeleton.MIRROR_JOINTS)
_TWIN22_NONROOT = [t - 1 for t in _TWIN22[1:]]          # joints 1..21 re-indexed from 0

JOINTS22_LAYOUT = FeatureLayout("joints22", FEATURE_DIM, *_mirror_tables(
    FEATURE_DIM,
    [(LOCAL_POSITIONS.start, _TWIN22_NONROOT, 3, _POS_SIGN),
     (LOCAL_VELOCITIES.start, _TWIN22, 3, _POS_SIGN)],
    negate=(1, 3),                                       # lateral root velocity, yaw velocity
    swaps=((133, 135), (134, 136)),                      # left <-> right contacts
))

# Two people: each person's block mirrors like JOINTS22_LAYOUT (the persons are not swapped: the
# mirror of a scene keeps who is A, as INTERACTION396_LAYOUT); the relative offset and facing
# negate their lateral x.
JOINTS22_PAIR_LAYOUT = FeatureLayout(
    "joints22x2", PAIR_FEATURE_DIM,
    JOINTS22_LAYOUT.mirror_perm + tuple(FEATURE_DIM + p for p in JOINTS22_LAYOUT.mirror_perm)
    + tuple(range(2 * FEATURE_DIM, PAIR_FEATURE_DIM)),
    JOINTS22_LAYOUT.mirror_sign * 2 + (-1.0, 1.0, -1.0, 1.0),
)

# HumanML3D new_joint_vecs (263 = 1 + 2 + 1 + 21*3 + 21*6 + 22*3 + 4): root yaw velocity, root
# velocity (x, z), root height, ric (joints 1..21 relative to the root, facing frame), 6D local
# rotations of joints 1..21, velocities of 22 joints, contacts (l_ankle, l_foot, r_ankle, r_foot).
HML263_LAYOUT = FeatureLayout("hml263", 263, *_mirror_tables(
    263,
    [(4, _TWIN22_NONROOT, 3, _POS_SIGN), (67, _TWIN22_NONROOT, 6, _ROT6D_SIGN),
     (193, _TWIN22, 3, _POS_SIGN)],
    negate=(0, 1),
    swaps=((259, 261), (260, 262)),
))

# KIT-ML (21 joints; chains: spine 0-1-2-3-4, arms 3-5-6-7 / 3-8-9-10, legs 0-11..15 / 0-16..20;
# HumanML3D's KIT processing treats 11/16 as right/left hips and 5/8 as right/left shoulders).
# Its rest offsets are symmetric under x -> -x, so the same sign patterns hold.
# 251 = 1 + 2 + 1 + 20*3 + 20*6 + 21*3 + 4; contacts: fid_l = (19, 20) first, then fid_r = (14, 15).
KIT_MIRROR_JOINTS = (0, 1, 2, 3, 4, 8, 9, 10, 5, 6, 7, 16, 17, 18, 19, 20, 11, 12, 13, 14, 15)
KIT251_LAYOUT = FeatureLayout("kit251", 251, *_mirror_tables(
    251,
    [(4, [t - 1 for t in KIT_MIRROR_JOINTS[1:]], 3, _POS_SIGN),
     (64, [t - 1 for t in KIT_MIRROR_JOINTS[1:]], 6, _ROT6D_SIGN),
     (184, list(KIT_MIRROR_JOINTS), 3, _POS_SIGN)],
    negate=(0, 1),
    swaps=((247, 249), (248, 250)),
))


def layout_for_dim(dim: int) -> FeatureLayout:
    """The layout a (T, dim) array of a HumanML3D-style source most likely has."""
    if dim == HML263_LAYOUT.dim:
        return HML263_LAYOUT
    if dim == KIT251_LAYOUT.dim:
        return KIT251_LAYOUT
    if dim == JOINTS22_LAYOUT.dim:
        return JOINTS22_LAYOUT
    return FeatureLayout("raw", int(dim))
