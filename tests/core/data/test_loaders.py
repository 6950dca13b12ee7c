"""Every loader on small fabricated datasets, the registry/auto-detection, and the bad inputs."""
from __future__ import annotations

import json
import shutil
import tarfile
import zipfile

import numpy as np
import pytest

from core.data import skeleton
from core.data.errors import DataError
from core.data.features import HML263_LAYOUT, JOINTS22_LAYOUT, KIT251_LAYOUT, joints_to_features
from core.data.loaders import LOADERS, detect_format, extract_archive, load_raw
from core.data.loaders.bandai import label_captions
from core.data.loaders.bvh import _name_words, bvh_to_joints, convert_many
from core.data.loaders.bvh_parse import parse_bvh, world_positions

from .fabricated import TINY_BVH, make_bandai, make_folder, make_humanml3d, make_tmr, write_bvh

J = skeleton.JOINT_INDEX


# ---- HumanML3D / KIT-ML -----------------------------------------------------------------------

def test_humanml3d_crops_splits_and_meta(tmp_path):
    root = make_humanml3d(tmp_path / "HumanML3D")
    assert detect_format(root) == "humanml3d"
    raw = load_raw(root, None, {})
    by_id = {it.id: it for it in raw.items}
    assert set(by_id) == {"000001", "000002", "000002#0.5#1.5", "000003#1#2", "000005"}
    assert by_id["000001"].captions == ["a person walks.", "the man walks forward"]
    assert by_id["000002"].captions == ["whole motion", "spins"]          # nan#nan = whole motion
    assert by_id["000002#0.5#1.5"].captions == ["jumps twice", "hops"]
    source = np.load(root / "new_joint_vecs" / "000002.npy")
    np.testing.assert_array_equal(by_id["000002#0.5#1.5"].features, source[10:30])   # 20 fps
    assert by_id["000003#1#2"].features.shape == (20, 263)
    assert by_id["000005"].captions == ["a caption with # inside"]
    assert raw.splits == {"train": ["000001", "000002", "000002#0.5#1.5", "000003#1#2"], "val": ["000005"]}
    assert raw.meta["skipped_crops"] == 1 and len(raw.meta["source_mean"]) == 263
    assert raw.fps == 20.0 and raw.layout is HML263_LAYOUT
    assert all(it.features.dtype == np.float32 for it in raw.items)
    assert len(load_raw(root, "humanml3d", {"max_motions": 2}).items) == 3


def test_kitml_layout_fps_and_detection(tmp_path):
    root = make_humanml3d(tmp_path / "KIT-ML", dim=251)
    assert detect_format(root) == "kitml"
    raw = load_raw(root, None, {})
    assert raw.layout is KIT251_LAYOUT and raw.fps == 12.5
    crop = {it.id: it for it in raw.items}["000002#0.5#1.5"]
    assert crop.features.shape == (18 - 6, 251)                          # int(0.5*12.5)=6 .. int(1.5*12.5)=18


def test_humanml3d_without_split_files_uses_all_motions(tmp_path):
    root = make_humanml3d(tmp_path / "h")
    (root / "train.txt").unlink()
    (root / "val.txt").unlink()
    raw = load_raw(root, "humanml3d", {})
    assert raw.splits is None and len(raw.items) == 5


def test_humanml3d_split_id_without_motion(tmp_path):
    root = make_humanml3d(tmp_path / "h")
    (root / "test.txt").write_text("000001\n009999\n")
    with pytest.raises(DataError, match=r"test\.txt.*'009999'"):
        load_raw(root, "humanml3d", {})


def test_humanml3d_caption_line_without_fields(tmp_path):
    root = make_humanml3d(tmp_path / "h")
    (root / "texts" / "000002.txt").write_text("fine#x#0.0#0.0\njust a caption\n")
    with pytest.raises(DataError, match=r"000002\.txt: line 2: expected 'caption#tokens#start#end'"):
        load_raw(root, "humanml3d", {})


def test_humanml3d_non_numeric_span(tmp_path):
    root = make_humanml3d(tmp_path / "h")
    (root / "texts" / "000001.txt").write_text("walks#x#zero#1.0\n")
    with pytest.raises(DataError, match=r"000001\.txt: line 1: start/end"):
        load_raw(root, "humanml3d", {})


