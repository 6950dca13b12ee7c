"""Turn a validated loader output into a packed ``MotionCorpus`` with deterministic splits."""
from __future__ import annotations

import numpy as np

from .errors import DataError
from .types import SPLITS, MotionCorpus, RawCorpus, hashed_split
from .validate import validate_raw


def assign_splits(raw: RawCorpus) -> dict[str, np.ndarray]:
    """Explicit split files win; otherwise (and for a missing val split) a stable hash of the id decides."""
    index = {item.id: i for i, item in enumerate(raw.items)}
    splits: dict[str, list[int]] = {s: [] for s in SPLITS}
    if raw.splits:
        for name, ids in raw.splits.items():
            splits.setdefault(name, []).extend(index[i] for i in ids)
        if not splits["val"] and splits["train"]:
            # Many releases ship only train/test: carve a stable 10 % of train out as validation.
            keep, val = [], []
            for i in splits["train"]:
                (val if hashed_split(raw.items[i].id, (0.9, 0.1)) != "train" else keep).append(i)
            splits["train"], splits["val"] = keep, val
    else:
        for i, item in enumerate(raw.items):
            splits[hashed_split(item.id)].append(i)
    for name in ("train", "val"):
        if not splits[name]:
            raise DataError(f"dataset {raw.name!r} has an empty {name!r} split ({len(raw.items)} motions).",
                            fix="add motions or split files so that train and val are both non-empty.")
    return {k: np.asarray(sorted(v), dtype=np.int64) for k, v in splits.items()}


def build_corpus(raw: RawCorpus, content_hash: str = "") -> MotionCorpus:
    validate_raw(raw)
    lengths = np.fromiter((len(it.features) for it in raw.items), dtype=np.int64, count=len(raw.items))
    offsets = np.zeros(len(raw.items) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    frames = np.empty((int(offsets[-1]), raw.layout.dim), dtype=np.float32)
    for i, item in enumerate(raw.items):
        frames[offsets[i]:offsets[i + 1]] = item.features
    return MotionCorpus(
        name=raw.name, ids=[it.id for it in raw.items], frames=frames, offsets=offsets,
        captions=[list(it.captions) for it in raw.items], groups=[it.group for it in raw.items],
        splits=assign_splits(raw), fps=float(raw.fps), layout=raw.layout, meta=dict(raw.meta),
        content_hash=content_hash,
    )
