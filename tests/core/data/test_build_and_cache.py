import time

import numpy as np
import pytest

from core.data.build import build_corpus
from core.data.cache import cache_key, content_hash, load_cached, save_corpus
from core.data.errors import DataError
from core.data.spec import parse_spec
from core.data.splits import hashed_split

from .helpers import toy_raw


def test_pack_roundtrip_and_splits_deterministic():
    raw = toy_raw(60)
    c = build_corpus(raw)
    assert c.frames.dtype == np.float32 and c.offsets[-1] == len(c.frames)
    for i in (0, 17, 59):
        np.testing.assert_array_equal(c.motion(i), raw.items[i].features)
    all_idx = np.concatenate([c.splits[s] for s in ("train", "val", "test")])
    assert sorted(all_idx.tolist()) == list(range(60))  # a partition
    again = build_corpus(toy_raw(60))
    for s in c.splits:
        np.testing.assert_array_equal(c.splits[s], again.splits[s])


def test_hashed_split_keeps_mirrored_ids_together():
    assert all(hashed_split(f"{i:05d}") == hashed_split(f"M{i:05d}") for i in range(200))


def test_explicit_splits_and_val_carved_from_train():
    ids = [f"m{i:03d}" for i in range(40)]
    c = build_corpus(toy_raw(40, splits={"train": ids[:30], "test": ids[30:]}))
    assert len(c.splits["val"]) > 0 and len(c.splits["train"]) + len(c.splits["val"]) == 30
    assert set(c.splits["test"].tolist()) == set(range(30, 40))


def test_mean_std_from_train_only():
    c = build_corpus(toy_raw(60))
    mean, std = c.mean_std("train")
    frames = np.concatenate([c.motion(int(i)) for i in c.splits["train"]])
    np.testing.assert_allclose(mean, frames.mean(0), atol=1e-5)
    np.testing.assert_allclose(std, frames.std(0), rtol=1e-4)


def test_constant_dimension_gets_unit_std():
    raw = toy_raw(30)
    for it in raw.items:
        it.features[:, 4] = 3.0
    _, std = build_corpus(raw).mean_std()
    assert std[4] == 1.0


def test_cache_roundtrip_is_memory_mapped_and_fast(tmp_path):
    c = build_corpus(toy_raw(50), content_hash="k1")
    save_corpus(c, tmp_path, "k1")
    t0 = time.perf_counter()
    back = load_cached(tmp_path, "k1")
    assert time.perf_counter() - t0 < 0.5
    assert isinstance(back.frames, np.memmap)
    np.testing.assert_array_equal(back.frames, c.frames)
    assert back.ids == c.ids and back.captions == c.captions and back.groups == c.groups
    assert back.layout == c.layout and back.summary()["motions"] == 50
    assert load_cached(tmp_path, "nope") is None
    # nothing half-written is left beside the entry
    assert [p.name for p in (tmp_path / "corpus").iterdir()] == ["k1"]


def test_content_hash_changes_with_bytes(tmp_path):
    (tmp_path / "a.txt").write_text("one")
    h1 = content_hash(tmp_path, memo_dir=tmp_path / "memo")
    assert content_hash(tmp_path, memo_dir=tmp_path / "memo") == h1
    (tmp_path / "a.txt").write_text("two")
    assert content_hash(tmp_path) != h1
    assert cache_key({"a": 1}) != cache_key({"a": 2})


@pytest.mark.parametrize("spec,expected", [
    ("synthetic", {"n": 2400, "people": 2}),
    ("synthetic:n=300,people=1", {"n": 300, "people": 1}),
])
def test_parse_synthetic(spec, expected):
    s = parse_spec(spec)
    assert s.is_synthetic and all(s.options[k] == v for k, v in expected.items())


@pytest.mark.parametrize("spec,match", [
    ("synthetic:people=3", "people=3"),
    ("synthetic:n=abc", "n='abc'"),
    ("synthetic:frames=3", "unknown synthetic option"),
    ("/definitely/not/here", "does not exist"),
    ("", "empty dataset spec"),
])
def test_parse_errors(spec, match):
    with pytest.raises(DataError, match=match):
        parse_spec(spec)


def test_path_spec_with_options(tmp_path):
    s = parse_spec(f"{tmp_path}:max_motions=5", "folder")
    assert s.path == tmp_path and s.options == {"max_motions": 5} and s.format == "folder"


def test_datasets_inside_the_cache_dir_still_hash_their_own_bytes(tmp_path):
    for name, text in (("a", "one"), ("b", "two")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.txt").write_text(text)
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "entry.npy").write_text("cache entry")
    assert content_hash(tmp_path / "a", memo_dir=tmp_path) != content_hash(tmp_path / "b", memo_dir=tmp_path)
    whole = content_hash(tmp_path, memo_dir=tmp_path)
    (tmp_path / "corpus" / "entry.npy").write_text("changed cache entry")
    assert content_hash(tmp_path, memo_dir=tmp_path) == whole


def test_a_cache_folder_that_is_a_plain_file_is_one_clear_error(tmp_path, monkeypatch):
    from core.data.cache import CACHE_ENV, default_cache_dir, resolve_cache_dir

    plain = tmp_path / "cache"
    plain.write_text("a file")
    with pytest.raises(DataError, match=rf"cache_dir {plain}: is a file, not a folder .*Fix: point it at a folder"):
        resolve_cache_dir(str(plain))
    monkeypatch.setenv(CACHE_ENV, str(plain))
    with pytest.raises(DataError, match=rf"{CACHE_ENV}={plain}: is a file, not a folder"):
        default_cache_dir()
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "new"))   # missing is fine: it is created when written
    assert resolve_cache_dir(None) == tmp_path / "new"
