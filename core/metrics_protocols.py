"""Evaluation protocols over a full (N, N) similarity matrix (row = text i, correct = motion i).

Each returns ``{"t2m": {...}, "m2t": {...}}`` (motion->text uses the transposed sub-matrix);
``core.metrics.flatten_metrics`` turns it into ``{"t2m/R1": ...}`` for logging.

* ``full_split``: every text against every motion of the split.
* ``small_batches`` (TMR protocol): shuffle indices with a fixed seed, cut into consecutive
  batches of ``batch_size`` (a smaller last batch is dropped; if N < batch_size, one batch of
  all N), metrics per batch, averaged over batches (MedR too).
* ``official_protocol`` (the seed project's): ``n_batches`` batches of ``batch_size`` items drawn
  without replacement with a fixed seed; in each batch every text has exactly one correct motion
  among the batch's motions.  If N >= n_batches * batch_size the batches are disjoint (one
  permutation cut into pieces); otherwise each batch is drawn independently from all N (batches
  may overlap); if N < batch_size each batch has all N (in a random order).  R@K for K = 1..10
  and MedR are averaged over batches, and
  ``WR = sum_{K=1..10} R@K / K  /  sum_{K=1..10} 1 / K``  (percent, like R@K).
"""
from __future__ import annotations

import numpy as np

from .metrics import DEFAULT_KS, as_numpy, query_ranks, metrics_from_ranks, weighted_recall

OFFICIAL_KS = tuple(range(1, 11))


def _directions(sim: np.ndarray, eq: np.ndarray | None, idx: np.ndarray, ks, ties: str) -> dict[str, dict]:
    sub = sim[np.ix_(idx, idx)]
    sub_eq = None if eq is None else eq[np.ix_(idx, idx)]
    return {"t2m": metrics_from_ranks(query_ranks(sub, sub_eq, ties), ks),
            "m2t": metrics_from_ranks(query_ranks(sub.T, None if sub_eq is None else sub_eq.T, ties), ks)}


def _average(per_batch: list[dict[str, dict]]) -> dict[str, dict]:
    return {d: {k: float(np.mean([b[d][k] for b in per_batch])) for k in per_batch[0][d]}
            for d in ("t2m", "m2t")}


def _prepare(sim, equivalence):
    sim = as_numpy(sim)
    eq = None if equivalence is None else np.asarray(
        equivalence.detach().cpu() if hasattr(equivalence, "detach") else equivalence, dtype=bool)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1] or len(sim) == 0:
        raise ValueError(f"similarity matrix must be square and non-empty, got shape {sim.shape}.")
    return sim, eq


def full_split(sim, ks=DEFAULT_KS, equivalence=None, ties: str = "optimistic") -> dict[str, dict]:
    sim, eq = _prepare(sim, equivalence)
    return _directions(sim, eq, np.arange(len(sim)), ks, ties)


def small_batches(sim, batch_size: int = 32, seed: int = 0, ks=DEFAULT_KS, equivalence=None,
                  ties: str = "optimistic") -> dict[str, dict]:
    sim, eq = _prepare(sim, equivalence)
    n = len(sim)
    perm = np.random.default_rng(seed).permutation(n)
    if n < batch_size:
        batches = [perm]
    else:
        batches = [perm[s:s + batch_size] for s in range(0, n - batch_size + 1, batch_size)]
    return _average([_directions(sim, eq, idx, ks, ties) for idx in batches])


def official_batches(n: int, n_batches: int = 30, batch_size: int = 32, seed: int = 0) -> list[np.ndarray]:
    """The index sets of ``official_protocol`` (exposed so a report can show what was drawn)."""
    rng = np.random.default_rng(seed)
    size = min(batch_size, n)
    if n >= n_batches * size:
        perm = rng.permutation(n)
        return [perm[b * size:(b + 1) * size] for b in range(n_batches)]
    return [rng.choice(n, size=size, replace=False) for _ in range(n_batches)]


def official_protocol(sim, n_batches: int = 30, batch_size: int = 32, seed: int = 0, equivalence=None,
                      ties: str = "optimistic") -> dict[str, dict]:
    sim, eq = _prepare(sim, equivalence)
    batches = official_batches(len(sim), n_batches, batch_size, seed)
    out = _average([_directions(sim, eq, idx, OFFICIAL_KS, ties) for idx in batches])
    for direction in out.values():
        direction["WR"] = weighted_recall(direction, max_k=10)
    return out
