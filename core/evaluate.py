"""Encode a split once and turn its similarity matrix into every metric a trial reports.

Ties between similarities follow ``eval_ties`` (default "expected": fractional credit over a random
order of the tied candidates, so a collapsed model scores chance, never 100 %; "tmr" reproduces TMR).
"""
from __future__ import annotations

import numpy as np
import torch

from .config import RuntimeConfig
from .data.batching import BatchBuilder
from .metrics import alignment_gap, centroid_distance, equivalence_matrix, mean_diag_sim, similarity_matrix
from .protocols import ProtocolResult, ProtocolSettings, evaluate_protocols, identity
from .model import RetrievalModel
from .precision import autocast
from .text import FrozenTextFeatures

def text_embeddings(model: RetrievalModel, texts: list[str], frozen: FrozenTextFeatures | None,
                    device: torch.device) -> torch.Tensor:
    """(B,) captions -> (B, latent): precomputed features in frozen mode, the transformer otherwise."""
    if frozen is not None:
        return model.encode_text(text_features=frozen.lookup(texts).to(device))
    return model.encode_text(texts=texts)


@torch.no_grad()
def embed_split(model: RetrievalModel, builder: BatchBuilder, indices: np.ndarray,
                frozen: FrozenTextFeatures | None, device: torch.device, batch_size: int = 128,
                amp: bool = True, *, with_text: bool = True) -> tuple[np.ndarray | None, np.ndarray, list[str]]:
    """Eval-mode embeddings of a split with each motion's first caption: text (N, d), motion (N, d).

    ``with_text=False`` encodes the motions only (text is None): a library to index needs no caption encoded,
    and its captions' frozen features are then never computed."""
    was_training = model.training
    model.eval()
    texts_out, motions_out, captions = [], [], []
    # Sorting by length keeps padding (and wasted attention) small; the order is restored below.
    lengths = builder.corpus.lengths()[indices]
    order = np.argsort(lengths, kind="stable")
    for s in range(0, len(order), batch_size):
        batch = builder.build(indices[order[s:s + batch_size]]).to(device)
        with autocast(device, amp):
            if with_text:
                texts_out.append(text_embeddings(model, batch.texts, frozen, device).float().cpu())
            m = model.encode_motion(batch.motion, batch.mask)["embedding"]
        motions_out.append(m.float().cpu())
        captions.extend(batch.texts)
    model.train(was_training)
    inverse = np.argsort(order)
    text = torch.cat(texts_out).numpy()[inverse] if with_text else None
    motion = torch.cat(motions_out).numpy()[inverse]
    return text, motion, [captions[i] for i in inverse]


def protocol_settings(runtime: RuntimeConfig) -> ProtocolSettings:
    """The evaluation protocol of a config: batches, evaluation seed (NOT the training seed, so runs of
    different seeds are scored on the same batches and can be compared query by query) and tie rule."""
    return ProtocolSettings(runtime.eval_batches, runtime.eval_batch_size, runtime.eval_seed, runtime.eval_ties)


def equivalence_views(captions: list[str], groups: list | None, runtime: RuntimeConfig) -> dict:
    """``equivalence`` (counted in the primary metrics when eval_equivalence) and ``eq_view`` (an extra
    equivalence-aware view whenever any two items are interchangeable) for evaluate_protocols."""
    has_groups = groups is not None and any(g is not None for g in groups)
    eq = equivalence_matrix(captions, groups if has_groups else None)
    extra = not runtime.eval_equivalence and eq.sum() > len(eq)   # any equivalence beyond the diagonal
    return {"equivalence": eq if runtime.eval_equivalence else None, "eq_view": eq if extra else None}


def evaluate_split(text: np.ndarray, motion: np.ndarray, captions: list[str], groups: list | None,
                   runtime: RuntimeConfig) -> ProtocolResult:
    """All reported retrieval metrics (with 95 % CIs) of one split + the diagnostics, and the per-query
    credit of the compared metrics (see core/protocols.py; key list in core/train/__init__.py)."""
    sim = similarity_matrix(text, motion)
    result = evaluate_protocols([sim], identity, protocol_settings(runtime),
                                **equivalence_views(captions, groups, runtime))
    result.metrics.update(alignment_gap=alignment_gap(text, motion), centroid_distance=centroid_distance(text, motion),
                          mean_diag_sim=mean_diag_sim(text, motion))
    return result
