"""Evaluation protocols over (N, N) similarity matrices: ONE implementation for a single model and for
fused ensembles (row i = text i, correct = motion i; motion->text uses the transposed sub-matrix).

* full split: every text against every motion of the split.
* small batches (TMR): one seeded permutation cut into consecutive batches of ``batch_size`` (a
  short last batch is dropped; if N < batch_size, one batch of all N); metrics averaged over batches.
* official (the seed project's): ``n_batches`` batches of ``batch_size`` drawn without replacement
  with a fixed seed; each text has exactly one correct motion among its batch's motions.  If
  N >= n_batches * batch_size the batches are disjoint (one permutation cut into pieces); otherwise
  each batch is drawn independently from all N (batches may overlap: a query is scored in several);
  if N < batch_size each batch holds all N.  R@1..R@10 and MedR are averaged over batches and
  ``WR = sum_{K=1..10} R@K / K  /  sum_{K=1..10} 1 / K``.

The combiner hook: ``combiner(list of member sub-matrices) -> scores`` is applied INSIDE each
protocol's candidate set (a Borda rank among 32 candidates differs from one among the split), exactly
as a deployed ensemble would rank a given gallery; ``identity`` scores a single model.

``evaluate_protocols`` returns the metric dict every trial reports (see core/train/__init__.py for the keys)
and the per-query credit (``core.bootstrap.QueryCredit``) of the compared metrics, from which the
``<key>_lo`` / ``<key>_hi`` 95 % bootstrap bounds are added.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .bootstrap import QueryCredit, interval
from .metrics import DEFAULT_KS, WR_MAX_K, as_bool, as_numpy, hits_and_ranks, weighted_recall_weights

OFFICIAL_KS = tuple(range(1, WR_MAX_K + 1))
Combiner = Callable[[Sequence[np.ndarray]], np.ndarray]
# Metrics that get a per-query credit (and so a CI): the ones a search or an ensemble compares.
CREDITED = ("recall_at_1", "weighted_recall", "full_t2m_R1", "eq_recall_at_1")


def identity(sims: Sequence[np.ndarray]) -> np.ndarray:
    """The combiner of a single model: its own similarities."""
    if len(sims) != 1:
        raise ValueError(f"identity combines exactly one member, got {len(sims)}.")
    return as_numpy(sims[0])


# ----------------------------------------------------------------------------- index sets

def official_batches(n: int, n_batches: int = 30, batch_size: int = 32, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    size = min(batch_size, n)
    if n >= n_batches * size:
        perm = rng.permutation(n)
        return [perm[b * size:(b + 1) * size] for b in range(n_batches)]
    return [rng.choice(n, size=size, replace=False) for _ in range(n_batches)]


def small_batch_indices(n: int, batch_size: int = 32, seed: int = 0) -> list[np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    if n < batch_size:
        return [perm]
    return [perm[s:s + batch_size] for s in range(0, n - batch_size + 1, batch_size)]


# ----------------------------------------------------------------------------- one protocol

@dataclass
class BatchedResult:
    """One protocol's metrics per direction, and the text->motion per-query credit at each k."""
    metrics: dict[str, dict[str, float]]          # {"t2m": {R1.., MedR}, "m2t": {...}}
    credit_sums: np.ndarray                       # (N, len(ks)) t2m credit summed over a query's batches
    counts: np.ndarray                            # (N,) batches each text was scored in
    ks: tuple = field(default=DEFAULT_KS)

    def credit(self, column: np.ndarray | int) -> QueryCredit:
        """Credit of R@ks[column] (int) or of a weighted combination of the columns (vector)."""
        sums = self.credit_sums[:, column] if isinstance(column, int) else self.credit_sums @ column
        return QueryCredit(sums, self.counts)


def run_batches(sims: Sequence[np.ndarray], combiner: Combiner, batches: Sequence[np.ndarray],
                equivalence: np.ndarray | None, ks, ties: str) -> BatchedResult:
    """Combine and score every batch in both directions; metrics are averaged over batches.

    All batches have one size S, so they are stacked: each member's (B, S, S) sub-matrices become (B*S, S)
    query rows and the (row-wise) combiner scores every batch in one call."""
    n = len(sims[0])
    idx = np.stack([np.asarray(b) for b in batches])                     # (B, S) candidate ids per batch
    n_batches, size = idx.shape
    rows, cols = idx[:, :, None], idx[:, None, :]
    subs = [s[rows, cols] for s in sims]                                  # each (B, S, S): text x motion
    correct = np.broadcast_to(np.eye(size, dtype=bool), (n_batches, size, size))
    if equivalence is not None:
        correct = correct | equivalence[rows, cols]
    names = [f"R{k}" for k in ks] + ["MedR"]
    metrics, sums, counts = {}, np.zeros((n, len(ks))), np.bincount(idx.ravel(), minlength=n).astype(np.float64)
    for direction, mats, right in (("t2m", subs, correct),
                                   ("m2t", [m.transpose(0, 2, 1) for m in subs], correct.transpose(0, 2, 1))):
        scores = combiner([m.reshape(n_batches * size, size) for m in mats])   # (B*S, S) scores per query row
        hits, ranks = hits_and_ranks(scores, right.reshape(n_batches * size, size), ties, ks)
        per_batch = np.concatenate([100.0 * hits.reshape(n_batches, size, -1).mean(axis=1),
                                    np.median(ranks.reshape(n_batches, size), axis=1)[:, None]], axis=1)
        metrics[direction] = dict(zip(names, map(float, per_batch.mean(axis=0))))
        if direction == "t2m":
            np.add.at(sums, idx.ravel(), hits)
    return BatchedResult(metrics, sums, counts, tuple(ks))


