"""Batches of normalized, padded motions with masks and one caption per motion."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import AugmentConfig
from .augment import augment_normalized, choose_window, maybe_mirror
from .types import MotionCorpus


@dataclass
class MotionBatch:
    motion: torch.Tensor   # (B, T, D) float32, normalized; padded frames are 0
    mask: torch.Tensor     # (B, T) bool, True on valid frames
    texts: list[str]       # B captions, text i describes motion i
    indices: np.ndarray    # (B,) corpus indices
    part_texts: list[tuple[str, ...] | None] | None = None   # B x 5 part texts (mirrored with the motion)

    def to(self, device: torch.device) -> "MotionBatch":
        return MotionBatch(self.motion.to(device, non_blocking=True), self.mask.to(device, non_blocking=True),
                           self.texts, self.indices, self.part_texts)


class BatchBuilder:
    """Cuts, augments (train only), normalizes and pads motions from a corpus.

    ``mean``/``std`` come from the train split only, so validation never leaks into normalization.
    """

    def __init__(self, corpus: MotionCorpus, mean: np.ndarray, std: np.ndarray, max_frames: int,
                 augment: AugmentConfig | None = None):
        self.corpus, self.max_frames, self.augment = corpus, max_frames, augment
        self.mean = mean.astype(np.float32)
        self.inv_std = (1.0 / std).astype(np.float32)

    def build(self, indices: np.ndarray, rng: np.random.Generator | None = None) -> MotionBatch:
        """rng given = training (random caption, augmentation); None = evaluation (first caption, centred window)."""
        clips, texts, part_texts = [], [], []
        corpus_parts = self.corpus.part_texts
        for i in indices:
            i = int(i)
            raw = self.corpus.motion(i)
            start, end = choose_window(len(raw), self.max_frames, self.augment, rng)
            x = np.asarray(raw[start:end], dtype=np.float32)
            caps = self.corpus.captions[i]
            caption = caps[int(rng.integers(len(caps)))] if rng is not None else caps[0]
            parts = corpus_parts[i] if corpus_parts else None
            x, caption, parts = maybe_mirror(x, caption, self.corpus.layout, self.augment, rng, parts)
            part_texts.append(parts)
            x = (x - self.mean) * self.inv_std
            if rng is not None and self.augment is not None:
                x = augment_normalized(x, self.augment, rng)
            clips.append(x)
            texts.append(caption)
        t_max = max(len(c) for c in clips)
        motion = np.zeros((len(clips), t_max, self.corpus.dim), dtype=np.float32)
        mask = np.zeros((len(clips), t_max), dtype=bool)
        for b, c in enumerate(clips):
            motion[b, :len(c)] = c
            mask[b, :len(c)] = True
        return MotionBatch(torch.from_numpy(motion), torch.from_numpy(mask), texts, np.asarray(indices),
                           part_texts if corpus_parts else None)

    def epoch_batches(self, split_indices: np.ndarray, batch_size: int, rng: np.random.Generator,
                      drop_last: bool = True, bucket: bool = False):
        """Shuffled training batches; the last partial batch is dropped (contrastive losses need B >= 2).

        ``bucket``: sort each window of 16 batches by length before cutting it, then shuffle the
        batch order. Padding per batch shrinks from ~max length to ~its neighbours' length (about
        1.5x less work with 2-10 s clips) while every motion is still seen once per epoch.
        """
        order = rng.permutation(split_indices)
        stop = len(order) - (len(order) % batch_size if drop_last else 0)
        if stop == 0:  # a split smaller than one batch still trains, as one short batch
            stop = len(order)
        order = order[:stop]
        if bucket and stop > batch_size:
            lengths = np.minimum(self.corpus.lengths()[order], self.max_frames)
            window = batch_size * 16
            for s in range(0, len(order), window):
                chunk = order[s:s + window]
                order[s:s + window] = chunk[np.argsort(lengths[s:s + window], kind="stable")]
        batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
        if bucket:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        for chunk in batches:
            if len(chunk) >= 2:
                yield chunk
