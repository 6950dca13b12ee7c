"""Encode a split once and turn its similarity matrix into every metric a trial reports.

Ties between similarities use the "average" rule (expected rank among tied candidates), so a
collapsed model whose similarities are all equal scores chance, never 100 %.
"""
from __future__ import annotations

import numpy as np
import torch

from .config import RuntimeConfig
from .data.batching import BatchBuilder
from .metrics import alignment_gap, centroid_distance, equivalence_matrix, mean_diag_sim, similarity_matrix
from .metrics_protocols import full_split, official_protocol, small_batches
from .model import RetrievalModel
from .precision import autocast
from .text import FrozenTextFeatures

TIES = "average"


def text_embeddings(model: RetrievalModel, texts: list[str], frozen: FrozenTextFeatures | None,
                    device: torch.device) -> torch.Tensor:
    """(B,) captions -> (B, latent): precomputed features in frozen mode, the transformer otherwise."""
    if frozen is not None:
        return model.encode_text(text_features=frozen.lookup(texts).to(device))
    return model.encode_text(texts=texts)


@torch.no_grad()
def embed_split(model: RetrievalModel, builder: BatchBuilder, indices: np.ndarray,
                frozen: FrozenTextFeatures | None, device: torch.device, batch_size: int = 128,
                amp: bool = True) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Eval-mode embeddings of a split with each motion's first caption: text (N, d), motion (N, d)."""
    was_training = model.training
    model.eval()
    texts_out, motions_out, captions = [], [], []
    # Sorting by length keeps padding (and wasted attention) small; the order is restored below.
    lengths = builder.corpus.lengths()[indices]
    order = np.argsort(lengths, kind="stable")
    for s in range(0, len(order), batch_size):
        batch = builder.build(indices[order[s:s + batch_size]]).to(device)
        with autocast(device, amp):
            t = text_embeddings(model, batch.texts, frozen, device)
            m = model.encode_motion(batch.motion, batch.mask)["embedding"]
        texts_out.append(t.float().cpu())
        motions_out.append(m.float().cpu())
        captions.extend(batch.texts)
    model.train(was_training)
    inverse = np.argsort(order)
    text = torch.cat(texts_out).numpy()[inverse]
    motion = torch.cat(motions_out).numpy()[inverse]
    return text, motion, [captions[i] for i in inverse]


def _prefixed(nested: dict, prefix: str, keys=None) -> dict[str, float]:
    out = {}
    for direction, values in nested.items():
        for k, v in values.items():
            if keys is None or k in keys:
                out[f"{prefix}{direction}_{k}"] = float(v)
    return out


def evaluation_metrics(text: np.ndarray, motion: np.ndarray, captions: list[str], groups: list | None,
                       runtime: RuntimeConfig, seed: int = 0) -> dict[str, float]:
    """All reported retrieval metrics for one split (see core/train.py for the key list)."""
    sim = similarity_matrix(text, motion)
    has_groups = groups is not None and any(g is not None for g in groups)
    eq = equivalence_matrix(captions, groups if has_groups else None)
    primary_eq = eq if runtime.eval_equivalence else None
    official = official_protocol(sim, runtime.eval_batches, runtime.eval_batch_size, seed=seed,
                                 equivalence=primary_eq, ties=TIES)
    t2m, m2t = official["t2m"], official["m2t"]
    out = {f"recall_at_{k}": t2m[f"R{k}"] for k in (1, 2, 3, 5, 10)}
    out.update(weighted_recall=t2m["WR"], medr=t2m["MedR"],
               m2t_recall_at_1=m2t["R1"], m2t_recall_at_5=m2t["R5"], m2t_weighted_recall=m2t["WR"])
    out.update(_prefixed(full_split(sim, equivalence=primary_eq, ties=TIES), "full_"))
    out.update(_prefixed(small_batches(sim, runtime.eval_batch_size, seed=seed, equivalence=primary_eq, ties=TIES),
                         "small_", keys=("R1", "R5", "R10", "MedR")))
    if not runtime.eval_equivalence and eq.sum() > len(eq):  # any equivalence beyond the diagonal
        # Equivalence-aware view next to the strict one: identical captions / same label group count.
        eq_off = official_protocol(sim, runtime.eval_batches, runtime.eval_batch_size, seed=seed,
                                   equivalence=eq, ties=TIES)
        out.update(eq_recall_at_1=eq_off["t2m"]["R1"], eq_weighted_recall=eq_off["t2m"]["WR"])
    out.update(alignment_gap=alignment_gap(text, motion), centroid_distance=centroid_distance(text, motion),
               mean_diag_sim=mean_diag_sim(text, motion))
    return out