# ----------------------------------------------------------------------------- all protocols

AUTO_DRAWS_PER_QUERY = 16
OFFICIAL_BATCHES = 30


@dataclass(frozen=True)
class ProtocolSettings:
    n_batches: int = 0       # 0 = auto: every query drawn ~16 times (at least the official 30 batches)
    batch_size: int = 32
    seed: int = 0            # the evaluation seed: fixed across training seeds, so runs are paired
    ties: str = "expected"

    def batches_for(self, n: int) -> int:
        """Batches for a split of n queries.  The official protocol's 30 x 32 draws only 960 (query, batch)
        pairs, whatever n: its estimate of "R@1 among 32 candidates" carries that sampling noise on top of
        the queries'.  Auto draws each query ~16 times (same expectation, measured: the paired CI of two
        models' R@1 on 500 test queries narrows from +-3.5 to +-2.3 points; bench/ci_width.py)."""
        if self.n_batches > 0:
            return self.n_batches
        return max(OFFICIAL_BATCHES, math.ceil(AUTO_DRAWS_PER_QUERY * n / max(1, min(self.batch_size, n))))


@dataclass
class ProtocolResult:
    metrics: dict[str, float]                     # flat keys, as a trial reports them
    credits: dict[str, QueryCredit]               # CREDITED key -> per-query credit (text->motion)


def _with_wr(result: BatchedResult) -> None:
    wr = weighted_recall_weights(WR_MAX_K)
    for direction in result.metrics.values():
        direction["WR"] = float(sum(w * direction[f"R{k}"] for k, w in zip(OFFICIAL_KS, wr)))


def evaluate_protocols(sims: Sequence, combiner: Combiner = identity, settings: ProtocolSettings = ProtocolSettings(),
                       *, equivalence=None, eq_view=None, intervals: bool = True,
                       official_only: bool = False) -> ProtocolResult:
    """Every retrieval metric of a split for the combined scores of ``sims`` (each (N, N)).

    ``equivalence``: counts as correct in the primary metrics (RuntimeConfig.eval_equivalence);
    ``eq_view``: an extra equivalence-aware official view (eq_recall_at_1, eq_weighted_recall);
    ``official_only``: only the official protocol's keys and credit (what member selection scores).
    """
    sims = [as_numpy(s) for s in sims]
    n = len(sims[0]) if sims else 0
    if n == 0 or any(s.shape != (n, n) for s in sims):
        raise ValueError(f"evaluate_protocols needs square (N, N) member matrices, got {[s.shape for s in sims]}.")
    eq, view_eq = as_bool(equivalence), as_bool(eq_view)
    s = settings
    official_idx = official_batches(n, s.batches_for(n), s.batch_size, s.seed)
    official = run_batches(sims, combiner, official_idx, eq, OFFICIAL_KS, s.ties)
    _with_wr(official)
    t2m, m2t = official.metrics["t2m"], official.metrics["m2t"]
    out = {f"recall_at_{k}": t2m[f"R{k}"] for k in (1, 2, 3, 5, 10)}
    out.update(weighted_recall=t2m["WR"], medr=t2m["MedR"], m2t_recall_at_1=m2t["R1"],
               m2t_recall_at_5=m2t["R5"], m2t_weighted_recall=m2t["WR"])
    credits = {"recall_at_1": official.credit(0), "weighted_recall": official.credit(weighted_recall_weights())}
    if official_only:
        return ProtocolResult(out, credits)
    full = run_batches(sims, combiner, [np.arange(n)], eq, DEFAULT_KS, s.ties)
    small = run_batches(sims, combiner, small_batch_indices(n, s.batch_size, s.seed), eq, DEFAULT_KS, s.ties)
    for prefix, result, keep in (("full_", full, None), ("small_", small, ("R1", "R5", "R10", "MedR"))):
        for direction, values in result.metrics.items():
            out.update({f"{prefix}{direction}_{k}": v for k, v in values.items() if keep is None or k in keep})
    credits["full_t2m_R1"] = full.credit(0)
    if view_eq is not None:
        view = run_batches(sims, combiner, official_idx, view_eq, OFFICIAL_KS, s.ties)
        _with_wr(view)
        out.update(eq_recall_at_1=view.metrics["t2m"]["R1"], eq_weighted_recall=view.metrics["t2m"]["WR"])
        credits["eq_recall_at_1"] = view.credit(0)
    if intervals:
        out.update(interval_metrics(credits, seed=s.seed))
    return ProtocolResult(out, credits)


def interval_metrics(credits: dict[str, QueryCredit], seed: int = 0) -> dict[str, float]:
    """{"<key>_lo": ..., "<key>_hi": ...}: 95 % bootstrap bounds over queries of each credited metric."""
    out = {}
    for key, credit in credits.items():
        ci = interval(credit, seed=seed)
        out[f"{key}_lo"], out[f"{key}_hi"] = ci.low, ci.high
    return out
