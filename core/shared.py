"""Inputs every trial of a search shares: the packed corpus, its normalization and frozen text features.

A search builds this ONCE on the driver and hands it to trials through Ray's object store, so no
trial re-parses the dataset or re-runs the frozen text transformer.  Everything here is numpy
and picklable.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .config import TextConfig, TrainConfig
from .data import MotionCorpus, load_corpus
from .data.cache import default_cache_dir
from .text import FrozenTextFeatures, build_frozen_text_features, frozen_cache_key, sentence_embedding_config


@dataclass
class SharedInputs:
    corpus: MotionCorpus
    mean: np.ndarray                       # (D,) train-split mean
    std: np.ndarray                        # (D,) train-split std
    cache_dir: Path
    text_features: dict[str, FrozenTextFeatures] = field(default_factory=dict)  # frozen_cache_key -> features

    def texts(self) -> list[str]:
        # Mirrored captions are included whenever the layout can mirror, so the cache key does not
        # depend on the (searched) mirroring probability.
        return self.corpus.all_texts(include_mirrored=self.corpus.layout.can_mirror)

    def frozen_features(self, text_cfg: TextConfig, progress: bool = False) -> FrozenTextFeatures:
        """Features for this text config: from memory, else the on-disk cache, else computed once."""
        texts = self.texts()
        key = frozen_cache_key(text_cfg, texts)
        if key not in self.text_features:
            self.text_features[key] = build_frozen_text_features(
                text_cfg, texts, self.cache_dir / "text", progress=progress)
        return self.text_features[key]

    def sentence_features(self, text_cfg: TextConfig, progress: bool = False) -> FrozenTextFeatures:
        """Mean-pooled sentence embeddings used by TMR's negative filtering."""
        return self.frozen_features(sentence_embedding_config(text_cfg.text_max_tokens), progress)


def prepare_shared(config: Mapping[str, Any], progress: bool = True) -> SharedInputs:
    """Load the corpus and precompute what the config's trials will need (validates the config first)."""
    cfg = TrainConfig.from_flat(config)
    cache_dir = Path(cfg.data.cache_dir).expanduser() if cfg.data.cache_dir else default_cache_dir()
    corpus = load_corpus(cfg.data.data, cfg.data.format, cache_dir)
    mean, std = corpus.mean_std("train")
    shared = SharedInputs(corpus, mean, std, cache_dir)
    if cfg.text.text_mode == "frozen":
        shared.frozen_features(cfg.text, progress)
    if cfg.loss.filter_threshold > 0:
        shared.sentence_features(cfg.text, progress)
    return shared
