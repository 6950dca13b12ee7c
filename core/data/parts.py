"""Body parts: which feature columns belong to the torso and each limb, and the part texts that go with them.

A part-level model (``core/parts.py``, SGAR-style) reads a motion as five parts and matches each with a part
text ("the right arm waves twice").  Two things are needed from the data:

* ``part_columns(layout)``: for each of ``PART_NAMES`` the column indices of a (T, D) feature array that
  describe it, for every layout whose joints we know (joints22, hml263, kit251, interx396, joints22x2).
  Root quantities (height, ground velocity, yaw rate) belong to the torso, foot contacts to their leg.
  Two-person layouts put both people's columns of a part into that part.
* part texts per motion (``MotionItem.parts``): 5 strings in ``PART_NAMES`` order, from the GAR
  annotation format (``check_part_descriptions``) or the synthetic corpus.  ``mirror_parts`` gives the
  texts of the left/right mirrored motion (left and right limbs swap, and so do the words).

Joint groups follow the usual SMPL split (torso = pelvis, spines, neck, head; an arm = collar, shoulder,
elbow, wrist; a leg = hip, knee, ankle, foot) and, for KIT-ML, HumanML3D's KIT chains (right arm 5-7,
left arm 8-10, right leg 11-15, left leg 16-20).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import skeleton
from .errors import DataError
from .mirror_text import mirror_caption

PART_NAMES = ("torso", "left_arm", "right_arm", "left_leg", "right_leg")
MIRRORED_PART_ORDER = (0, 2, 1, 4, 3)   # part i of a mirrored motion is part MIRRORED_PART_ORDER[i] of the original

_SMPL_PARTS = {
    "torso": ("pelvis", "spine1", "spine2", "spine3", "neck", "head"),
    "left_arm": ("left_collar", "left_shoulder", "left_elbow", "left_wrist"),
    "right_arm": ("right_collar", "right_shoulder", "right_elbow", "right_wrist"),
    "left_leg": ("left_hip", "left_knee", "left_ankle", "left_foot"),
    "right_leg": ("right_hip", "right_knee", "right_ankle", "right_foot"),
}
SMPL_PART_OF_JOINT = tuple(next(PART_NAMES.index(p) for p, names in _SMPL_PARTS.items() if n in names)
                           for n in skeleton.JOINT_NAMES)                     # (22,) part index per joint
KIT_PART_OF_JOINT = (0, 0, 0, 0, 0, 2, 2, 2, 1, 1, 1, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3)   # (21,)
_L_LEG, _R_LEG, _TORSO = PART_NAMES.index("left_leg"), PART_NAMES.index("right_leg"), 0


def _from_blocks(dim: int, blocks, single: dict[int, int]) -> tuple[np.ndarray, ...]:
    """blocks: (start column, part index of each joint row, row width); single: column -> part."""
    owner = np.full(dim, -1)
    for start, joint_parts, width in blocks:
        for row, part in enumerate(joint_parts):
            owner[start + row * width: start + (row + 1) * width] = part
    for column, part in single.items():
        owner[column] = part
    assert (owner >= 0).all(), f"unassigned columns {np.flatnonzero(owner < 0)[:5]}"
    return tuple(np.flatnonzero(owner == p) for p in range(len(PART_NAMES)))


def _joints22_blocks(offset: int = 0) -> tuple[list, dict]:
    # core/data/features.py: [0:4] root, [4:67] joints 1..21, [67:133] 22 velocities, [133:137] contacts
    smpl = SMPL_PART_OF_JOINT
    return ([(offset + 4, smpl[1:], 3), (offset + 67, smpl, 3)],
            {**{offset + c: _TORSO for c in range(4)}, offset + 133: _L_LEG, offset + 134: _L_LEG,
             offset + 135: _R_LEG, offset + 136: _R_LEG})


@lru_cache(maxsize=None)
def _columns(kind: str, dim: int) -> tuple[np.ndarray, ...] | None:
    smpl, kit = SMPL_PART_OF_JOINT, KIT_PART_OF_JOINT
    if kind == "joints22" and dim == 137:
        return _from_blocks(dim, *_joints22_blocks())
    if kind == "hml263" and dim == 263:
        # 1 + 2 + 1 root, 21 * 3 ric, 21 * 6 rotations, 22 * 3 velocities, 4 contacts (l, l, r, r)
        return _from_blocks(dim, [(4, smpl[1:], 3), (67, smpl[1:], 6), (193, smpl, 3)],
                            {0: 0, 1: 0, 2: 0, 3: 0, 259: _L_LEG, 260: _L_LEG, 261: _R_LEG, 262: _R_LEG})
    if kind == "kit251" and dim == 251:
        # contacts: fid_l = joints (19, 20) first (left leg), then fid_r = (14, 15) (right leg)
        return _from_blocks(dim, [(4, kit[1:], 3), (64, kit[1:], 6), (184, kit, 3)],
                            {0: 0, 1: 0, 2: 0, 3: 0, 247: _L_LEG, 248: _L_LEG, 249: _R_LEG, 250: _R_LEG})
    if kind == "joints22x2" and dim == 278:
        # person A's joints22 block, person B's, then B's ground offset and facing in A's frame (torso)
        blocks_a, single_a = _joints22_blocks(0)
        blocks_b, single_b = _joints22_blocks(137)
        return _from_blocks(dim, blocks_a + blocks_b, {**single_a, **single_b, **{c: _TORSO for c in range(274, 278)}})
    if kind == "interx396" and dim == 396:
        # per person (198 columns): 22 positions (3 each) then 22 rotations (6 each)
        return _from_blocks(dim, [(b, smpl, 3) for b in (0, 198)] + [(b + 66, smpl, 6) for b in (0, 198)], {})
    return None


def part_columns(kind: str, dim: int) -> tuple[np.ndarray, ...]:
    """Column indices of each part (``PART_NAMES`` order) for a layout; DataError for one we cannot split."""
    columns = _columns(kind, dim)
    if columns is None:
        raise DataError(f"feature layout {kind!r} (D={dim}) cannot be split into body parts: which columns "
                        f"belong to which joint is unknown.",
                        fix="use a layout with known joints (joints22 137, joints22x2 278, hml263 263, kit251 251, "
                            "interx396 396; joint positions load with --format joints), or another motion_encoder.")
    return columns


def can_split(kind: str, dim: int) -> bool:
    return _columns(kind, dim) is not None


# Feature width -> the layout kind a part model assumes (a model is built from the width alone, e.g.
# when a checkpoint is loaded; ``core.train`` checks the corpus's real layout kind before building).
SPLITTABLE_KINDS = {137: "joints22", 263: "hml263", 251: "kit251", 396: "interx396", 278: "joints22x2"}


def part_columns_for_dim(dim: int) -> tuple[np.ndarray, ...]:
    return part_columns(SPLITTABLE_KINDS.get(dim, "raw"), dim)


def mirror_parts(parts: tuple[str, ...]) -> tuple[str, ...]:
    """The part texts of the left/right mirrored motion: limbs swap places and 'left'/'right' swap words."""
    return tuple(mirror_caption(parts[i]) for i in MIRRORED_PART_ORDER)


def check_part_descriptions(value, where=None, what: str = "part_descriptions") -> tuple[str, ...] | None:
    """A GAR ``part_descriptions`` mapping -> 5 texts in ``PART_NAMES`` order (None when absent).

    GAR writes ``{"right_arm": ..., "left_arm": ..., "right_leg": ..., "left_leg": ..., "torso": ...}``;
    every part must be a non-empty string (an idle limb is described too: "stands still").
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise DataError(f"{what} must be an object with the keys {', '.join(PART_NAMES)}; got "
                        f"{type(value).__name__}.", where=where)
    missing = [p for p in PART_NAMES if p not in value]
    extra = sorted(set(value) - set(PART_NAMES))
    if missing or extra:
        raise DataError(f"{what} must have exactly the keys {', '.join(PART_NAMES)} (missing: {missing or 'none'}, "
                        f"unknown: {extra or 'none'}).", where=where,
                        fix="describe every part, e.g. \"left_leg\": \"stands still\".")
    texts = tuple(value[p] for p in PART_NAMES)
    for name, text in zip(PART_NAMES, texts):
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{what}[{name!r}] must be a non-empty string, got {text!r}.", where=where)
    return tuple(t.strip() for t in texts)
