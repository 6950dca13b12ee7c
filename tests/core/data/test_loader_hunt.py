"""Bad dataset inputs found by a probe (tracebacks or silently wrong corpora), each now one DataError
naming the file (and line / id / option) and the fix; plus damaged cache entries, now a rebuild."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.data import load_corpus
from core.data.__main__ import main as data_main
from core.data.build import build_corpus
from core.data.cache import entry_dir, load_cached, save_corpus
from core.data.errors import DataError
from core.data.loaders import load_raw
from core.data.spec import parse_spec

from .fabricated import make_folder, make_humanml3d, make_tmr, write_bvh
from .helpers import toy_raw

LATIN1 = "un café\n".encode("latin-1")   # 0xe9 is not UTF-8


def _bvh_folder(root):
    for name in ("walk", "run"):
        write_bvh(root / f"{name}.bvh")
        (root / f"{name}.txt").write_text(f"a person {name}s\n")
    return root


# ---- 1. text files that are not UTF-8 (every loader reads them through core/data/textfile.py) ------

def _hml_caption(root):
    (make_humanml3d(root) / "texts" / "000001.txt").write_bytes("un caf\xe9#x#0.0#0.0\n".encode("latin-1"))
    return root, "humanml3d", "texts/000001.txt", 1


def _hml_split(root):
    (make_humanml3d(root) / "train.txt").write_bytes(b"000001\n000002\n" + LATIN1)
    return root, "humanml3d", "train.txt", 3


def _tmr_annotations(root):
    path = make_tmr(root) / "annotations.json"
    path.write_bytes(path.read_text().replace("waves", "waves caf\xe9").encode("latin-1"))
    return root, "tmr", "annotations.json", 1


def _tmr_split(root):
    (make_tmr(root) / "splits" / "val.txt").write_bytes(b"00003\n" + LATIN1)
    return root, "tmr", "splits/val.txt", 2


def _folder_meta(root):
    (make_folder(root) / "meta.json").write_bytes('{"fps": 20, "note": "caf\xe9"}'.encode("latin-1"))
    return root, "folder", "meta.json", 1


def _bvh_caption(root):
    (_bvh_folder(root) / "walk.txt").write_bytes(LATIN1)
    return root, "bvh", "walk.txt", 1


@pytest.mark.parametrize("build", [_hml_caption, _hml_split, _tmr_annotations, _tmr_split, _folder_meta,
                                   _bvh_caption])
def test_non_utf8_text_names_file_line_and_fix(tmp_path, build):
    root, fmt, rel, line = build(tmp_path / "ds")
    with pytest.raises(DataError, match=rf"{rel}: line {line}: byte 0xe9 is not UTF-8 \(byte offset \d+.*"
                                        r"Fix: save it as UTF-8"):
        load_raw(root, fmt, {})


def test_utf16_split_file_is_named(tmp_path):
    root = make_humanml3d(tmp_path / "hml")
    (root / "train.txt").write_bytes("000001\n".encode("utf-16"))
    with pytest.raises(DataError, match=r"train\.txt: the file is UTF-16 text; split files must be UTF-8"):
        load_raw(root, "humanml3d", {})


@pytest.mark.parametrize("fmt", ["humanml3d", "tmr"])
def test_bom_and_crlf_split_files_give_clean_ids(tmp_path, fmt):
    if fmt == "humanml3d":
        root = make_humanml3d(tmp_path / "hml")
        (root / "train.txt").write_bytes(b"\xef\xbb\xbf000001\r\n000002\r\n000003\r\n")
        (root / "texts" / "000001.txt").write_bytes(b"\xef\xbb\xbfa person walks.#x#0.0#0.0\r\n")
        first = "000001"
    else:
        root = make_tmr(tmp_path / "tmr")
        (root / "splits" / "train.txt").write_bytes(b"\xef\xbb\xbf00001\r\nM00001\r\n00002\r\n")
        first = "00001"
    raw = load_raw(root, fmt, {})
    assert raw.splits["train"][0] == first
    assert all("\ufeff" not in i and "\r" not in i for i in raw.splits["train"])
    if fmt == "humanml3d":
        assert {it.id: it for it in raw.items}["000001"].captions == ["a person walks."]


# ---- 2. crop spans: NaN / inf / negative ------------------------------------------------------------

@pytest.mark.parametrize("span,match", [
    ("inf#inf", r"line 1: start/end 'inf'/'inf' must be finite seconds >= 0"),
    ("-5.0#-1.0", r"line 1: start/end '-5.0'/'-1.0' must be finite seconds >= 0"),
    ("2.0#1.0", r"line 1: the span ends \(1 s\) before it starts \(2 s\)"),
])
def test_humanml3d_bad_span_is_an_error(tmp_path, span, match):
    root = make_humanml3d(tmp_path / "hml")
    (root / "texts" / "000004.txt").write_text(f"walks far#x#{span}\n")
    with pytest.raises(DataError, match=rf"texts/000004\.txt: {match}.*Fix: "):
        load_raw(root, "humanml3d", {})


def test_humanml3d_whole_motion_conventions_still_hold(tmp_path):
    # 0.0#0.0 and nan#nan (HumanML3D's own convention) are the whole motion; a span past the end is a counted skip
    raw = load_raw(make_humanml3d(tmp_path / "hml"), "humanml3d", {})
    assert {it.id: it for it in raw.items}["000002"].captions == ["whole motion", "spins"]
    assert raw.meta["skipped_crops"] == 1


@pytest.mark.parametrize("key,value,shown", [("start", float("nan"), "start=nan"),
                                             ("end", float("inf"), "end=inf"),
                                             ("start", -1.0, "start=-1.0")])
def test_tmr_non_finite_or_negative_span_names_the_keyid(tmp_path, key, value, shown):
    root = make_tmr(tmp_path / "tmr")
    ann = json.loads((root / "annotations.json").read_text())
    ann["00003"]["annotations"][0][key] = value
    (root / "annotations.json").write_text(json.dumps(ann))
    with pytest.raises(DataError, match=rf"annotations\.json: keyid '00003': annotation 'waves' has .*{shown}"):
        load_raw(root, "tmr", {})


# ---- 3. loader and synthetic options: one checker (core/data/spec.check_option) --------------------

@pytest.mark.parametrize("fmt,option,value,rule", [
    ("humanml3d", "max_motions", "abc", "a whole number >= 1"),
    ("humanml3d", "max_motions", -1, "a whole number >= 1"),
    ("humanml3d", "max_motions", 1.5, "a whole number >= 1"),
    ("humanml3d", "fps", "abc", "a finite number > 0"),
    ("folder", "max_motions", -1, "a whole number >= 1"),
    ("folder", "fps", float("inf"), "a finite number > 0"),
    ("tmr", "allow_missing", "maybe", "true or false"),
    ("bvh", "workers", "abc", "a whole number >= 1"),
    ("bvh", "fps", 0, "a finite number > 0"),
])
def test_bad_loader_option_names_option_value_and_range(tmp_path, fmt, option, value, rule):
    builders = {"humanml3d": make_humanml3d, "folder": make_folder, "tmr": make_tmr, "bvh": _bvh_folder}
    root = builders[fmt](tmp_path / "ds")
    root.mkdir(exist_ok=True)
    with pytest.raises(DataError, match=rf"option {option}={value!r} is invalid; it must be {rule}\..*Fix: "):
        load_raw(root, fmt, {option: value})


def test_bad_path_option_fails_in_the_spec_before_hashing(tmp_path):
    with pytest.raises(DataError, match=r"option max_motions=-1 is invalid"):
        parse_spec(f"{tmp_path}:max_motions=-1")
    assert parse_spec(f"{tmp_path}:max_motions=1e3,fps=30").options == {"max_motions": 1000, "fps": 30.0}


@pytest.mark.parametrize("spec,match", [
    ("synthetic:seed=-1", r"synthetic option seed=-1 is invalid; it must be a whole number >= 0"),
    ("synthetic:fps=inf", r"synthetic option fps=inf is invalid; it must be a finite number > 0"),
    ("synthetic:fps=nan", r"synthetic option fps=nan is invalid"),
    ("synthetic:people=1.5", r"synthetic option people=1\.5 is invalid; it must be 1 or 2"),
    ("synthetic:n=50.7", r"synthetic option n=50\.7 is invalid; it must be a whole number"),
    ("synthetic:seed=true", r"synthetic option seed=True is invalid"),
])
def test_bad_synthetic_option(spec, match):
    with pytest.raises(DataError, match=match):
        parse_spec(spec)


def test_integral_synthetic_floats_are_accepted():
    assert parse_spec("synthetic:n=1e3,people=1.0").options["n"] == 1000


# ---- 4. an id listed twice in one split file -------------------------------------------------------

@pytest.mark.parametrize("fmt", ["humanml3d", "folder", "tmr"])
def test_duplicate_split_id_names_file_id_and_lines(tmp_path, fmt):
    if fmt == "humanml3d":
        root, rel = make_humanml3d(tmp_path / "ds"), "train.txt"
        (root / rel).write_text("000001\n000002\n000003\n000001\n")
        motion_id, lines = "000001", (1, 4)
    elif fmt == "folder":
        root, rel = make_folder(tmp_path / "ds"), "splits/train.txt"
        (root / "splits").mkdir()
        (root / rel).write_text("a\n\nb\na\n")
        (root / "splits" / "val.txt").write_text("c\n")
        motion_id, lines = "a", (1, 4)
    else:
        root, rel = make_tmr(tmp_path / "ds"), "splits/val.txt"
        (root / rel).write_text("00003\n00003\n")
        motion_id, lines = "00003", (1, 2)
    with pytest.raises(DataError, match=rf"{rel}: id '{motion_id}' is listed twice, on lines {lines[0]} and "
                                        rf"{lines[1]}\..*Fix: "):
        load_raw(root, fmt, {})


# ---- 5. folder meta.json fps ----------------------------------------------------------------------

@pytest.mark.parametrize("text,shown", [('{"fps": Infinity}', "inf"), ('{"fps": NaN}', "nan"),
                                        ('{"fps": -20}', "-20"), ('{"fps": "fast"}', "'fast'")])
def test_folder_meta_fps_must_be_finite_and_positive(tmp_path, text, shown):
    root = make_folder(tmp_path / "ds")
    (root / "meta.json").write_text(text)
    with pytest.raises(DataError, match=rf"meta\.json: fps={shown} is invalid; it must be a finite number > 0"):
        load_raw(root, "folder", {})


def test_folder_meta_quoted_fps_still_works(tmp_path):
    root = make_folder(tmp_path / "ds")
    (root / "meta.json").write_text('{"fps": "30"}')
    assert load_raw(root, "folder", {}).fps == 30.0


# ---- 6. .npy arrays that are not numbers ----------------------------------------------------------

@pytest.mark.parametrize("array,dtype", [(np.array([["x"] * 6] * 12), "<U1"),
                                         (np.ones((12, 6), np.complex64), "complex64")])
def test_non_float_motion_npy_names_file_and_dtype(tmp_path, array, dtype):
    root = make_folder(tmp_path / "ds")
    np.save(root / "motions" / "b.npy", array)
    with pytest.raises(DataError, match=rf"motions/b\.npy: this \.npy holds {dtype} values.*expected a float array"):
        load_raw(root, "folder", {})


def test_humanml3d_mean_npy_with_strings(tmp_path):
    root = make_humanml3d(tmp_path / "hml")
    np.save(root / "Mean.npy", np.array(["a", "b"]))
    with pytest.raises(DataError, match=r"Mean\.npy: this \.npy holds <U1 values.*expected a float array"):
        load_raw(root, "humanml3d", {})


# ---- the CLI: exit status 2 and exactly one "error:" line -----------------------------------------

def test_cli_reports_one_error_line(tmp_path, capsys):
    root = make_humanml3d(tmp_path / "hml")
    (root / "texts" / "000004.txt").write_text("walks far#x#inf#inf\n")
    assert data_main(["--data", str(root), "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err and "000004.txt: line 1" in err


# ---- 7. a damaged cache entry is a miss, rebuilt with one warning ----------------------------------

@pytest.mark.parametrize("damage", ["meta_truncated", "frames_truncated", "frames_short", "meta_not_object",
                                    "captions_cut", "split_out_of_range"])
def test_damaged_cache_entry_is_a_miss(tmp_path, capsys, damage):
    corpus = build_corpus(toy_raw(30), content_hash="k1")
    d = save_corpus(corpus, tmp_path, "k1")
    if damage == "meta_truncated":
        (d / "meta.json").write_bytes((d / "meta.json").read_bytes()[:100])
    elif damage == "frames_truncated":
        (d / "frames.npy").write_bytes((d / "frames.npy").read_bytes()[:100])
    elif damage == "frames_short":   # a valid header but fewer frames than offsets.npy says
        np.save(d / "frames.npy", np.asarray(corpus.frames)[:-3])
    elif damage in ("captions_cut", "split_out_of_range"):   # a hand edit (an IndexError mid-training before)
        meta = json.loads((d / "meta.json").read_text())
        if damage == "captions_cut":
            meta["captions"] = meta["captions"][:3]
        else:
            meta["splits"]["val"] = [*meta["splits"]["val"], 30]
        (d / "meta.json").write_text(json.dumps(meta))
    else:
        (d / "meta.json").write_text("[1, 2]")
    assert load_cached(tmp_path, "k1") is None
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "is damaged" in err and "rebuilding it" in err
    assert not d.exists() and [p.name for p in (tmp_path / "corpus").iterdir()] == []   # nothing left half-deleted


def test_load_corpus_rebuilds_a_damaged_entry(tmp_path, capsys):
    root = make_folder(tmp_path / "ds")
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("a\nb\n")
    (root / "splits" / "val.txt").write_text("c\n")
    cache = tmp_path / "cache"
    first = load_corpus(str(root), cache_dir=cache)
    d = entry_dir(cache, first.content_hash)
    (d / "meta.json").write_bytes((d / "meta.json").read_bytes()[:50])
    again = load_corpus(str(root), cache_dir=cache)
    assert again.ids == first.ids and "rebuilding it" in capsys.readouterr().err
    assert load_cached(cache, first.content_hash) is not None   # rewritten, whole
