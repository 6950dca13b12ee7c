"""Train/val/test assignment, settable for every format through the dataset spec.

    --data synthetic:val=500,test=500         counts of motions
    --data /data/bandai.tar.xz:val=0.2,test=0.2   fractions
    --data /data/HumanML3D:split=hash,val=0.15    ignore the release's split files, hash instead

* A dataset with split files (HumanML3D/KIT ``train.txt``..., TMR/folder ``splits/*.txt``) uses them
  (``split=auto``, the default); a release without a val file gets val carved out of train by hash
  (``val=`` sizes it).  ``split=hash`` ignores the files.
* Otherwise a stable hash of each motion's split key decides (u in [0, 1)): fractions cut u at
  1 - val - test and 1 - test, so adding motions never moves an existing one; a count (>= 1) takes
  the keys with the highest u (test first, then val).
* Items that must never straddle splits share a split key: TMR's mirrored ``M<id>`` keyids, the
  crops of one HumanML3D source motion.

Split options are not part of the dataset cache key: the parsed corpus is cached once and the
split is assigned at every load, so trying other split sizes never re-parses the data.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .errors import DataError

SPLITS = ("train", "val", "test")
ALL_MOTIONS = "all"   # not a split: every motion of a corpus that is only evaluated (core/crossdata.py)
SPLIT_METHODS = ("auto", "hash")
SPLIT_OPTIONS = {
    "val": "validation split size: a fraction (< 1) or a number of motions (>= 1)",
    "test": "test split size: a fraction (< 1) or a number of motions (>= 1)",
    "split": "'auto' (the dataset's split files when it has them, else hashed) or 'hash' (ignore the files)",
}
DEFAULT_FRACTION = 0.1
# Below this many queries a split cannot decide between trials: R@1 moves in >= 1-point steps and its
# 95 % CI is wider than +-10 points (run_search says so at the start).
MIN_DECISIVE_SPLIT = 100
# Below this a split cannot be scored at all: with no motion there is nothing to rank; with one, every model ranks
# it first (R@1 = 100 whatever it learned).
MIN_SCORED_SPLIT = 2


def scored_split_error(split: str, n: int, total: int, dataset: str) -> DataError | None:
    """The error for a ``split`` of ``n`` motions (of ``total``) that recall is computed on, when it is too small."""
    if n >= MIN_SCORED_SPLIT:
        return None
    return DataError(f"the {split!r} split of dataset {dataset!r} holds {n} motion(s) of {total}: retrieval recall "
                     f"needs at least {MIN_SCORED_SPLIT} to rank (with one, R@1 is 100 whatever the model).",
                     fix=f"give it motions: size it in the data spec, e.g. --data SPEC:{split}=0.1 (a fraction) or "
                         f"{split}=50 (a count), with split=hash when the dataset's own split files left it this "
                         "small; or use more data.")


def train_split_error(n: int, total: int, dataset: str) -> DataError | None:
    """The error for a train split of ``n`` motions that cannot fill one contrastive batch (a batch of one has no
    negatives: the batcher skips it, so such a run takes no step and reports an untrained model as trained)."""
    if n >= MIN_SCORED_SPLIT:
        return None
    return DataError(f"the 'train' split of dataset {dataset!r} holds {n} motion(s) of {total}: contrastive training "
                     f"needs at least {MIN_SCORED_SPLIT} per batch, so not one step would be taken.",
                     fix="give it motions: ask for smaller val=/test= in the data spec, list more ids in "
                         "splits/train.txt, or use more data.")


def small_split_note(split: str, n: int, batch_size: int) -> str | None:
    """What to say when a scored split is smaller than the evaluation protocol's batch (None otherwise)."""
    if n >= batch_size:
        return None
    return (f"note: the {split} split has {n} motions, fewer than the protocol's batch of {batch_size}: each batch "
            f"holds all {n}, so its R@k is an easier {n}-way ranking, not comparable with {batch_size}-way results.")


