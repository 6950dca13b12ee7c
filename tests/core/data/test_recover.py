"""Features back to joints (core/data/recover.py), checked by round trips on real and generated motions.

Every layout: features -> joints -> features (the features are invariant to where the motion starts and
which way it faces, so they compare exactly), and the recovered joints against the joints the features
were made from (brought to the recovered start: root at x = z = 0 facing +Z, floor at y = 0).

Tolerances (max abs): ATOL_FEATURES = 1e-4 in feature units (m, m/s, rad/s; float32 features of values up
to a few units carry ~1e-6 rounding; measured <= 9.4e-6), ATOL_METRES = 1e-5 m (measured <= 4.8e-7).  The
measured errors per layout are in core/data/recover.py's docstring; real clips skip cleanly when the shared data is
absent (MOTION_SEARCH_SHARED_DATA names the folder for a checkout outside the project folder).
"""
from __future__ import annotations

import tarfile

import numpy as np
import pytest

from core.data.errors import DataError
from core.data.features import (FEATURE_DIM, HML263_LAYOUT, JOINTS22_LAYOUT, JOINTS22_PAIR_LAYOUT, KIT251_LAYOUT,
                                facing_directions, joints_to_features, pair_features)
from core.data.loaders.bvh import bvh_to_joints, convert_bvh
from core.data.recover import features_to_joints, rotate_y
from core.data.synthetic import INTERACTION396_LAYOUT, Action, Interaction, interaction_features, motion_rng, render
from core.data.synthetic.corpus import finish_all, prepare, sample_spec
from core.data.synthetic.layout import canonicalize

from ...conftest import SHARED_DATA

ATOL_FEATURES = 1e-4
ATOL_METRES = 1e-5
FPS = 20.0
HML = SHARED_DATA / "humanml3d-sample"
BANDAI = SHARED_DATA / "bandai-namco-motiondataset-2.tar.xz"
BANDAI_CLIPS = 4          # the first .bvh files in the archive's order (a run, a turning walk, ...)
FOOT_JOINTS = [7, 8, 10, 11]


def _at_recovered_start(joints: np.ndarray, person_axis: bool = False) -> np.ndarray:
    """World joints (T, 22, 3) or (T, P, 22, 3) -> the same motion moved so that (person A's) root is at
    x = z = 0 facing +Z at frame 0 and the lowest foot joint of the clip is at y = 0."""
    first = joints[:, 0] if person_axis else joints
    forward = facing_directions(first, FPS)[0]
    out = joints - first[0, 0] * np.array([1.0, 0.0, 1.0])
    out[..., 1] -= joints[..., FOOT_JOINTS, 1].min()
    yaw0 = np.full(len(out), np.arctan2(forward[0], forward[1]))
    flat = out.reshape(len(out), -1, 3)
    return rotate_y(flat, -yaw0).reshape(joints.shape)


# ---- HumanML3D's joint-derived columns, restated from its processing (the 6D rotations need its IK) ----

