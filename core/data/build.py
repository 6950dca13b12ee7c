"""Turn a validated loader output into a packed ``MotionCorpus`` with deterministic splits."""
from __future__ import annotations

import numpy as np

from .splits import SplitSpec, assign_splits, split_key
from .types import MotionCorpus, RawCorpus
from .validate import validate_raw


def split_inputs(raw: RawCorpus) -> tuple[list[str], dict[str, list[int]] | None]:
    """(split key of every item, the release's split files as item indices or None)."""
    keys = [it.split_key or split_key(it.id) for it in raw.items]
    if not raw.splits:
        return keys, None
    index = {item.id: i for i, item in enumerate(raw.items)}
    return keys, {name: [index[i] for i in ids] for name, ids in raw.splits.items()}


def build_corpus(raw: RawCorpus, content_hash: str = "", split: SplitSpec = SplitSpec(), *,
                 consume: bool = False) -> MotionCorpus:
    """Validate and pack ``raw``. ``consume``: drop each item's features once packed, so building never holds
    the corpus twice (the loader's arrays and the packed one); ``raw`` is then spent."""
    validate_raw(raw)
    lengths = np.fromiter((len(it.features) for it in raw.items), dtype=np.int64, count=len(raw.items))
    offsets = np.zeros(len(raw.items) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    frames = np.empty((int(offsets[-1]), raw.layout.dim), dtype=np.float32)
    for i, item in enumerate(raw.items):
        frames[offsets[i]:offsets[i + 1]] = item.features
        if consume:
            item.features = frames[offsets[i]:offsets[i + 1]]   # a view: the loader's array can be freed
    keys, explicit = split_inputs(raw)
    return MotionCorpus(
        name=raw.name, ids=[it.id for it in raw.items], frames=frames, offsets=offsets,
        captions=[list(it.captions) for it in raw.items], groups=[it.group for it in raw.items],
        splits=assign_splits(keys, explicit, split, raw.name), fps=float(raw.fps), layout=raw.layout,
        meta=dict(raw.meta), content_hash=content_hash, split_keys=keys, explicit_splits=explicit,
        part_texts=[it.parts for it in raw.items] if any(it.parts for it in raw.items) else None,
    )
