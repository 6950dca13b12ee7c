"""The two-person (T, 396) feature layout, shared by the synthetic generator and user 396-D data
(a loader of such data uses ``INTERACTION396_LAYOUT`` as its ``RawCorpus.layout``).

Columns, for person p in {0, 1} (block start b = p * 198):

    [b,      b + 66)   22 joint positions, joint-major (x, y, z per joint, joints in the order of
                       ``core.data.skeleton.JOINT_NAMES``), metres, in the *canonical frame*;
    [b + 66, b + 198)  22 rotations as 6D vectors, joint-major: joint 0 (root/pelvis) = its global
                       rotation in the canonical frame, every other joint = its local rotation
                       relative to its parent (``skeleton.PARENTS``).

Canonical frame: +Y up, metres; person 0's root at frame 0 sits at x = z = 0 (its height is kept)
and faces +Z, where "facing" is the root rotation's +Z axis projected onto the ground.  Both
persons are expressed in this one frame, so their relative position and orientation are kept.

Rotation-6D = the first two COLUMNS of the 3x3 matrix R (R acts on column vectors), flattened as
[r00, r10, r20, r01, r11, r21].

Left/right mirror (``INTERACTION396_LAYOUT.mirror_perm`` / ``mirror_sign``): within each person,
joint j takes the columns of its twin ``skeleton.MIRROR_JOINTS[j]``; positions negate x (sign
pattern (-1, +1, +1)); rotations become M R M with M = diag(-1, 1, 1), i.e. entry (i, k) is
multiplied by m_i * m_k, giving the 6D sign pattern (+, -, -, -, +, +).  The two persons are NOT
swapped (mirroring a scene leaves who is person 0 unchanged).
"""
from __future__ import annotations

import numpy as np

from .. import skeleton
from ..types import FeatureLayout

NUM_PERSONS = 2
POSITION_DIM = skeleton.NUM_JOINTS * 3          # 66
ROTATION_DIM = skeleton.NUM_JOINTS * 6          # 132
PERSON_DIM = POSITION_DIM + ROTATION_DIM        # 198
INTERACTION_DIM = NUM_PERSONS * PERSON_DIM      # 396

_POSITION_SIGN = (-1.0, 1.0, 1.0)
_ROT6D_SIGN = (1.0, -1.0, -1.0, -1.0, 1.0, 1.0)


def _mirror_tables() -> tuple[tuple[int, ...], tuple[float, ...]]:
    perm, sign = [0] * INTERACTION_DIM, [1.0] * INTERACTION_DIM
    for p in range(NUM_PERSONS):
        base = p * PERSON_DIM
        for j, twin in enumerate(skeleton.MIRROR_JOINTS):
            for c in range(3):
                perm[base + 3 * j + c] = base + 3 * twin + c
                sign[base + 3 * j + c] = _POSITION_SIGN[c]
            for c in range(6):
                perm[base + POSITION_DIM + 6 * j + c] = base + POSITION_DIM + 6 * twin + c
                sign[base + POSITION_DIM + 6 * j + c] = _ROT6D_SIGN[c]
    return tuple(perm), tuple(sign)


INTERACTION396_LAYOUT = FeatureLayout("interx396", INTERACTION_DIM, *_mirror_tables())


def rot6d(rotations: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 6): the first two columns, [r00, r10, r20, r01, r11, r21]."""
    return np.concatenate([rotations[..., :, 0], rotations[..., :, 1]], axis=-1)


def facing_yaw(root_rotation: np.ndarray) -> np.ndarray:
    """(..., 3, 3) root rotations -> (...,) heading angle from +Z towards +X (radians)."""
    return np.arctan2(root_rotation[..., 0, 2], root_rotation[..., 2, 2])


def canonicalize(positions: np.ndarray, rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move a scene into the canonical frame (see the module docstring).

    positions (T, P, 22, 3) world metres, rotations (T, P, 22, 3, 3) with index 0 global and the
    others local.  Returns new arrays; only the positions and the root rotations change.
    """
    yaw = float(facing_yaw(rotations[0, 0, 0]))
    c, s = np.cos(-yaw), np.sin(-yaw)
    turn = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])       # R_y(-yaw)
    origin = positions[0, 0, 0] * np.array([1.0, 0.0, 1.0])
    pos = (positions - origin) @ turn.T
    rot = rotations.copy()
    rot[:, :, 0] = turn @ rotations[:, :, 0]
    return pos, rot


def interaction_features(positions: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """World joints (T, 2, 22, 3) + rotations (T, 2, 22, 3, 3) -> (T, 396) float32 features."""
    if positions.shape[1:] != (NUM_PERSONS, skeleton.NUM_JOINTS, 3):
        raise ValueError(f"positions must be (T, 2, 22, 3), got {positions.shape}")
    if rotations.shape[1:] != (NUM_PERSONS, skeleton.NUM_JOINTS, 3, 3):
        raise ValueError(f"rotations must be (T, 2, 22, 3, 3), got {rotations.shape}")
    pos, rot = canonicalize(positions, rotations)
    T = len(pos)
    per_person = np.concatenate([pos.reshape(T, NUM_PERSONS, POSITION_DIM),
                                 rot6d(rot).reshape(T, NUM_PERSONS, ROTATION_DIM)], axis=-1)
    return per_person.reshape(T, INTERACTION_DIM).astype(np.float32)