def test_humanml3d_unreadable_npy_and_missing_texts(tmp_path):
    root = make_humanml3d(tmp_path / "h")
    (root / "new_joint_vecs" / "000003.npy").write_bytes(b"not a numpy file")
    with pytest.raises(DataError, match=r"000003\.npy: cannot read"):
        load_raw(root, "humanml3d", {})
    root = make_humanml3d(tmp_path / "h2")
    (root / "texts" / "000001.txt").unlink()
    with pytest.raises(DataError, match=r"000001\.txt: motion '000001' has no caption file"):
        load_raw(root, "humanml3d", {})


# ---- TMR ----------------------------------------------------------------------------------------

def test_tmr_loads_crops_mirrors_and_splits(tmp_path):
    root = make_tmr(tmp_path / "tmr")
    assert detect_format(root) == "tmr"
    raw = load_raw(root, None, {})
    by_id = {it.id: it for it in raw.items}
    assert set(by_id) == {"00001", "M00001", "00002", "00002#1.5#3", "00003"}
    assert by_id["00002#1.5#3"].captions == ["lands", "lands softly"]
    np.testing.assert_array_equal(by_id["00002#1.5#3"].features, np.load(root / "motions" / "00002.npy")[30:60])
    assert raw.splits == {"train": ["00001", "M00001", "00002", "00002#1.5#3"], "val": ["00003"]}
    assert raw.meta["ignored_split_files"] == ["all.txt"] and raw.meta["missing_motions"] == 0
    assert raw.layout is HML263_LAYOUT and raw.fps == 20.0


def test_tmr_missing_motion_names_split_file_or_is_skipped(tmp_path):
    root = make_tmr(tmp_path / "tmr")
    (root / "motions" / "00003.npy").unlink()
    with pytest.raises(DataError, match=r"val\.txt: keyid '00003' has no motion file.*allow_missing"):
        load_raw(root, "tmr", {})
    raw = load_raw(root, "tmr", {"allow_missing": True})
    assert raw.meta["missing_motions"] == 1 and "00003" not in {it.id for it in raw.items}
    assert raw.splits["val"] == []


def test_tmr_bad_inputs(tmp_path):
    root = make_tmr(tmp_path / "tmr")
    with pytest.raises(DataError, match=r"nowhere: the motion folder does not exist.*motions_dir"):
        load_raw(root, "tmr", {"motions_dir": str(tmp_path / "nowhere")})
    (root / "splits" / "val.txt").write_text("00003\n99999\n")
    with pytest.raises(DataError, match=r"val\.txt: split id '99999'"):
        load_raw(root, "tmr", {})
    (root / "annotations.json").unlink()
    with pytest.raises(DataError, match=r"annotations\.json: annotations\.json is missing"):
        load_raw(root, "tmr", {})


def test_tmr_motions_dir_option(tmp_path):
    root = make_tmr(tmp_path / "tmr")
    shutil.move(str(root / "motions"), str(tmp_path / "guoh3dfeats"))
    raw = load_raw(root, "tmr", {"motions_dir": str(tmp_path / "guoh3dfeats")})
    assert len(raw.items) == 5


# ---- folder ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("captions", ["csv", "jsonl"])
def test_folder_csv_and_jsonl(tmp_path, captions):
    root = make_folder(tmp_path / "f", captions=captions)
    assert detect_format(root) == "folder"
    raw = load_raw(root, None, {})
    by_id = {it.id: it for it in raw.items}
    assert by_id["a"].captions == ["two people shake hands", "they greet, smiling"]
    assert by_id["a"].group == "greet" and by_id["c"].group is None
    assert raw.layout.kind == "raw" and raw.layout.dim == 6 and raw.fps == 20.0 and raw.splits is None


