"""Invariant joint features, their mirror, and the HumanML3D / KIT-ML column layouts."""
from __future__ import annotations

import numpy as np
import pytest

from core.data import skeleton
from core.data.features import (FEATURE_DIM, FOOT_CONTACTS, HML263_LAYOUT, JOINTS22_LAYOUT, KIT251_LAYOUT,
                                facing_directions, joints_to_features, layout_for_dim, resample_linear)

from .fabricated import REST_POSE, fabricated_motion, yaw_matrix


def test_shape_dtype_and_layout_size():
    f = joints_to_features(fabricated_motion(T=37), 20.0)
    assert f.shape == (37, FEATURE_DIM) and f.dtype == np.float32
    assert JOINTS22_LAYOUT.dim == FEATURE_DIM == 137 and JOINTS22_LAYOUT.kind == "joints22"
    assert np.isfinite(f).all()


@pytest.mark.parametrize("angle", [0.3, -1.2, np.pi, 2.5])
def test_invariant_to_rotation_about_y_and_translation(angle):
    joints = fabricated_motion(T=50, turn_rate=0.8, seed=1)
    moved = joints @ yaw_matrix(angle).T + np.array([3.0, 0.4, -7.5])   # vertical shift too
    a, b = joints_to_features(joints, 20.0), joints_to_features(moved, 20.0)
    np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 3])
def test_mirror_layout_matches_mirrored_joints(seed):
    joints = fabricated_motion(T=45, turn_rate=0.6, speed=1.3, seed=seed, wiggle=0.05)
    f = joints_to_features(joints, 20.0)
    f_of_mirrored = joints_to_features(skeleton.mirror_joints(joints), 20.0)
    np.testing.assert_allclose(JOINTS22_LAYOUT.mirror(f), f_of_mirrored, atol=1e-4)
    assert not np.allclose(f, f_of_mirrored, atol=1e-3)          # the wiggles are asymmetric


def test_walking_and_turning_read_correctly():
    fps = 30.0
    walk = joints_to_features(fabricated_motion(T=90, fps=fps, speed=1.4, wiggle=0.0), fps)
    np.testing.assert_allclose(walk[:, 2], 1.4, atol=1e-4)      # forward velocity, m/s
    np.testing.assert_allclose(walk[:, 1], 0.0, atol=1e-4)      # no lateral drift
    np.testing.assert_allclose(walk[:, 0], 0.93 - 0.02, atol=1e-6)  # pelvis height above the toes' floor
    turn = joints_to_features(fabricated_motion(T=90, fps=fps, speed=0.0, turn_rate=0.7, wiggle=0.0), fps)
    # (the facing is smoothed over ~0.05 s with repeated edge frames: check away from the ends)
    np.testing.assert_allclose(turn[8:-8, 3], 0.7, atol=1e-4)   # turning towards the left = positive
    right = joints_to_features(fabricated_motion(T=90, fps=fps, speed=0.0, turn_rate=-0.7, wiggle=0.0), fps)
    np.testing.assert_allclose(right[8:-8, 3], -0.7, atol=1e-4)


def test_local_positions_keep_left_on_plus_x_whatever_the_heading():
    joints = fabricated_motion(T=40, turn_rate=1.5, wiggle=0.0)
    f = joints_to_features(joints, 20.0)
    left_wrist_x = f[:, 4 + 3 * (skeleton.JOINT_INDEX["left_wrist"] - 1)]
    right_wrist_x = f[:, 4 + 3 * (skeleton.JOINT_INDEX["right_wrist"] - 1)]
    np.testing.assert_allclose(left_wrist_x[4:-4], 0.22, atol=1e-6)   # ends: smoothed facing lags a turn
    np.testing.assert_allclose(right_wrist_x[4:-4], -0.22, atol=1e-6)
    assert left_wrist_x.min() > 0.2 and right_wrist_x.max() < -0.2


def test_foot_contacts_from_speed_and_height():
    joints = fabricated_motion(T=40, speed=0.0, wiggle=0.0)
    lift = np.clip(np.arange(40) - 20, 0, None) * 0.02             # the right foot rises from frame 20
    joints[:, [skeleton.JOINT_INDEX["right_ankle"], skeleton.JOINT_INDEX["right_foot"]], 1] += lift[:, None]
    contacts = joints_to_features(joints, 20.0)[:, FOOT_CONTACTS]
    assert contacts[:, :2].min() == 1.0                            # left foot planted throughout
    assert contacts[:15, 2:].min() == 1.0                          # right foot planted at first
    assert contacts[25:, 2:].max() == 0.0                          # lifted and moving
    assert set(np.unique(contacts)) <= {0.0, 1.0}


