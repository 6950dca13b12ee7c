"""The joint-position format (``joints``): both layouts, auto-detection, two people (features and
mirror), units and up axis, the KIT-ML refusal, bad shapes, the real HumanML3D sample, and the
public entry ``load_corpus``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.data import load_corpus, skeleton
from core.data.errors import DataError
from core.data.features import (FEATURE_DIM, JOINTS22_LAYOUT, JOINTS22_PAIR_LAYOUT, PAIR_B, PAIR_RELATIVE_FACING,
                                PAIR_RELATIVE_POSITION, joints_to_features, pair_features)
from core.data.loaders import detect_format, load_raw

from .fabricated import (fabricated_motion, fabricated_pair, make_humanml3d, make_joints_folder,
                         make_joints_humanml3d, yaw_matrix)

SAMPLE = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "humanml3d-sample"


# ---- folder layout -------------------------------------------------------------------------------------

def test_folder_layout_detected_and_converted(tmp_path):
    root = make_joints_folder(tmp_path / "dance")
    assert detect_format(root) == "joints"
    raw = load_raw(root, None, {})
    by_id = {it.id: it for it in raw.items}
    assert raw.layout is JOINTS22_LAYOUT and raw.fps == 20.0 and raw.meta["format"] == "joints"
    expected = joints_to_features(np.load(root / "motions" / "a.npy"), 20.0)
    np.testing.assert_allclose(by_id["a"].features, expected, atol=1e-6)
    assert by_id["a"].features.dtype == np.float32 and by_id["a"].features.shape == (40, FEATURE_DIM)
    assert by_id["a"].captions == ["a person walks and turns left", "someone strolls, turning"]
    assert by_id["a"].group == "walk" and by_id["b"].group is None
    assert raw.meta["units"] == {"m": 3} and raw.meta["people"] == 1 and raw.splits is None
    assert [it.id for it in load_raw(root, "joints", {"max_motions": 2}).items] == ["a", "b"]


def test_folder_layout_jsonl_meta_fps_resampled_and_split_files(tmp_path):
    root = make_joints_folder(tmp_path / "d", captions="jsonl")
    (root / "meta.json").write_text('{"fps": 30}')
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("a\nb\n")
    (root / "splits" / "val.txt").write_text("c\n")
    raw = load_raw(root, None, {})
    assert raw.fps == 20.0 and raw.meta["source_fps"] == 30.0
    assert {it.id: len(it.features) for it in raw.items} == {"a": 27, "b": 20, "c": 17}  # 39/30 s -> 27 frames
    assert raw.splits == {"train": ["a", "b"], "val": ["c"]}
    same = load_raw(root, None, {"target_fps": 30})                     # equal rates: no resampling
    assert same.fps == 30.0 and len(same.items[0].features) == 40
    np.testing.assert_allclose(same.items[0].features, joints_to_features(np.load(root / "motions" / "a.npy"), 30.0),
                               atol=1e-6)


def test_feature_folder_stays_folder(tmp_path):
    from .fabricated import make_folder

    assert detect_format(make_folder(tmp_path / "f")) == "folder"


# ---- HumanML3D layout ----------------------------------------------------------------------------------

def test_humanml3d_layout_crops_and_splits(tmp_path):
    root = make_joints_humanml3d(tmp_path / "HumanML3D")
    assert detect_format(root) == "joints"
    raw = load_raw(root, None, {})
    by_id = {it.id: it for it in raw.items}
    assert set(by_id) == {"000001", "000001#1#2", "000002", "000003"}
    whole = joints_to_features(np.load(root / "new_joints" / "000001.npy"), 20.0)
    np.testing.assert_allclose(by_id["000001"].features, whole, atol=1e-6)
    np.testing.assert_array_equal(by_id["000001#1#2"].features, by_id["000001"].features[20:40])   # 20 fps
    assert by_id["000001#1#2"].split_key == "000001" and by_id["000001#1#2"].captions == ["the person steps"]
    assert raw.splits == {"train": ["000001", "000001#1#2", "000002"], "val": ["000003"]}
    assert raw.meta["layout"] == "humanml3d" and raw.meta["source_motions"] == 3


def test_humanml3d_root_with_features_and_joints(tmp_path):
    root = make_humanml3d(tmp_path / "top" / "HumanML3D")          # new_joint_vecs/ + texts/ + splits
    (root / "new_joints").mkdir()
    for k, (motion_id, T) in enumerate(zip(["000001", "000002", "000003", "000004", "000005"], (40, 60, 50, 50, 45))):
        np.save(root / "new_joints" / f"{motion_id}.npy", fabricated_motion(T=T, seed=k))
    assert detect_format(root) == "humanml3d"                       # the features stay the default
    assert load_raw(root, None, {}).layout.kind == "hml263"
    raw = load_raw(root, "joints", {})
    assert raw.layout is JOINTS22_LAYOUT and len(raw.items) == 5    # same crops as the feature loader
    assert load_raw(tmp_path / "top", "joints", {}).layout is JOINTS22_LAYOUT   # found one folder down


def test_humanml3d_layout_missing_text_fails_before_converting(tmp_path):
    root = make_joints_humanml3d(tmp_path / "h")
    (root / "texts" / "000002.txt").unlink()
    np.save(root / "new_joints" / "000003.npy", np.zeros((5, 21, 3)))     # never reached
    with pytest.raises(DataError, match=r"000002\.txt: motion '000002' has no caption file"):
        load_raw(root, "joints", {})


# ---- two people ---------------------------------------------------------------------------------------

def test_two_people_folder(tmp_path):
    root = make_joints_folder(tmp_path / "duet", people=2)
    assert detect_format(root) == "joints"
    raw = load_raw(root, None, {})
    assert raw.layout is JOINTS22_PAIR_LAYOUT and raw.meta["people"] == 2
    expected = pair_features(np.load(root / "motions" / "b.npy"), 20.0)
    np.testing.assert_allclose({it.id: it for it in raw.items}["b"].features, expected, atol=1e-6)
    single = np.load(root / "motions" / "c.npy")[:, :1]                   # (T, 1, 22, 3) counts as one person
    np.save(root / "motions" / "c.npy", single)
    with pytest.raises(DataError, match=r"c\.npy: the motion holds 1 person but a\.npy holds 2 people"):
        load_raw(root, None, {})


def test_pair_features_blocks_and_relative_placement():
    scene = fabricated_pair(T=40, gap=1.5)
    f = pair_features(scene, 20.0)
    assert f.shape == (40, 278) and f.dtype == np.float32 and JOINTS22_PAIR_LAYOUT.dim == 278
    floor = scene[:, :, list(skeleton.FOOT_JOINTS), 1].min()
    np.testing.assert_allclose(f[:, :FEATURE_DIM], joints_to_features(scene[:, 0], 20.0, floor), atol=1e-6)
    np.testing.assert_allclose(f[:, PAIR_B], joints_to_features(scene[:, 1], 20.0, floor), atol=1e-6)
    # frame 0: B stands 1.5 m in front of A (A faces +Z) and faces A; later A has turned left by
    # 0.4 rad/s * 1 s (frame 20), so B is to A's right (x < 0) and its heading, pi - 0.4 rad from
    # A's, points back and to A's left (x > 0)
    rigid = pair_features(fabricated_pair(T=40, gap=1.5, wiggle=0.0), 20.0)
    np.testing.assert_allclose(rigid[0, PAIR_RELATIVE_POSITION], [0.0, 1.5], atol=0.02)   # facing smoothed over 0.05 s
    np.testing.assert_allclose(rigid[0, PAIR_RELATIVE_FACING], [0.0, -1.0], atol=0.01)
    np.testing.assert_allclose(rigid[20, PAIR_RELATIVE_FACING], [np.sin(0.4), -np.cos(0.4)], atol=0.01)
    assert rigid[20, PAIR_RELATIVE_POSITION.start] < -0.2
    np.testing.assert_allclose(np.linalg.norm(f[:, PAIR_RELATIVE_FACING], axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("angle", [0.7, -2.0, np.pi])
def test_pair_features_invariant_to_moving_the_scene(angle):
    scene = fabricated_pair(T=30, seed=2)
    moved = scene @ yaw_matrix(angle).T + np.array([2.0, 0.3, -4.0])
    np.testing.assert_allclose(pair_features(scene, 20.0), pair_features(moved, 20.0), atol=1e-4)


def test_pair_mirror_is_a_signed_involution():
    perm, sign = np.asarray(JOINTS22_PAIR_LAYOUT.mirror_perm), np.asarray(JOINTS22_PAIR_LAYOUT.mirror_sign)
    assert sorted(perm.tolist()) == list(range(278))
    assert np.array_equal(perm[perm], np.arange(278)) and np.all(sign * sign[perm] == 1)
    x = np.random.default_rng(0).normal(size=(6, 278)).astype(np.float32)
    np.testing.assert_array_equal(JOINTS22_PAIR_LAYOUT.mirror(JOINTS22_PAIR_LAYOUT.mirror(x)), x)


@pytest.mark.parametrize("seed", [0, 5])
def test_pair_mirror_matches_mirrored_joints(seed):
    scene = fabricated_pair(T=45, seed=seed)
    f = pair_features(scene, 20.0)
    of_mirrored = pair_features(skeleton.mirror_joints(scene), 20.0)     # both people mirrored, A stays A
    np.testing.assert_allclose(JOINTS22_PAIR_LAYOUT.mirror(f), of_mirrored, atol=1e-4)
    assert not np.allclose(f, of_mirrored, atol=1e-3)
    assert np.abs(f[:, PAIR_RELATIVE_POSITION.start]).max() > 0.1      # B steps sideways: x is exercised


# ---- units and up axis --------------------------------------------------------------------------------

@pytest.mark.parametrize("scale, unit", [(100.0, "cm"), (1000.0, "mm")])
def test_units_guessed_or_given(tmp_path, scale, unit):
    metres = load_raw(make_joints_folder(tmp_path / "m"), None, {})
    scaled = make_joints_folder(tmp_path / unit, scale=scale)
    guessed = load_raw(scaled, None, {})
    assert guessed.meta["units"] == {unit: 3}
    given = load_raw(scaled, None, {"unit": unit})
    for a, b, c in zip(metres.items, guessed.items, given.items):
        np.testing.assert_allclose(b.features, a.features, atol=2e-4)
        np.testing.assert_array_equal(b.features, c.features)


def test_z_up_needs_the_option_and_then_matches(tmp_path):
    y_up = load_raw(make_joints_folder(tmp_path / "y"), None, {})
    root = make_joints_folder(tmp_path / "z", z_up=True)
    with pytest.raises(DataError, match=r"3 of 3 motions do not stand along \+Y .*z-up.*Fix: pass the option "
                                        r"up_axis=z"):
        load_raw(root, None, {})
    z_up = load_raw(root, None, {"up_axis": "z"})
    for a, b in zip(y_up.items, z_up.items):
        np.testing.assert_allclose(b.features, a.features, atol=1e-4)


@pytest.mark.parametrize("options, match", [
    ({"unit": "inch"}, r"unknown unit 'inch'"),
    ({"up_axis": "w"}, r"unknown up_axis 'w'"),
    ({"target_fps": 0}, r"option target_fps=0 is invalid; it must be a finite number > 0"),
    ({"fps": "fast"}, r"option fps='fast' is invalid"),
    ({"extract": 1}, r"unknown option\(s\) \['extract'\] for format 'joints'"),
])
def test_bad_options(tmp_path, options, match):
    with pytest.raises(DataError, match=match):
        load_raw(make_joints_folder(tmp_path / "d"), "joints", options)


# ---- refusals: KIT-ML, shapes, values -----------------------------------------------------------------

def test_kit_21_joints_detected_and_refused(tmp_path):
    root = make_joints_folder(tmp_path / "kit")
    for name in ("a", "b", "c"):
        np.save(root / "motions" / f"{name}.npy", np.load(root / "motions" / f"{name}.npy")[:, :21])
    assert detect_format(root) == "joints"
    with pytest.raises(DataError, match=r"motions/a\.npy: the motion has shape \(40, 21, 3\): KIT-ML 21-joint "
                                        r"positions are not supported.*Fix: .*--format kitml .*new_joint_vecs"):
        load_raw(root, None, {})


@pytest.mark.parametrize("array, match", [
    (np.zeros((12, 24, 3)), r"shape \(12, 24, 3\): 24 joints; expected the 22 SMPL body joints.*"
                            r"joints\[\.\.\., :22, :\]"),
    (np.zeros((12, 22, 2)), r"shape \(12, 22, 2\): 2 coordinates per joint; expected 3"),
    (np.zeros((12, 3, 22, 3)), r"shape \(12, 3, 22, 3\): 3 people; one or two are supported"),
    (np.zeros((12, 66)), r"shape \(12, 66\): \(frames, features\), not joint positions.*reshape\(12, 22, 3\)"),
    (np.zeros((12, 22, 3, 1, 1)), r"shape \(12, 22, 3, 1, 1\); expected \(frames, 22, 3\)"),
    (fabricated_motion(T=1), r"shape \(1, 22, 3\): 1 frame\(s\); at least 2 are needed"),
], ids=["24-joints", "2-coords", "3-people", "2-d", "5-d", "1-frame"])
def test_bad_shapes_name_the_file_and_shape(tmp_path, array, match):
    root = make_joints_folder(tmp_path / "d")
    np.save(root / "motions" / "b.npy", array)
    with pytest.raises(DataError, match=r"motions/b\.npy: .*" + match):
        load_raw(root, "joints", {})


def test_nan_names_frame_and_joint(tmp_path):
    root = make_joints_folder(tmp_path / "d", people=2)
    x = np.load(root / "motions" / "b.npy")
    x[7, 1, 5, 0] = np.nan
    np.save(root / "motions" / "b.npy", x)
    with pytest.raises(DataError, match=r"b\.npy: the motion \(shape \(30, 2, 22, 3\)\) contains NaN/inf \(first at "
                                        r"frame 7, person 1, joint 5 right_knee\)"):
        load_raw(root, None, {})


def test_too_short_after_resampling(tmp_path):
    root = make_joints_folder(tmp_path / "d")
    np.save(root / "motions" / "c.npy", fabricated_motion(T=2))
    with pytest.raises(DataError, match=r"c\.npy: .*2 frames at 60 fps last 0\.0167 s, less than 2 frames at "
                                        r"target_fps=20"):
        load_raw(root, None, {"fps": 60})


def test_pool_matches_serial_and_reports_worker_errors(tmp_path):
    root = make_joints_folder(tmp_path / "d", lengths=(20,))
    for k in range(33):
        np.save(root / "motions" / f"m{k:02d}.npy", fabricated_motion(T=10 + k, seed=k))
    with open(root / "captions.csv", "a") as fh:
        fh.writelines(f"m{k:02d},a person walks\n" for k in range(33))
    pooled, serial = load_raw(root, None, {"workers": 2}), load_raw(root, None, {"workers": 1})
    for a, b in zip(pooled.items, serial.items):
        assert a.id == b.id
        np.testing.assert_array_equal(a.features, b.features)
    np.save(root / "motions" / "m20.npy", np.zeros((10, 21, 3)))
    with pytest.raises(DataError, match=r"m20\.npy: the motion has shape \(10, 21, 3\): KIT-ML"):
        load_raw(root, None, {"workers": 2})


# ---- the real HumanML3D sample and the public entry ---------------------------------------------------

def _sample_root(tmp_path: Path) -> Path:
    joints = SAMPLE / "new_joints" / "012314.npy"
    if not joints.exists():
        pytest.skip(f"real data not available: {joints}")
    root = tmp_path / "HumanML3D"                     # the sample ships without texts: add one caption file
    (root / "texts").mkdir(parents=True)
    (root / "new_joints").symlink_to((SAMPLE / "new_joints").resolve())
    (root / "texts" / "012314.txt").write_text("a person moves#a/DET person/NOUN move/VERB#0.0#0.0\n"
                                               "the person turns#x#2.0#4.0\n")
    return root


def test_real_sample_converts(tmp_path):
    root = _sample_root(tmp_path)
    assert detect_format(root) == "joints"
    raw = load_raw(root, None, {})
    by_id = {it.id: it for it in raw.items}
    joints = np.load(SAMPLE / "new_joints" / "012314.npy")
    assert joints.shape == (170, 22, 3) and raw.meta["units"] == {"m": 1}
    np.testing.assert_allclose(by_id["012314"].features, joints_to_features(joints, 20.0), atol=1e-6)
    assert by_id["012314#2#4"].features.shape == (40, FEATURE_DIM)
    f = by_id["012314"].features
    np.testing.assert_allclose(JOINTS22_LAYOUT.mirror(f), joints_to_features(skeleton.mirror_joints(joints), 20.0),
                               atol=1e-4)
    # with the features next to the joints the root is humanml3d; --format joints still reads the joints
    (root / "new_joint_vecs").symlink_to((SAMPLE / "new_joint_vecs").resolve())
    assert detect_format(root) == "humanml3d"
    np.testing.assert_array_equal({it.id: it for it in load_raw(root, "joints", {}).items}["012314"].features, f)


def test_real_sample_as_two_people_mirror(tmp_path):
    joints = SAMPLE / "new_joints" / "012314.npy"
    if not joints.exists():
        pytest.skip(f"real data not available: {joints}")
    a = np.load(joints).astype(np.float64)
    b = skeleton.mirror_joints(a[::-1]) @ yaw_matrix(2.0).T + np.array([0.8, 0.0, 1.2])   # another, moving person
    scene = np.stack([a, b], axis=1)
    f = pair_features(scene, 20.0)
    np.testing.assert_allclose(JOINTS22_PAIR_LAYOUT.mirror(f), pair_features(skeleton.mirror_joints(scene), 20.0),
                               atol=1e-4)


def test_load_corpus_builds_a_joints_corpus(tmp_path):
    root = make_joints_humanml3d(tmp_path / "HumanML3D")
    corpus = load_corpus(f"{root}:target_fps=25", cache_dir=tmp_path / "cache")
    assert corpus.layout.kind == "joints22" and corpus.dim == 137 and corpus.fps == 25.0
    assert len(corpus) == 4 and corpus.meta["format"] == "joints" and corpus.layout.can_mirror
    assert sorted(corpus.ids) == ["000001", "000001#1#2", "000002", "000003"]
    duet = load_corpus(f"{make_joints_folder(tmp_path / 'duet', people=2)}:val=1,test=1", format="joints",
                       cache_dir=tmp_path / "cache")
    assert duet.layout.kind == "joints22x2" and duet.dim == 278 and len(duet) == 3