def test_folder_splits_fps_and_interaction_layout(tmp_path):
    root = make_folder(tmp_path / "f")
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("a\nb\n")
    (root / "splits" / "val.txt").write_text("c\n")
    (root / "meta.json").write_text(json.dumps({"fps": 30}))
    raw = load_raw(root, "folder", {})
    assert raw.splits == {"train": ["a", "b"], "val": ["c"]} and raw.fps == 30.0
    assert load_raw(root, "folder", {"fps": 25}).fps == 25.0
    layout_mod = pytest.importorskip("core.data.synthetic.layout")
    root396 = make_folder(tmp_path / "f396", dim=396)
    assert load_raw(root396, "folder", {}).layout == layout_mod.INTERACTION396_LAYOUT


def test_folder_bad_inputs(tmp_path):
    root = make_folder(tmp_path / "f")
    with open(root / "captions.csv", "a") as f:
        f.write("zzz,orphan caption,\n")
    with pytest.raises(DataError, match=r"captions\.csv: line 7: caption for id 'zzz'"):
        load_raw(root, "folder", {})
    root = make_folder(tmp_path / "g")
    np.save(root / "motions" / "d.npy", np.zeros((5, 6), np.float32))
    with pytest.raises(DataError, match=r"d\.npy: 1 motion\(s\) have no caption"):
        load_raw(root, "folder", {})
    root = make_folder(tmp_path / "h", captions="jsonl")
    (root / "captions.csv").write_text("id,text\n")
    with pytest.raises(DataError, match="both captions.csv and captions.jsonl"):
        load_raw(root, "folder", {})
    root = make_folder(tmp_path / "i", captions="jsonl")
    with open(root / "captions.jsonl", "a") as f:
        f.write('{"id": "a", "txt": "typo"}\n')
    with pytest.raises(DataError, match=r"captions\.jsonl: line 6"):
        load_raw(root, "folder", {})
    root = make_folder(tmp_path / "j")
    (root / "captions.csv").write_text("name,caption\na,x\n")
    with pytest.raises(DataError, match=r"captions\.csv: the header must name"):
        load_raw(root, "folder", {})
    root = make_folder(tmp_path / "k")
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("a\nnope\n")
    with pytest.raises(DataError, match=r"train\.txt: split id 'nope'"):
        load_raw(root, "folder", {})


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


# ---- registry, detection, archives ----------------------------------------------------------------

def test_registry_and_errors(tmp_path):
    assert set(LOADERS) == {"humanml3d", "kitml", "tmr", "folder", "bvh", "bandai"}
    root = make_folder(tmp_path / "f")
    with pytest.raises(DataError, match="unknown dataset format 'amass'; known formats: humanml3d, kitml"):
        load_raw(root, "amass", {})
    with pytest.raises(DataError, match=r"missing: dataset path does not exist"):
        load_raw(tmp_path / "missing", None, {})
    with pytest.raises(DataError, match=r"unknown option\(s\) \['max_motion'\] for format 'folder'.*max_motions"):
        load_raw(root, None, {"max_motion": 3})
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="cannot tell the dataset format"):
        detect_format(tmp_path / "empty")


def test_detects_one_folder_down(tmp_path):
    make_tmr(tmp_path / "wrapper" / "kitml")
    assert detect_format(tmp_path / "wrapper") == "tmr"
    assert len(load_raw(tmp_path / "wrapper", None, {}).items) == 5


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_archives_extract_once_and_load(tmp_path, kind):
    src = make_bandai(tmp_path / "src" / "Bandai-Namco-Research-Motiondataset-2")
    archive = tmp_path / f"bandai.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for p in sorted(src.rglob("*")):
                zf.write(p, p.relative_to(src.parent).as_posix())
    else:
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(src, arcname=src.name)
    cache = tmp_path / "cache"
    assert detect_format(archive, {"extract_dir": cache}) == "bandai"
    raw = load_raw(archive, None, {"extract_dir": str(cache), "workers": 1})
    assert len(raw.items) == 3 and raw.meta["format"] == "bandai"
    assert [p.name for p in cache.iterdir()] == [extract_archive(archive, cache).name]   # reused, no temp left
    broken = tmp_path / f"broken.{kind}"
    broken.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(DataError, match=r"broken\.(tar\.gz|zip): cannot extract the archive"):
        load_raw(broken, None, {"extract_dir": str(cache)})
