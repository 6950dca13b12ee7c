"""The feature-vector dataset loaders (HumanML3D / KIT-ML, TMR, plain folder) on small fabricated
datasets, their bad inputs, and the loader registry, format auto-detection and archive extraction."""
from __future__ import annotations

import json
import shutil
import tarfile
import zipfile

import numpy as np
import pytest

from core.data.errors import DataError
from core.data.features import HML263_LAYOUT, KIT251_LAYOUT
from core.data.loaders import LOADERS, detect_format, extract_archive, load_raw

from .fabricated import make_bandai, make_folder, make_humanml3d, make_tmr


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


@pytest.mark.parametrize("damage, message", [
    ({"annotations": []}, r"annotations\.json: keyid '(\w+)' has no annotation .*Fix: add its descriptions"),
    ({"annotations": [{"text": 7, "start": 0.0, "end": 1.0}]},
     r"annotations\.json: keyid '(\w+)': an annotation's 'text' is 7, not a string\. Fix: write each description"),
])
def test_tmr_a_keyid_without_annotations_or_with_a_number_for_text_is_named(tmp_path, damage, message):
    """Found by the issue-23 hunt: an empty list left the keyid's motion in no split (the error then named only an
    empty split), and a number became the caption "7"."""
    import json

    root = make_tmr(tmp_path / "tmr")
    annotations = json.loads((root / "annotations.json").read_text())
    keyid = next(iter(annotations))
    annotations[keyid].update(damage)
    (root / "annotations.json").write_text(json.dumps(annotations))
    with pytest.raises(DataError, match=message.replace(r"(\w+)", keyid)):
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


@pytest.mark.parametrize("captions", ["csv", "jsonl"])
def test_folder_captions_with_a_utf8_bom_read_like_without(tmp_path, captions):
    root = make_folder(tmp_path / "f", captions=captions)
    name = f"captions.{captions}"
    (root / name).write_bytes(b"\xef\xbb\xbf" + (root / name).read_bytes())   # Excel's "CSV UTF-8"
    raw = load_raw(root, None, {})
    assert {it.id: it.captions for it in raw.items}["a"] == ["two people shake hands", "they greet, smiling"]


def test_folder_splits_fps_and_interaction_layout(tmp_path):
    root = make_folder(tmp_path / "f")
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("a\nb\n")
    (root / "splits" / "val.txt").write_text("c\n")
    (root / "meta.json").write_text(json.dumps({"fps": 30}))
    raw = load_raw(root, "folder", {})
    assert raw.splits == {"train": ["a", "b"], "val": ["c"]} and raw.fps == 30.0
    assert load_raw(root, "folder", {"fps": 25}).fps == 25.0
    from core.data.synthetic.layout import INTERACTION396_LAYOUT

    root396 = make_folder(tmp_path / "f396", dim=396)
    assert load_raw(root396, "folder", {}).layout == INTERACTION396_LAYOUT


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


# ---- registry, detection, archives ----------------------------------------------------------------

def test_registry_and_errors(tmp_path):
    assert set(LOADERS) == {"humanml3d", "kitml", "tmr", "folder", "joints", "bvh", "bandai"}
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