def test_facing_falls_back_when_across_axis_is_vertical():
    joints = fabricated_motion(T=10, wiggle=0.0)
    # frames 5..: lying on the side (hips and shoulders stacked vertically): no ground-plane facing
    for k in range(5, 10):
        for a, b in (skeleton.HIP_JOINTS, skeleton.SHOULDER_JOINTS):
            mid = 0.5 * (joints[k, a] + joints[k, b])
            joints[k, a], joints[k, b] = mid + [0, 0.1, 0], mid - [0, 0.1, 0]
    forward = facing_directions(joints, fps=1.0)                   # fps=1: no smoothing across frames
    np.testing.assert_allclose(forward[5:], forward[4:5].repeat(5, 0), atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(forward, axis=1), 1.0)


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError, match="22, 3"):
        joints_to_features(np.zeros((10, 21, 3)), 20.0)


def test_single_frame_gives_zero_velocities():
    f = joints_to_features(REST_POSE[None], 20.0)
    assert f.shape == (1, 137) and np.all(f[:, 1:4] == 0) and np.all(f[:, 67:133] == 0)


@pytest.mark.parametrize("layout", [JOINTS22_LAYOUT, HML263_LAYOUT, KIT251_LAYOUT], ids=lambda l: l.kind)
def test_mirror_tables_are_signed_involutions(layout):
    perm = np.asarray(layout.mirror_perm)
    sign = np.asarray(layout.mirror_sign)
    assert sorted(perm.tolist()) == list(range(layout.dim))
    assert np.array_equal(perm[perm], np.arange(layout.dim))      # mirroring twice = identity
    assert np.all(sign * sign[perm] == 1)
    x = np.random.default_rng(0).normal(size=(5, layout.dim)).astype(np.float32)
    np.testing.assert_array_equal(layout.mirror(layout.mirror(x)), x)


def test_hml263_and_kit251_mirror_blocks():
    # HumanML3D: yaw velocity and lateral velocity flip; left_hip (joint 1) ric x <- -right_hip (joint 2) ric x
    p, s = np.asarray(HML263_LAYOUT.mirror_perm), np.asarray(HML263_LAYOUT.mirror_sign)
    assert s[0] == -1 and s[1] == -1 and s[2] == 1 and s[3] == 1
    assert p[4] == 7 and s[4] == -1 and p[5] == 8 and s[5] == 1
    assert list(p[67:73]) == list(range(73, 79)) and list(s[67:73]) == [1, -1, -1, -1, 1, 1]  # 6D of joint 1 <- 2
    assert list(p[259:263]) == [261, 262, 259, 260]
    assert p[193 + 3 * 20] == 193 + 3 * 21                          # local velocity of left <- right wrist
    # KIT-ML: arms 5-7 <-> 8-10, legs 11-15 <-> 16-20; spine untouched
    p, s = np.asarray(KIT251_LAYOUT.mirror_perm), np.asarray(KIT251_LAYOUT.mirror_sign)
    assert p[4 + 3 * 4] == 4 + 3 * 7                                # joint 5 <- joint 8 (ric starts at joint 1)
    assert p[4 + 3 * 10] == 4 + 3 * 15                              # joint 11 <- joint 16
    assert p[4] == 4 and s[4] == -1                                 # joint 1 (spine) stays, x flips
    assert list(p[247:251]) == [249, 250, 247, 248]
    assert p[184 + 3 * 11] == 184 + 3 * 16                          # local velocity block has 21 joints


def test_layout_for_dim():
    assert layout_for_dim(263) is HML263_LAYOUT and layout_for_dim(251) is KIT251_LAYOUT
    assert layout_for_dim(137) is JOINTS22_LAYOUT
    raw = layout_for_dim(12)
    assert raw.kind == "raw" and raw.dim == 12 and not raw.can_mirror


def test_resample_linear():
    x = np.arange(31, dtype=np.float64)[:, None] * np.array([1.0, -2.0])   # 1 s at 30 fps, linear
    y = resample_linear(x, 30.0, 20.0)
    assert y.shape == (21, 2)
    np.testing.assert_allclose(y[:, 0], np.arange(21) * 1.5)
    np.testing.assert_allclose(y[:, 1], -3.0 * np.arange(21))
    assert resample_linear(x, 20.0, 20.0) is x
    assert resample_linear(x[:7], 30.0, 20.0).shape[0] == 5                 # 0.2 s -> frames at 0, .05, ..., .2
    up = resample_linear(x[:3], 10.0, 20.0)
    np.testing.assert_allclose(up[:, 0], [0, 0.5, 1, 1.5, 2])