@dataclass(frozen=True)
class SplitSpec:
    val: float = DEFAULT_FRACTION     # < 1: a fraction of the motions; >= 1: a count
    test: float = DEFAULT_FRACTION
    method: str = "auto"
    given: tuple[str, ...] = ()       # which of val/test the user set (they conflict with split files)

    @classmethod
    def from_options(cls, options: Mapping, defaults: Mapping | None = None, spec: str = "") -> "SplitSpec":
        values = {**(defaults or {}), **{k: options[k] for k in SPLIT_OPTIONS if k in options}}
        method = str(values.get("split", "auto"))
        if method not in SPLIT_METHODS:
            raise DataError(f"dataset option split={method!r} in {spec!r} is invalid.",
                            fix=f"use split=auto or split=hash ({SPLIT_OPTIONS['split']}).")
        sizes = {}
        for key in ("val", "test"):
            value = values.get(key, DEFAULT_FRACTION)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    0 <= value < 1 or (value >= 1 and float(value).is_integer())):
                raise DataError(f"dataset option {key}={value!r} in {spec!r} is invalid.",
                                fix=f"use a fraction in [0, 1) or a whole number of motions, e.g. {key}=0.2 or "
                                    f"{key}=500.")
            sizes[key] = float(value)
        if sizes["val"] < 1 and sizes["test"] < 1 and sizes["val"] + sizes["test"] >= 1:
            raise DataError(f"dataset options val={sizes['val']:g} and test={sizes['test']:g} in {spec!r} leave "
                            "nothing to train on.", fix="make val + test < 1.")
        if sizes["val"] == 0:
            raise DataError(f"dataset option val=0 in {spec!r}: every trial is evaluated on the val split.",
                            fix="give val a fraction or a number of motions > 0.")
        given = tuple(k for k in ("val", "test") if k in options)
        return cls(sizes["val"], sizes["test"], method, given)

    def describe(self) -> str:
        def one(x: float) -> str:
            return f"{int(x)} motions" if x >= 1 else f"{x:.0%}"
        return f"val {one(self.val)}, test {one(self.test)} ({self.method})"


def split_key(motion_id: str) -> str:
    """Default key: the id, with TMR's mirror prefix removed (``M00012`` shares ``00012``'s split)."""
    return motion_id[1:] if motion_id.startswith("M") and motion_id[1:].isdigit() else motion_id


def _unit_hash(key: str) -> float:
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") / 2**64


def hashed_split(motion_id: str, fractions: tuple[float, float] = (0.8, 0.1)) -> str:
    """The split of one id under fractions (train, val); the rest is test."""
    u = _unit_hash(split_key(motion_id))
    if u < fractions[0]:
        return "train"
    return "val" if u < fractions[0] + fractions[1] else "test"


def _hash_assign(keys: Sequence[str], items: Sequence[int], val: float, test: float) -> dict[str, list[int]]:
    """Hashed val/test/train over ``items`` (indices whose split keys are ``keys[i]``)."""
    u = {k: _unit_hash(k) for k in {keys[i] for i in items}}
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    if val < 1 and test < 1:                              # fractions: thresholds on u (stable)
        for i in items:
            x = u[keys[i]]
            out["train" if x < 1 - val - test else "val" if x < 1 - test else "test"].append(i)
        return out
    n = len(items)
    want = {"test": round(test * n) if test < 1 else int(test), "val": round(val * n) if val < 1 else int(val)}
    members: dict[str, list[int]] = {}
    for i in items:
        members.setdefault(keys[i], []).append(i)
    ordered = sorted(members, key=lambda k: (-u[k], k))   # highest u first: test, then val
    target = "test"
    for key in ordered:
        while target != "train" and len(out[target]) >= want[target]:
            target = "val" if target == "test" else "train"
        out[target].extend(members[key])
    return out


def assign_splits(keys: Sequence[str], explicit: Mapping[str, Sequence[int]] | None, spec: SplitSpec,
                  name: str) -> dict[str, np.ndarray]:
    """{split: sorted int64 indices}; raises DataError when train or val ends up empty."""
    n = len(keys)
    if explicit and spec.method == "auto":
        clash = [k for k in spec.given if explicit.get(k)]
        if clash:
            raise DataError(f"dataset {name!r} has its own {'/'.join(clash)} split file(s), so "
                            f"{', '.join(f'{k}=' for k in clash)} cannot size them.",
                            fix="drop the option to keep the release's splits, or add split=hash to re-split every "
                                "motion by hash.")
        splits = {s: list(explicit.get(s, ())) for s in SPLITS}
        if not splits["val"] and splits["train"]:
            # Many releases ship only train/test: carve val (default 10 %) out of train.
            val = spec.val if "val" in spec.given else DEFAULT_FRACTION
            carved = _hash_assign(keys, splits["train"], val, 0.0)
            splits["train"], splits["val"] = carved["train"], carved["val"]
    else:
        want = sum(x if x >= 1 else 0 for x in (spec.val, spec.test))
        if want >= n:
            raise DataError(f"dataset {name!r} has {n} motions, too few for {spec.describe()}: nothing is left "
                            "to train on.", fix="ask for smaller val=/test= splits (counts or fractions).")
        splits = _hash_assign(keys, range(n), spec.val, spec.test)
    for split in ("train", "val"):
        if not splits[split]:
            raise DataError(f"dataset {name!r} has an empty {split!r} split ({n} motions, {spec.describe()}).",
                            fix="add motions or split files, or size the splits with val=/test= in --data.")
    return {k: np.asarray(sorted(v), dtype=np.int64) for k, v in splits.items()}
