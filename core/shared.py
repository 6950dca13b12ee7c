"""Inputs every trial of a search shares: the packed corpus, its normalization and frozen text features.

A search builds this ONCE on the driver and hands it to trials through Ray's object store, so no
trial re-parses the dataset or re-runs the frozen text transformer.  Everything here is numpy arrays (motions,
string tables, features) that pickle out-of-band, so every trial on a node reads the same shared pages,
read-only: nothing here may be modified or copied whole in a trial (tests/core/test_shared.py checks it).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .config import ConfigError, TextConfig, TrainConfig
from .data import MotionCorpus, load_corpus
from .data.parts import can_split
from .registry import MOTION_ENCODERS
from .data.cache import release_pages, resolve_cache_dir
from .data.chunks import DeferredArray, FrameChunks
from .text import FrozenTextFeatures, build_frozen_text_features, sentence_embedding_config


@dataclass
class SharedInputs:
    corpus: MotionCorpus
    mean: np.ndarray                       # (D,) train-split mean
    std: np.ndarray                        # (D,) train-split std
    cache_dir: Path
    # (text_model, text_pooling, text_max_tokens) -> features of every text of the corpus
    text_features: dict[tuple, FrozenTextFeatures] = field(default_factory=dict)
    # True for a cross-dataset evaluation corpus (core/crossdata.py): mean/std are then ANOTHER corpus's (the
    # training one's), and it is only encoded, never trained on (no mirrored captions needed).
    foreign: bool = False

    def texts(self) -> list[str]:
        # Mirrored captions are included whenever the layout can mirror, so the cache key does not
        # depend on the (searched) mirroring probability.
        return self.corpus.all_texts(include_mirrored=self.corpus.layout.can_mirror and not self.foreign)

    def frozen_features(self, text_cfg: TextConfig, progress: bool = False) -> FrozenTextFeatures:
        """Features for this text config: from memory, else the on-disk cache, else computed once.

        In memory they are keyed by what determines them (model, pooling, max tokens; the corpus is fixed), so a
        trial finds what the driver precomputed without listing, mirroring and hashing every caption again."""
        recipe = (text_cfg.text_model, text_cfg.text_pooling, text_cfg.text_max_tokens)
        if recipe not in self.text_features:
            self.text_features[recipe] = build_frozen_text_features(
                text_cfg, self.texts(), self.cache_dir / "text", progress=progress)
        return self.text_features[recipe]

    def sentence_features(self, text_cfg: TextConfig, progress: bool = False) -> FrozenTextFeatures:
        """Mean-pooled sentence embeddings used by TMR's negative filtering."""
        return self.frozen_features(sentence_embedding_config(text_cfg.text_max_tokens), progress)

    def published(self, put: Callable[[np.ndarray], Any]) -> "SharedInputs":
        """A copy whose big arrays are in a shared store: ``put(array) -> handle`` (search/ passes ``ray.put``).
        The frames go block by block (core/data/chunks.py), each block's memory-mapped cache pages dropped from
        this process once it is stored, so the driver never holds the corpus twice. Text features go whole (also
        released when memory-mapped). The result pickles small; a trial calls ``resolved(get)``."""
        def store(array: np.ndarray) -> Any:
            handle = put(np.asarray(array))
            release_pages(array)
            return handle

        corpus = self.corpus
        frames = FrameChunks.split(corpus.frames, corpus.offsets) if isinstance(corpus.frames, np.ndarray) \
            else corpus.frames
        published_corpus = replace(corpus, frames=frames.map(store))
        features = {k: replace(f, features=DeferredArray(store(f.features), f.features.shape, f.features.dtype))
                    for k, f in self.text_features.items()}
        return replace(self, corpus=published_corpus, text_features=features)

    def resolved(self, get: Callable[[Any], np.ndarray]) -> "SharedInputs":
        """The published inputs with every handle turned into its (read-only, shared) array: ``get`` is ray.get."""
        corpus = self.corpus
        if isinstance(corpus.frames, FrameChunks):
            corpus = replace(corpus, frames=corpus.frames.map(lambda p: p if isinstance(p, np.ndarray) else get(p)))
        features = {k: replace(f, features=get(f.features.handle)) if isinstance(f.features, DeferredArray) else f
                    for k, f in self.text_features.items()}
        return replace(self, corpus=corpus, text_features=features)

    def precompute(self, config: Mapping[str, Any], progress: bool = True) -> "SharedInputs":
        """Compute (or read from the cache) the text features the config's trials will need."""
        cfg = TrainConfig.from_flat(config)
        if cfg.text.text_mode == "frozen":
            self.frozen_features(cfg.text, progress)
        if cfg.loss.filter_threshold > 0 or (not self.foreign and part_loss_active(cfg, self.corpus, say=True)):
            self.sentence_features(cfg.text, progress)
        return self


def part_loss_active(cfg: TrainConfig, corpus: MotionCorpus, say: bool = False) -> bool:
    """Whether training adds the part loss: a part-level encoder, part_weight > 0 and part texts in the data.

    A part encoder on a layout whose joints are unknown is a ConfigError here, before any model is built.
    ``say``: print why a part encoder trains with the global loss only (once, from the driver).
    """
    if not MOTION_ENCODERS.trait(cfg.model.motion_encoder, "part_embeddings", False):
        return False
    if not can_split(corpus.layout.kind, corpus.dim):
        raise ConfigError(f"motion_encoder='parts' needs a feature layout with known joints; dataset "
                          f"{corpus.name!r} has layout {corpus.layout.kind!r} (D={corpus.dim}). Fix: use joints22 / "
                          f"joints22x2 / hml263 / kit251 / interx396 data (or --format joints), or another motion_encoder.")
    if cfg.loss.part_weight <= 0 or not corpus.has_parts:
        if say:
            why = "part_weight=0" if cfg.loss.part_weight <= 0 else f"dataset {corpus.name!r} has no part texts"
            print(f"note: motion_encoder='parts' trains with the global loss only ({why}).", file=sys.stderr)
        return False
    return True


def load_shared(config: Mapping[str, Any]) -> SharedInputs:
    """The corpus of a config and its train-split normalization, without text features (validates the config)."""
    cfg = TrainConfig.from_flat(config)
    cache_dir = resolve_cache_dir(cfg.data.cache_dir)
    corpus = load_corpus(cfg.data.data, cfg.data.format, cache_dir)
    mean, std = corpus.mean_std("train")
    return SharedInputs(corpus, mean, std, cache_dir)


def prepare_shared(config: Mapping[str, Any], progress: bool = True) -> SharedInputs:
    """Load the corpus and precompute what the config's trials will need (validates the config first)."""
    return load_shared(config).precompute(config, progress)
