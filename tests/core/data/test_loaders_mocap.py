"""The motion-capture loaders on small fabricated files: BVH parsing, forward kinematics, skeleton
mapping, units/axes/resampling, caption sidecars, the worker pool, malformed files, and the
Bandai-Namco dataset (BVH clips + content/style labels turned into captions)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.data import skeleton
from core.data.errors import DataError
from core.data.features import JOINTS22_LAYOUT, joints_to_features
from core.data.loaders import detect_format, load_raw
from core.data.loaders.bandai import label_captions
from core.data.loaders.bvh import _name_words, bvh_to_joints, convert_many
from core.data.loaders.bvh_parse import parse_bvh, world_positions

from .fabricated import TINY_BVH, make_bandai, write_bvh

J = skeleton.JOINT_INDEX


# ---- BVH ------------------------------------------------------------------------------------------

def test_bvh_rotation_order_and_position_channels(tmp_path):
    def fk(channels: str, values: str, child_channels: str = "", child_values: str = "") -> np.ndarray:
        child = f"  CHANNELS {len(child_channels.split())} {child_channels}\n" if child_channels else ""
        text = ("HIERARCHY\nROOT A\n{\n OFFSET 0 0 0\n CHANNELS 3 " + channels + "\n JOINT B\n {\n"
                "  OFFSET 1 0 0\n" + child
                + "  End Site\n  {\n   OFFSET 1 0 0\n  }\n }\n}\nMOTION\nFrames: 1\nFrame Time: 0.05\n"
                + values + " " + child_values + "\n")
        path = tmp_path / "fk.bvh"
        path.write_text(text)
        pos, ends = world_positions(parse_bvh(path))
        return pos[0, 1], ends[0, 1]
    # Z X Y = Rz @ Rx @ Ry: Rx(90) keeps (1,0,0), then Rz(90) takes it to (0,1,0)
    np.testing.assert_allclose(fk("Zrotation Xrotation Yrotation", "90 90 0")[0], [0, 1, 0], atol=1e-12)
    # X Z Y = Rx @ Rz: Rz(90) -> (0,1,0), then Rx(90) -> (0,0,1)
    np.testing.assert_allclose(fk("Xrotation Zrotation Yrotation", "90 90 0")[0], [0, 0, 1], atol=1e-12)
    # a position channel replaces the offset; the end site follows the child's rotation
    child, end = fk("Zrotation Xrotation Yrotation", "0 0 0", "Xposition Yposition Zposition Yrotation", "0 2 0 90")
    np.testing.assert_allclose(child, [0, 2, 0], atol=1e-12)
    np.testing.assert_allclose(end, [0, 2, -1], atol=1e-12)


def test_joint_name_conventions():
    assert _name_words("mixamorig:LeftUpLeg") == ("left", "upleg")
    assert _name_words("Shoulder_L") == ("left", "shoulder")
    assert _name_words("l_clavicle") == ("left", "clavicle")
    assert _name_words("RightHandThumb1") == ("right", "handthumb1")   # a finger, not the wrist
    assert _name_words("LThigh") == ("left", "thigh")


@pytest.mark.parametrize("style", ["mixamo", "bandai"])
def test_bvh_mapping_units_axes_and_resampling(tmp_path, style):
    base, _ = bvh_to_joints(write_bvh(tmp_path / "y_cm.bvh", style=style, unit="cm", up="y"))
    assert base.shape == (21, 22, 3)                                  # 31 frames at 30 fps -> 21 at 20 fps
    # frame 0 is the rest pose: left wrist = pelvis + collar + shoulder + elbow + wrist offsets, on +X
    np.testing.assert_allclose(base[0, J["left_wrist"]], [0.22, 0.87, 0.03], atol=1e-5)
    np.testing.assert_allclose(base[0, J["right_foot"]], [-0.10, 0.02, 0.10], atol=1e-5)
    np.testing.assert_allclose(base[0, J["head"]], [0, 1.55, 0.03], atol=1e-5)
    for unit, up in (("m", "z"), ("mm", "y"), ("cm", "z")):
        other, _ = bvh_to_joints(write_bvh(tmp_path / f"{unit}_{up}.bvh", style=style, unit=unit, up=up))
        np.testing.assert_allclose(other, base, atol=1e-5)
    forced, _ = bvh_to_joints(tmp_path / "y_cm.bvh", {"unit": "m", "up_axis": "y", "fps": 30})
    assert forced.shape[0] == 31 and forced[0, 0, 1] == pytest.approx(93.0, abs=1e-4)


def test_bvh_static_root_and_styles_agree(tmp_path):
    mixamo, _ = bvh_to_joints(write_bvh(tmp_path / "a.bvh", style="mixamo"))
    bandai, _ = bvh_to_joints(write_bvh(tmp_path / "b.bvh", style="bandai", static_root=True))
    limbs = [i for i, n in enumerate(skeleton.JOINT_NAMES) if not n.startswith("spine")]
    np.testing.assert_allclose(bandai[:, limbs], mixamo[:, limbs], atol=1e-5)
    # the bandai-style file has Spine + Chest only: spine1..3 are interpolated between pelvis and neck
    spine = bandai[0, [J["spine1"], J["spine2"], J["spine3"]], 1]
    assert bandai[0, J["pelvis"], 1] < spine[0] < spine[1] < spine[2] < bandai[0, J["neck"], 1]


def test_bvh_walk_reads_forward_and_left_is_left(tmp_path):
    joints, _ = bvh_to_joints(write_bvh(tmp_path / "walk.bvh", frames=61, speed=1.2))
    feats = joints_to_features(joints, 20.0)
    assert feats[:, 2].mean() == pytest.approx(1.2, abs=1e-3)
    lifted, _ = bvh_to_joints(write_bvh(tmp_path / "raise.bvh", raise_hand="left"))
    assert lifted[-1, J["left_wrist"], 1] > lifted[-1, J["left_shoulder"], 1] + 0.2
    assert lifted[-1, J["right_wrist"], 1] < lifted[-1, J["right_shoulder"], 1]


def test_bvh_unmappable_skeleton(tmp_path):
    path = tmp_path / "tiny.bvh"
    path.write_text(TINY_BVH)
    with pytest.raises(DataError, match=r"tiny\.bvh: cannot map the skeleton.*left_hip.*Hips, Chest"):
        bvh_to_joints(path)


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s.replace("}\nMOTION", "MOTION"), r"line 14: the hierarchy ends before"),
    (lambda s: s.replace("  JOINT Chest", "  JOINTX Chest"), r"line 6: unexpected 'JOINTX' inside joint 'Hips'"),
    (lambda s: s.replace("CHANNELS 3 Zrotation", "CHANNELS 3 Wrotation"), r"line 9: .*'Wrotation' is not a channel"),
    (lambda s: s.replace("0 90 1 0 0 0 0 0 0", "0 90 1 0 0 0 0 0"), r"line 20: a frame line has 8 values but the "
                                                                     r"hierarchy declares 9"),
    (lambda s: s.replace("0 90 1 0 0 0 0 0 0", "0 90 1 0 abc 0 0 0 0"), r"line 20: value 5 \('abc'\) is not a number"),
    (lambda s: s.replace("Frames: 2", "Frames: 0"), r"line 17: the file has Frames: 0"),
    (lambda s: s.replace("Frames: 2", "Frames: 3"), r"line 17: Frames: 3 but the file has 2 frame lines"),
    (lambda s: s.replace("Frame Time: 0.033333", "Frame Time: fast"), r"not numbers"),
    (lambda s: s.replace("MOTION", "MOTON"), r"no MOTION section"),
    (lambda s: s.replace("HIERARCHY", "HIERARCHIE"), r"line 1: a BVH file starts with HIERARCHY"),
    (lambda s: s.split("MOTION")[0] + "MOTION\nFrames: 2\nFrame Time: 0.03\n", r"no frame lines"),
])
def test_malformed_bvh_names_file_and_line(tmp_path, mutate, message):
    path = tmp_path / "broken.bvh"
    path.write_text(mutate(TINY_BVH))
    with pytest.raises(DataError, match=r"broken\.bvh: " + message if message.startswith("line") else message) as e:
        parse_bvh(path)
    assert "broken.bvh" in str(e.value)


def test_tiny_bvh_parses(tmp_path):
    path = tmp_path / "ok.bvh"
    path.write_text(TINY_BVH)
    clip = parse_bvh(path)
    assert clip.names == ["Hips", "Chest"] and clip.motion.shape == (2, 9) and clip.fps == pytest.approx(30, rel=1e-4)
    pos, ends = world_positions(clip)
    np.testing.assert_allclose(pos[1, 1], [0, 100, 1])
    np.testing.assert_allclose(ends[1, 1], [0, 105, 1])


def test_bvh_folder_with_sidecars(tmp_path):
    root = tmp_path / "mocap"
    write_bvh(root / "walk.bvh")
    (root / "walk.json").write_text(json.dumps({"captions": ["a person walks", "walking"], "group": "walk"}))
    write_bvh(root / "sub" / "raise.bvh", raise_hand="right")
    (root / "sub" / "raise.txt").write_text("raises the right hand\n\nlifts an arm\n")
    assert detect_format(root) == "bvh"
    raw = load_raw(root, None, {})
    by_id = {it.id: it for it in raw.items}
    assert by_id["walk"].captions == ["a person walks", "walking"] and by_id["walk"].group == "walk"
    assert by_id["sub/raise"].captions == ["raises the right hand", "lifts an arm"]
    assert raw.layout is JOINTS22_LAYOUT and by_id["walk"].features.shape == (21, 137)
    write_bvh(root / "lonely.bvh")
    with pytest.raises(DataError, match=r"lonely\.bvh: this BVH file has no captions.*lonely\.txt"):
        load_raw(root, "bvh", {})


def test_convert_many_pool_matches_serial(tmp_path):
    paths = [write_bvh(tmp_path / f"c{i:02d}.bvh", frames=10 + i, speed=0.1 * i) for i in range(34)]
    pooled = convert_many(paths, {"workers": 2})
    serial = convert_many(paths, {"workers": 1})
    assert len(pooled) == 34
    for (a, na), (b, nb) in zip(pooled, serial):
        np.testing.assert_array_equal(a, b)
        assert na == nb
    assert [n for _, n in serial] == [10 + i for i in range(34)]
    paths[20].write_text(TINY_BVH.replace("Frames: 2", "Frames: 0"))   # an error inside a worker
    with pytest.raises(DataError, match=r"c20\.bvh: line 17: the file has Frames: 0"):
        convert_many(paths, {"workers": 2})


# ---- Bandai-Namco -----------------------------------------------------------------------------------

def test_bandai_labels_captions_and_groups(tmp_path):
    root = make_bandai(tmp_path / "Bandai-Namco-Research-Motiondataset-2")
    assert detect_format(root) == "bandai"
    raw = load_raw(root, None, {"workers": 1})
    by_id = {it.id: it for it in raw.items}
    walk = by_id["dataset-2_walk_normal_001"]
    assert walk.group == "walk|normal" and walk.features.shape == (21, 137)
    wave = by_id["dataset-2_wave-left-hand_elderly_001"]
    assert wave.group == "wave-left-hand|elderly"
    assert wave.captions == ["an elderly person waves the left hand",
                             "someone waves, using the left hand, in an elderly way",
                             "a person is waving the left hand in an elderly way"]
    assert by_id["dataset-2_kick-high_normal_001"].captions[0] == "a person kicks high"   # unknown label
    assert raw.meta["clips"] == 3 and raw.meta["source_frames"] == 93 and raw.layout is JOINTS22_LAYOUT
    assert label_captions("walk-turn-left", "elderly")[1] == "someone walks, turning to the left, in an elderly way"


def test_bandai_bad_labels(tmp_path):
    root = make_bandai(tmp_path / "b1")
    (root / "data" / "dataset-2_walk_normal_001.json").write_text(json.dumps({"content": 7, "style": 0}))
    with pytest.raises(DataError, match=r"dataset-2_walk_normal_001\.json: content=7 is not an index"):
        load_raw(root, "bandai", {})
    root = make_bandai(tmp_path / "b2")
    (root / "data" / "dataset-2_walk_normal_001.json").unlink()
    with pytest.raises(DataError, match=r"dataset-2_walk_normal_001\.json: the label file of this clip is missing"):
        load_raw(root, "bandai", {})
    root = make_bandai(tmp_path / "b3")
    (root / "cfg" / "style_label.txt").unlink()
    with pytest.raises(DataError, match=r"style_label\.txt: label file is missing"):
        load_raw(root, "bandai", {})
