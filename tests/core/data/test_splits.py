"""Split sizes settable for every format: counts and fractions, split files vs hash, keys that never straddle."""
import numpy as np
import pytest

from core.data import load_corpus
from core.data.build import build_corpus
from core.data.errors import DataError
from core.data.spec import parse_spec
from core.data.splits import SplitSpec, assign_splits, hashed_split

from .helpers import toy_raw


def sizes(splits):
    return {k: len(v) for k, v in splits.items()}


def test_counts_and_fractions_partition_every_motion():
    keys = [f"k{i:04d}" for i in range(1000)]
    by_count = assign_splits(keys, None, SplitSpec(val=250, test=100), "toy")
    assert sizes(by_count) == {"train": 650, "val": 250, "test": 100}
    by_fraction = assign_splits(keys, None, SplitSpec(val=0.3, test=0.2), "toy")
    assert abs(len(by_fraction["val"]) - 300) < 50 and abs(len(by_fraction["test"]) - 200) < 45
    for splits in (by_count, by_fraction):
        assert sorted(np.concatenate(list(splits.values())).tolist()) == list(range(1000))


def test_fractions_are_stable_when_motions_are_added():
    small = [f"k{i:04d}" for i in range(300)]
    big = small + [f"extra{i}" for i in range(300)]
    a = assign_splits(small, None, SplitSpec(val=0.2, test=0.2), "toy")
    b = assign_splits(big, None, SplitSpec(val=0.2, test=0.2), "toy")
    for split in a:
        assert set(a[split].tolist()) == set(b[split].tolist()) & set(range(300)), split
    assert hashed_split("k0001", (0.6, 0.2)) == next(s for s in a if 1 in a[s])


def test_a_split_key_never_straddles_splits():
    keys = [f"src{i // 3:03d}" for i in range(600)]          # 3 crops per source motion
    for spec in (SplitSpec(val=100, test=100), SplitSpec(val=0.2, test=0.2)):
        splits = assign_splits(keys, None, spec, "toy")
        where = {}
        for name, idx in splits.items():
            for i in idx:
                assert where.setdefault(keys[i], name) == name


def test_split_files_win_unless_split_hash_and_sized_options_conflict_with_them():
    ids = [f"m{i:03d}" for i in range(40)]
    raw = toy_raw(40, splits={"train": ids[:30], "val": ids[30:35], "test": ids[35:]})
    assert sizes(build_corpus(raw).splits) == {"train": 30, "val": 5, "test": 5}
    rehashed = build_corpus(raw, split=SplitSpec(val=10, test=10, method="hash", given=("val", "test")))
    assert sizes(rehashed.splits) == {"train": 20, "val": 10, "test": 10}
    with pytest.raises(DataError, match="own val split file.*split=hash"):
        build_corpus(raw, split=SplitSpec(val=10, given=("val",)))
    carved = build_corpus(toy_raw(40, splits={"train": ids[:30], "test": ids[30:]}),
                          split=SplitSpec(val=12, given=("val",)))
    assert sizes(carved.splits) == {"train": 18, "val": 12, "test": 10}   # val carved out of train


@pytest.mark.parametrize("spec, message", [
    ("synthetic:val=-1", "val=-1"), ("synthetic:test=1.5", "test=1.5"), ("synthetic:val=0.6,test=0.5", "nothing to train"),
    ("synthetic:split=random", "split='random'"), ("synthetic:val=0", "val=0"),
])
def test_bad_split_options_name_the_value(spec, message):
    with pytest.raises(DataError, match=message):
        parse_spec(spec)


def test_too_many_counted_motions_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="too few.*nothing is left to train"):
        load_corpus("synthetic:n=40,val=30,test=10", cache_dir=tmp_path)


def test_synthetic_default_holds_500_val_700_test_and_split_options_reuse_the_cache(tmp_path):
    spec = parse_spec("synthetic")
    assert (spec.split.val, spec.split.test, spec.options["n"]) == (500, 700, 2400)
    assert (parse_spec("synthetic:n=200").split.val, parse_spec("synthetic:n=200").split.test) == (42, 58)
    assert (parse_spec("synthetic:n=5000").split.val, parse_spec("synthetic:n=5000").split.test) == (500, 700)
    a = load_corpus("synthetic:n=120", cache_dir=tmp_path)
    b = load_corpus("synthetic:n=120,val=0.25,test=0.25", cache_dir=tmp_path)
    assert sizes(a.splits) == {"train": 60, "val": 25, "test": 35}
    assert a.content_hash == b.content_hash and len(list((tmp_path / "corpus").iterdir())) == 1   # parsed once
    assert sum(sizes(b.splits).values()) == 120 and sizes(b.splits) != sizes(a.splits)


@pytest.mark.parametrize("n", [0, 1])
def test_a_split_too_small_to_rank_is_one_error_with_its_size(n):
    from core.data.splits import scored_split_error

    error = scored_split_error("val", n, 40, "toy")
    assert isinstance(error, DataError)
    assert f"the 'val' split of dataset 'toy' holds {n} motion(s) of 40: retrieval recall needs at least 2" in str(error)
    assert scored_split_error("val", 2, 40, "toy") is None


def test_a_split_smaller_than_the_protocols_batch_is_said_to_be_an_easier_ranking():
    from core.data.splits import small_split_note

    assert "fewer than the protocol's batch of 32: each batch holds all 20" in small_split_note("val", 20, 32)
    assert small_split_note("val", 32, 32) is None
