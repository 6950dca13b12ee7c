"""The 22-joint body layout shared by every joint-based source (HumanML3D / SMPL joint order).

World convention (as HumanML3D): metres, +Y up, a person in rest pose faces +Z, so their *left*
side is +X.  Mirroring therefore negates X and swaps each left joint with its right twin.
"""
from __future__ import annotations

import numpy as np

JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)

# index -> index of its left/right twin (itself for joints on the midline)
MIRROR_JOINTS = tuple(
    JOINT_INDEX[n.replace("left_", "right_")] if n.startswith("left_")
    else JOINT_INDEX[n.replace("right_", "left_")] if n.startswith("right_")
    else i
    for i, n in enumerate(JOINT_NAMES)
)

# Foot-contact joints, in the order the feature layout stores them.
FOOT_JOINTS = (JOINT_INDEX["left_ankle"], JOINT_INDEX["left_foot"],
               JOINT_INDEX["right_ankle"], JOINT_INDEX["right_foot"])
HIP_JOINTS = (JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"])
SHOULDER_JOINTS = (JOINT_INDEX["left_shoulder"], JOINT_INDEX["right_shoulder"])

UP_AXIS = 1       # Y
LATERAL_AXIS = 0  # X: negated by mirroring
FORWARD_AXIS = 2  # Z


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """Mirror world joint positions (..., 22, 3) left<->right: swap twins, negate X."""
    out = joints[..., list(MIRROR_JOINTS), :].copy()
    out[..., LATERAL_AXIS] *= -1
    return out