def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian along time, radius 4 sigma, edges repeated (scipy's gaussian_filter1d defaults)."""
    offsets = np.arange(-int(4 * sigma + 0.5), int(4 * sigma + 0.5) + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    idx = np.clip(np.arange(len(x))[:, None] + offsets[None, :], 0, len(x) - 1)
    return np.tensordot(weights / weights.sum(), x[idx], axes=([0], [1]))


def _hml_encode(joints: np.ndarray, face=(1, 2, 17, 16), feet=(7, 10, 8, 11)) -> np.ndarray:
    """(T, J, 3) -> (T - 1, 4 + 9 (J - 1) + 3 J + 4) HumanML3D-style rows, the 6D block left zero.

    Facing: across = (joint face[0] - face[1]) + (face[2] - face[3]), per frame normalized; forward = up x
    across smoothed (sigma 20 frames).  HumanML3D's IK reads its face-joint list (r_hip, l_hip, r_sh, l_sh)
    in another order than its own first-frame turn, so its hip term runs left - right: restated as it is,
    since the released features were made with it.  Frame 0's root rotation is the identity.
    """
    T, J = joints.shape[:2]
    a, b, c, d = face
    across = joints[:, a] - joints[:, b] + joints[:, c] - joints[:, d]
    across /= np.linalg.norm(across, axis=-1, keepdims=True)
    forward = _smooth(np.stack([across[:, 2], -across[:, 0]], axis=-1), 20.0)       # (x, z)
    yaw = np.arctan2(forward[:, 0], forward[:, 1])
    yaw[0] = 0.0
    root = joints[:, 0]
    rot_velocity = -np.angle(np.exp(1j * np.diff(yaw))) / 2                           # minus half the step
    lin_velocity = rotate_y(root[1:] - root[:-1], -yaw[1:])[:, [0, 2]]
    centred = joints - root[:, None] * np.array([1.0, 0.0, 1.0])
    ric = rotate_y(centred[:, 1:], -yaw)[:-1].reshape(T - 1, -1)
    step = joints[1:] - joints[:-1]
    local_velocity = rotate_y(step, -yaw[:-1]).reshape(T - 1, -1)
    contacts = ((step[:, list(feet)] ** 2).sum(-1) < 0.002).astype(np.float64)
    rotations = np.zeros((T - 1, 6 * (J - 1)))
    return np.concatenate([rot_velocity[:, None], lin_velocity, root[:-1, 1:2], ric, rotations, local_velocity,
                           contacts], axis=1)


def _frame_after(features: np.ndarray, joints: np.ndarray, n_joints: int) -> np.ndarray:
    """The frame after the last, from the last row's joint velocities (HumanML3D's rows reach one frame
    beyond the joints that recover_from_ric returns; its facing smoothing sees that frame)."""
    yaw = np.array([-2.0 * features[:-1, 0].sum()])
    start = 4 + 9 * (n_joints - 1)
    velocity = features[-1:, start:start + 3 * n_joints].reshape(1, n_joints, 3)
    return joints[-1:] + rotate_y(velocity, yaw)


@pytest.fixture(scope="module")
def hml_sample():
    vecs, joints = HML / "new_joint_vecs" / "012314.npy", HML / "new_joints" / "012314.npy"
    if not (vecs.is_file() and joints.is_file()):
        pytest.skip(f"real data not available: {HML}")
    return np.load(vecs).astype(np.float64), np.load(joints).astype(np.float64)


def test_hml263_sample_gives_back_new_joints(hml_sample):
    vecs, new_joints = hml_sample                                   # (170, 263), (170, 22, 3)
    joints = features_to_joints(vecs, HML263_LAYOUT, FPS)
    assert joints.shape == new_joints.shape == (170, 22, 3)
    np.testing.assert_allclose(joints, new_joints, atol=1e-5)       # measured 2.1e-7 m


def test_hml263_sample_round_trips_every_joint_column(hml_sample):
    vecs, _ = hml_sample
    joints = features_to_joints(vecs, "hml263", FPS)
    again = _hml_encode(np.concatenate([joints, _frame_after(vecs, joints, 22)]))
    assert again.shape == vecs.shape
    joint_columns = np.r_[0:67, 193:263]                            # all but the 21 x 6D rotations
    np.testing.assert_allclose(again[:, joint_columns], vecs[:, joint_columns], atol=ATOL_FEATURES)
    # without that last frame the sigma-20 facing smoothing differs near the end: still close
    short = _hml_encode(joints)
    np.testing.assert_allclose(short[:, joint_columns], vecs[:-1, joint_columns], atol=1e-2)


def test_kit251_columns_recover_a_21_joint_motion():
    """No KIT-ML clip is shared: a 21-joint body is taken from a synthetic walk (joints in KIT's chain
    order), encoded the HumanML3D way with KIT's face and foot joints, and recovered exactly."""
    smpl_for_kit = [0, 3, 9, 12, 15, 17, 19, 21, 16, 18, 20, 2, 5, 8, 8, 11, 1, 4, 7, 7, 10]
    m = render([Action("walk", speed="normal"), Action("turn", side="left", variant="90")], motion_rng(0, 1, 3))
    kit = m.joints[:, smpl_for_kit] * 1000.0                        # KIT-ML's release is not in metres
    kit = kit - kit[0, 0] * np.array([1.0, 0.0, 1.0])
    features = _hml_encode(kit, face=(16, 11, 5, 8), feet=(19, 20, 14, 15)).astype(np.float32)   # as stored
    assert features.shape[1] == KIT251_LAYOUT.dim
    joints = features_to_joints(features, KIT251_LAYOUT, 12.5)
    assert joints.shape == (len(kit) - 1, 21, 3)
    # frame 0's root rotation is the identity in this format, so the start is the walk's own
    np.testing.assert_allclose(joints, kit[:-1], atol=1000.0 * ATOL_METRES)


# ---- joints22 / joints22x2 / interx396 from the synthetic generator ----------------------------------

@pytest.mark.parametrize("index", [0, 1, 2, 5])
def test_joints22_synthetic_round_trip(index):
    rng = motion_rng(0, 1, index)
    m = finish_all([prepare(sample_spec(rng, 1), rng)], FPS)[0]
    features = joints_to_features(m.joints, FPS)
    joints = features_to_joints(features, JOINTS22_LAYOUT, FPS)
    np.testing.assert_allclose(joints_to_features(joints, FPS), features, atol=ATOL_FEATURES)
    np.testing.assert_allclose(joints, _at_recovered_start(m.joints), atol=ATOL_METRES)


@pytest.mark.parametrize("kind, kw", [("approach", {"initiator": 1, "variant": "run"}), ("pass_by", {}),
                                      ("follow", {"initiator": 0, "variant": "jog"}), ("hug", {"approach": True})])
def test_two_people_synthetic_round_trips(kind, kw):
    m = render(Interaction(kind, **kw), np.random.default_rng(2))
    # joints22x2 (--format joints with two people): B is placed from the pair columns, frame by frame
    features = pair_features(m.joints, FPS)
    joints = features_to_joints(features, JOINTS22_PAIR_LAYOUT, FPS)
    assert joints.shape == m.joints.shape
    np.testing.assert_allclose(pair_features(joints, FPS), features, atol=ATOL_FEATURES)
    np.testing.assert_allclose(joints, _at_recovered_start(m.joints, person_axis=True), atol=ATOL_METRES)
    # interx396 (the embedded generator's layout): positions are stored in the canonical frame
    features = interaction_features(m.joints, m.rotations)
    joints = features_to_joints(features, INTERACTION396_LAYOUT, FPS)
    canonical, _ = canonicalize(m.joints, m.rotations)
    np.testing.assert_allclose(joints, canonical, atol=1e-5)         # float32 storage of metres
    six = features.reshape(len(features), 2, 198)[:, :, 66:].reshape(len(features), 2, 22, 6)
    np.testing.assert_allclose(interaction_features(joints, _rotations_from_6d(six)), features, atol=1e-5)


def _rotations_from_6d(six: np.ndarray) -> np.ndarray:
    """(..., 6) first two columns [r00, r10, r20, r01, r11, r21] -> (..., 3, 3), by Gram-Schmidt."""
    a = six[..., :3] / np.linalg.norm(six[..., :3], axis=-1, keepdims=True)
    b = six[..., 3:] - (a * six[..., 3:]).sum(-1, keepdims=True) * a
    b /= np.linalg.norm(b, axis=-1, keepdims=True)
    return np.stack([a, b, np.cross(a, b)], axis=-1)


# ---- Bandai-Namco BVH clips (joints22, the bvh / bandai loaders' path) -------------------------------

@pytest.fixture(scope="module")
def bandai_clips(tmp_path_factory):
    """The first BANDAI_CLIPS .bvh files of the archive, streamed out of it (the whole archive takes
    ~10 s to extract; these lie near its start)."""
    if not BANDAI.is_file():
        pytest.skip(f"real data not available: {BANDAI}")
    out = tmp_path_factory.mktemp("bandai")
    paths = []
    with tarfile.open(BANDAI, mode="r|xz") as archive:
        for member in archive:
            if member.isfile() and member.name.endswith(".bvh") and "/data/" in member.name:
                path = out / member.name.rsplit("/", 1)[-1]
                path.write_bytes(archive.extractfile(member).read())
                paths.append(path)
                if len(paths) == BANDAI_CLIPS:
                    break
    return paths


def test_bandai_clips_round_trip(bandai_clips):
    assert len(bandai_clips) == BANDAI_CLIPS
    for path in bandai_clips:
        features, _ = convert_bvh(path)                             # what the bandai loader stores
        original, _ = bvh_to_joints(path)                           # (T, 22, 3) m, 20 fps
        joints = features_to_joints(features, JOINTS22_LAYOUT, FPS)
        np.testing.assert_allclose(joints_to_features(joints, FPS), features, atol=ATOL_FEATURES,
                                   err_msg=path.name)
        np.testing.assert_allclose(joints, _at_recovered_start(original), atol=ATOL_METRES, err_msg=path.name)
        assert np.ptp(joints[:, 0, [0, 2]], axis=0).max() > 0.5 or "raise" in path.name or "wave" in path.name


# ---- inputs ---------------------------------------------------------------------------------------

def test_normalized_features_come_back_with_mean_and_std():
    m = render(Action("jog"), motion_rng(0, 1, 9))
    features = joints_to_features(m.joints, FPS)
    mean, std = features.mean(0), features.std(0) + 1e-3
    joints = features_to_joints((features - mean) / std, "joints22", FPS, mean=mean, std=std)
    np.testing.assert_allclose(joints, features_to_joints(features, "joints22", FPS), atol=1e-4)


def test_one_frame_and_float32_input():
    assert features_to_joints(np.zeros((1, FEATURE_DIM), np.float32), "joints22", FPS).shape == (1, 22, 3)
    assert features_to_joints(np.zeros((1, 263), np.float32), "hml263", FPS).shape == (1, 22, 3)


@pytest.mark.parametrize("features, layout, fps, words", [
    (np.zeros((5, 50)), "raw", FPS, ["'raw'", "no joint positions", "joints22 (137)"]),
    (np.zeros((5, 50)), "amass", FPS, ["'amass'", "not a layout"]),
    (np.zeros((5, 137)), "hml263", FPS, ["(5, 137)", "'hml263'", "(frames >= 1, 263)"]),
    (np.zeros((5, 137)), "joints22", 0.0, ["fps=0.0", "per second"]),
    (np.full((5, 137), np.nan), "joints22", FPS, ["NaN"]),
])
def test_clear_errors(features, layout, fps, words):
    with pytest.raises(ValueError) as info:
        features_to_joints(features, layout, fps)
    assert isinstance(info.value, DataError) and "Fix:" in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_raw_layout_object_and_half_given_statistics():
    from core.data.features import layout_for_dim

    with pytest.raises(DataError, match=r"'raw' \(D=50\)"):
        features_to_joints(np.zeros((3, 50)), layout_for_dim(50), FPS)
    with pytest.raises(DataError, match="only one of mean / std"):
        features_to_joints(np.zeros((3, 137)), "joints22", FPS, mean=np.zeros(137))
