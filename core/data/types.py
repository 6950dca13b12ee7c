"""Dataset types: what a loader returns (``RawCorpus``) and what training reads (``MotionCorpus``).

Loaders produce a list of ``MotionItem`` (one motion, its captions, an optional label group).
``build_corpus`` validates every item once, assigns deterministic splits and packs all frames
into one contiguous float32 array so the cache can be memory-mapped and a Ray trial can receive
the whole corpus as a handful of numpy buffers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import DataError
from .mirror_text import mirror_caption
from .splits import ALL_MOTIONS, scored_split_error, train_split_error
from .chunks import FrameChunks
from .strings import RaggedStrings, StringTable



@dataclass(frozen=True)
class FeatureLayout:
    """What the D feature columns mean, and how to mirror them left<->right.

    Mirroring is a signed permutation for every layout we know (positions: swap twins and negate
    the lateral axis; 6D rotations: the sign pattern of M R M with M = diag(-1, 1, 1); yaw
    velocities: negate), so ``mirrored = features[:, mirror_perm] * mirror_sign``.
    ``mirror_perm`` is None for layouts we cannot mirror (arbitrary user features).
    """
    kind: str                                  # "joints22", "hml263", "kit251", "interx396", "raw"
    dim: int
    mirror_perm: tuple[int, ...] | None = None
    mirror_sign: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.mirror_perm is not None:
            assert len(self.mirror_perm) == self.dim and len(self.mirror_sign or ()) == self.dim

    @property
    def can_mirror(self) -> bool:
        return self.mirror_perm is not None

    def mirror(self, features: np.ndarray) -> np.ndarray:
        """(T, D) -> (T, D) mirrored features."""
        if self.mirror_perm is None:
            raise DataError(f"feature layout {self.kind!r} has no left/right mirror.",
                            fix="set aug_mirror=0 for this dataset.")
        return features[:, list(self.mirror_perm)] * np.asarray(self.mirror_sign, dtype=features.dtype)


@dataclass
class MotionItem:
    id: str
    features: np.ndarray            # (T, D) float32
    captions: list[str]             # >= 1 non-empty caption
    group: str | None = None        # label group for equivalence-aware evaluation
    source: str = ""                # file it came from, for error messages
    split_key: str | None = None    # items with one key never straddle splits (None = from the id)
    parts: tuple[str, ...] | None = None   # 5 part texts, core.data.parts.PART_NAMES order (None = none)


@dataclass
class RawCorpus:
    """What a loader returns, before validation and packing."""
    name: str
    items: list[MotionItem]
    fps: float
    layout: FeatureLayout
    splits: dict[str, list[str]] | None = None   # explicit ids per split; None = hashed split
    meta: dict = field(default_factory=dict)


@dataclass
class MotionCorpus:
    """A validated, packed dataset, held in numpy arrays only (see ``__reduce__``).

    Given as lists, ``ids``, ``captions``, ``groups``, ``split_keys`` and ``part_texts`` are stored as string
    tables (core/data/strings.py): two arrays each instead of one Python object per string, so a Ray trial
    reads the whole corpus zero-copy from the object store and holds no copy of its own.
    """
    name: str
    ids: Sequence[str]              # (N,) StringTable
    frames: np.ndarray              # (sum_T, D) float32, all motions concatenated (memory-mapped from the cache;
                                    # in a trial: core.data.chunks.FrameChunks of shared read-only blocks)
    offsets: np.ndarray             # (N + 1,) int64; motion i = frames[offsets[i]:offsets[i+1]]
    captions: Sequence[list[str]]   # (N,) RaggedStrings: captions[i] -> list of >= 1 captions
    groups: Sequence[str | None]    # (N,) RaggedStrings: groups[i] -> label group or None
    splits: dict[str, np.ndarray]   # split -> int64 indices into ids
    fps: float
    layout: FeatureLayout
    meta: dict = field(default_factory=dict)
    content_hash: str = ""          # hash of source + options: identifies this corpus in caches
    split_keys: Sequence[str] = field(default_factory=list)      # (N,) StringTable, see core/data/splits.py
    explicit_splits: dict[str, list[int]] | None = None         # the release's split files, as indices
    part_texts: Sequence[tuple[str, ...] | None] | None = None  # (N,) RaggedStrings: 5 part texts or None

    def __post_init__(self):
        self.ids = StringTable.of(self.ids)
        self.captions = RaggedStrings.of(self.captions, "list")
        self.groups = RaggedStrings.of(self.groups, "optional")
        self.split_keys = StringTable.of(self.split_keys)
        if self.part_texts is not None:
            self.part_texts = RaggedStrings.of(self.part_texts, "tuple")

    def __reduce__(self):
        # A memory-mapped cache gives np.memmap frames, which numpy pickles IN-band (a subclass): every trial
        # would unpickle its own copy of the whole corpus. Plain ndarray views pickle out-of-band (protocol 5),
        # so Ray's object store hands each trial a read-only view of one shared copy.
        state = {k: v for k, v in self.__dict__.items()}
        frames = self.frames
        state["frames"] = frames.map(_plain) if isinstance(frames, FrameChunks) else np.asarray(frames)
        state["offsets"] = np.asarray(self.offsets)
        state["splits"] = {k: np.asarray(v) for k, v in self.splits.items()}
        return _rebuild_corpus, (state,)

    @property
    def has_parts(self) -> bool:
        return self.part_texts is not None and self.part_texts.any_row()

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays the corpus is made of (what one shared copy costs)."""
        tables = [self.ids, self.captions, self.groups, self.split_keys, self.part_texts]
        return int(self.frames.nbytes + self.offsets.nbytes + sum(t.nbytes for t in tables if t is not None))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.frames.shape[1])

    def motion(self, i: int) -> np.ndarray:
        """(T_i, D) float32 view of motion i."""
        return self.frames[self.offsets[i]:self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def split(self, name: str) -> np.ndarray:
        if name == ALL_MOTIONS:   # every motion: a corpus that is only evaluated (core/crossdata.py)
            return np.arange(len(self.ids), dtype=np.int64)
        if name not in self.splits:
            raise DataError(f"split {name!r} does not exist in dataset {self.name!r}; "
                            f"it has {sorted(self.splits)}.")
        return self.splits[name]

    def scored_split(self, name: str) -> np.ndarray:
        """A split recall is computed on: DataError naming its size when it is too small to rank."""
        indices = self.split(name)
        error = scored_split_error(name, len(indices), len(self.ids), self.name)
        if error is not None:
            raise error
        return indices

    def training_split(self) -> np.ndarray:
        """The train split: DataError naming its size when it cannot fill one contrastive batch."""
        indices = self.split("train")
        error = train_split_error(len(indices), len(self.ids), self.name)
        if error is not None:
            raise error
        return indices

    def mean_std(self, split: str = "train", eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension mean/std over the frames of one split (train only for normalization).

        A dimension that never varies gets std 1 (not eps) so it stays 0 after normalization.
        """
        idx = self.split(split)
        if len(idx) == 0:
            raise DataError(f"split {split!r} of dataset {self.name!r} is empty.")
        lens = self.lengths()[idx]
        total = int(lens.sum())
        s = np.zeros(self.dim, np.float64)
        ss = np.zeros(self.dim, np.float64)
        for i in idx:  # streaming, so a memory-mapped corpus is never fully materialized in float64
            m = self.motion(int(i)).astype(np.float64)
            s += m.sum(0)
            ss += (m * m).sum(0)
        mean = s / total
        var = np.maximum(ss / total - mean * mean, 0.0)
        std = np.sqrt(var)
        std = np.where(std < eps, 1.0, std)
        return mean.astype(np.float32), std.astype(np.float32)

    def all_texts(self, include_mirrored: bool = False) -> list[str]:
        """Every distinct caption and part text (and its left/right mirror), in a stable order."""
        seen: dict[str, None] = {}
        parts = [p for p in (self.part_texts if self.part_texts is not None else ()) if p is not None]
        for caps in [*self.captions, *parts]:
            for c in caps:
                seen.setdefault(c, None)
                if include_mirrored:
                    seen.setdefault(mirror_caption(c), None)
        return list(seen)

    def summary(self, examples: int = 3) -> dict:
        lens = self.lengths()
        n_caps = len(self.captions.strings)
        groups = {g for g in self.groups if g is not None}
        return {
            "name": self.name,
            "motions": len(self.ids),
            "captions": n_caps,
            "captions_per_motion": round(n_caps / max(len(self.ids), 1), 2),
            "feature_kind": self.layout.kind,
            "D": self.dim,
            "fps": self.fps,
            "frames": int(lens.sum()),
            "length_frames": {"min": int(lens.min()), "mean": round(float(lens.mean()), 1),
                              "median": float(np.median(lens)), "max": int(lens.max())},
            "length_seconds_mean": round(float(lens.mean()) / self.fps, 2),
            "splits": {k: int(len(v)) for k, v in self.splits.items()},
            "label_groups": len(groups),
            "can_mirror": self.layout.can_mirror,
            "example_captions": [self.captions[i][0] for i in range(min(examples, len(self.ids)))],
            "content_hash": self.content_hash,
        }


def _plain(part):
    """An array part as a plain ndarray view (np.memmap pickles in-band); a store handle as it is."""
    return np.asarray(part) if isinstance(part, np.ndarray) else part


def _rebuild_corpus(state: dict) -> MotionCorpus:
    corpus = MotionCorpus.__new__(MotionCorpus)
    corpus.__dict__.update(state)   # already tables and plain arrays: no __post_init__ conversion
    return corpus
