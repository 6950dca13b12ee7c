"""Units and up axis of joint positions from a file, shared by the BVH and joint-position loaders.

Both end in the 22-joint layout in metres with +Y up (``skeleton.py``); what differs is only where
the size comes from (BVH: the skeleton's rest offsets; joint files: bone lengths measured on the
positions), so the unit names, the guess from a body size and the up-axis rotations live here once.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import skeleton
from ..errors import DataError

UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}      # metres per file unit
UP_AXES = {  # proper rotations (det +1, so left stays left) taking the named axis to +Y
    "y": np.eye(3), "-y": np.diag([1.0, -1.0, -1.0]),
    "z": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]), "-z": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),
    "x": np.array([[0, -1.0, 0], [1, 0, 0], [0, 0, 1]]), "-x": np.array([[0, 1.0, 0], [-1, 0, 0], [0, 0, 1]]),
}

# The head->pelvis->left-ankle bone path of an adult is ~1.5 m (a child's ~1 m): these cut points
# lie between m, cm and mm on a log scale, so the guess is right for any human-sized body.
_CM_FROM_LENGTH, _MM_FROM_LENGTH = 16.0, 506.0
# that bone path in the 22-joint layout: pelvis -> spine1..3 -> neck -> head, pelvis -> hip -> knee -> ankle
_J = skeleton.JOINT_INDEX
BODY_PATH_BONES = tuple((skeleton.PARENTS[_J[name]], _J[name]) for name in (
    "spine1", "spine2", "spine3", "neck", "head", "left_hip", "left_knee", "left_ankle"))


def unit_scale(unit: str, where: str | Path | None = None) -> float:
    """Metres per file unit for a named unit ('m' | 'cm' | 'mm')."""
    if str(unit) not in UNITS:
        raise DataError(f"unknown unit {unit!r}; use one of {sorted(UNITS)}.", where=where,
                        fix="pass unit=m, unit=cm or unit=mm (or leave it out to guess it from the body size).")
    return UNITS[str(unit)]


def unit_from_body_length(length: float) -> str:
    """The unit ('m' | 'cm' | 'mm') a head->ankle bone-path length (in file units) is most likely in."""
    if length < _CM_FROM_LENGTH:
        return "m"
    return "cm" if length < _MM_FROM_LENGTH else "mm"


def body_path_length(joints: np.ndarray) -> float:
    """(T, 22, 3) -> the median over frames of the head->pelvis->left-ankle bone-path length (file
    units; bone lengths do not depend on the pose, the median ignores a few glitched frames)."""
    parents, children = zip(*BODY_PATH_BONES)
    bones = np.linalg.norm(joints[:, list(children)] - joints[:, list(parents)], axis=-1)   # (T, 8)
    return float(np.median(bones.sum(axis=1)))


def up_key(up_axis: str, where: str | Path | None = None) -> str:
    """'+Z' -> 'z': the UP_AXES key of a user-given axis, or a DataError."""
    key = str(up_axis).lower().lstrip("+")
    if key not in UP_AXES:
        raise DataError(f"unknown up_axis {up_axis!r}; use one of {sorted(UP_AXES)}.", where=where,
                        fix="pass e.g. up_axis=y (Y up, HumanML3D) or up_axis=z (Z up, AMASS / Blender).")
    return key


def guess_up_key(joints: np.ndarray) -> str:
    """The UP_AXES key along which the head of (T, 22, 3) joints is above the feet, on average."""
    feet = joints[:, [_J["left_ankle"], _J["right_ankle"]]].mean(1)
    up = (joints[:, _J["head"]] - feet).mean(0)
    axis = int(np.argmax(np.abs(up)))
    return ("-" if up[axis] < 0 else "") + "xyz"[axis]


def up_rotation(joints: np.ndarray, up_axis: str | None, where: str | Path | None = None) -> np.ndarray:
    """3x3 rotation taking the file's up axis to +Y (apply as ``joints @ R.T``); without an up_axis
    it is guessed from the mean feet->head vector of (T, 22, 3) joints."""
    return UP_AXES[up_key(up_axis, where) if up_axis is not None else guess_up_key(joints)]
