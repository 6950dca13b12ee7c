"""Combine the similarity matrices of several retrieval models into one score matrix (pure numpy).

Convention (as in core.metrics): every member matrix is (Q, C), row = query, column = candidate.
Text->motion uses ``sim``; motion->text uses ``sim.T`` (the motions become the queries), so a
combination is always taken per query row and must be recomputed for the other direction.

Methods (``combine(sims, method, weights)`` -> (Q, C) scores, higher = better):

* ``borda``: for each query every member ranks all C candidates by its similarity; a candidate
  earns ``C - rank`` points (rank 1-based: the top candidate gets C - 1, the last 0), times the
  member's weight; the ensemble ranks candidates by their total points.
  Ties inside one member's row: the tied candidates share the average of the ranks they occupy
  (fractional ranking), so each gets the mean of the points of those places; e.g. C = 4 and
  similarities [0.9, 0.5, 0.5, 0.1] give points [3, 1.5, 1.5, 0].  Ties in the *total* points
  are left to the metric's tie rule (core.evaluate uses "average").
* ``mean_sim``: each member's row is z-normalized over its candidates (mean 0, population std 1;
  a constant row becomes all 0: it carries no preference), then the members are averaged with
  their weights (a weighted mean, so the scale does not depend on the number of members).

Candidate sets: both methods depend on which candidates are ranked together (a Borda rank within
32 candidates differs from one within the whole split).  ``protocol_metrics`` therefore applies
the combination INSIDE each protocol's candidate set: for every official batch (30 x 32), every
TMR small batch and the full split it slices each member's sub-matrix and combines those, exactly
as a deployed ensemble would rank a given gallery.  For a single member with ``identity`` it
reproduces ``core.evaluate.evaluation_metrics`` (same index sets, same tie rule, same keys).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Sequence

import numpy as np

from .metrics import DEFAULT_KS, as_numpy, metrics_from_ranks, query_ranks, weighted_recall
from .metrics_protocols import OFFICIAL_KS, official_batches

METHODS = ("borda", "mean_sim")
Combiner = Callable[[Sequence[np.ndarray]], np.ndarray]


# ----------------------------------------------------------------------------- combinations

def _check_members(sims: Sequence, weights: Sequence[float] | None) -> tuple[list[np.ndarray], np.ndarray]:
    mats = [as_numpy(s) for s in sims]
    if not mats:
        raise ValueError("an ensemble needs at least one member similarity matrix, got none.")
    shape = mats[0].shape
    if len(shape) != 2 or any(m.shape != shape for m in mats):
        raise ValueError(f"member similarity matrices must all be 2-D of one shape (Q, C), "
                         f"got {[m.shape for m in mats]}.")
    for k, m in enumerate(mats):
        if not np.isfinite(m).all():
            raise ValueError(f"member {k}'s similarity matrix has non-finite entries (NaN/inf): "
                             "that model diverged; leave it out of the ensemble.")
    w = np.ones(len(mats)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(mats),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights {list(np.atleast_1d(w))} are invalid: expected {len(mats)} finite "
                         "numbers >= 0 (one per member) with a positive sum.")
    return mats, w


def borda_points(sim) -> np.ndarray:
    """(Q, C) similarities -> (Q, C) Borda points per row: C - rank, tied candidates share the mean.

    With ``lo`` = #candidates strictly below and ``hi`` = #candidates at or below a value, the tied
    group occupies descending ranks C-hi+1 .. C-lo, whose mean points are (lo + hi - 1) / 2.
    """
    sim = as_numpy(sim)
    q, c = sim.shape
    order = np.argsort(sim, axis=1, kind="stable")             # ascending, (Q, C)
    ordered = np.take_along_axis(sim, order, axis=1)
    position = np.broadcast_to(np.arange(c), (q, c))
    differs = ordered[:, 1:] != ordered[:, :-1]                 # (Q, C-1) a new value starts at j+1
    starts = np.concatenate([np.ones((q, 1), bool), differs], axis=1)
    ends = np.concatenate([differs, np.ones((q, 1), bool)], axis=1)
    lo = np.maximum.accumulate(np.where(starts, position, 0), axis=1)                 # first slot of the group
    hi = np.minimum.accumulate(np.where(ends, position + 1, c)[:, ::-1], axis=1)[:, ::-1]  # one past its last
    points = np.empty((q, c), dtype=np.float64)
    np.put_along_axis(points, order, (lo + hi - 1) / 2.0, axis=1)
    return points


def borda_scores(sims: Sequence, weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted sum of the members' Borda points, (Q, C)."""
    mats, w = _check_members(sims, weights)
    return sum(wk * borda_points(m) for wk, m in zip(w, mats))


def zscore_rows(sim) -> np.ndarray:
    """(Q, C) -> each row minus its mean, divided by its population std (a constant row -> zeros)."""
    sim = as_numpy(sim)
    centred = sim - sim.mean(axis=1, keepdims=True)
    std = sim.std(axis=1, keepdims=True)
    return np.divide(centred, std, out=np.zeros_like(centred), where=std > 1e-12)


def mean_similarity_scores(sims: Sequence, weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of the members' per-row z-normalized similarities, (Q, C)."""
    mats, w = _check_members(sims, weights)
    return sum(wk * zscore_rows(m) for wk, m in zip(w, mats)) / w.sum()


def identity(sims: Sequence) -> np.ndarray:
    """The combiner of a single model: its own similarities (members are scored through it)."""
    if len(sims) != 1:
        raise ValueError(f"identity combines exactly one member, got {len(sims)}.")
    return as_numpy(sims[0])


def make_combiner(method: str, weights: Sequence[float] | None = None) -> Combiner:
    """``sims -> scores`` for a method name in METHODS (weights bound; None = equal)."""
    if method == "borda":
        return partial(borda_scores, weights=weights)
    if method == "mean_sim":
        return partial(mean_similarity_scores, weights=weights)
    raise ValueError(f"ensemble method {method!r} is unknown: expected one of {METHODS}.")


def combine(sims: Sequence, method: str = "borda", weights: Sequence[float] | None = None) -> np.ndarray:
    return make_combiner(method, weights)(sims)


# ----------------------------------------------------------------------------- protocols

def small_batch_indices(n: int, batch_size: int = 32, seed: int = 0) -> list[np.ndarray]:
    """The index sets of core.metrics_protocols.small_batches (TMR): one seeded permutation cut into
    consecutive batches, the short last one dropped; one batch of all N if N < batch_size."""
    perm = np.random.default_rng(seed).permutation(n)
    if n < batch_size:
        return [perm]
    return [perm[s:s + batch_size] for s in range(0, n - batch_size + 1, batch_size)]


def _batch_metrics(sims: list[np.ndarray], combiner: Combiner, idx: np.ndarray, eq: np.ndarray | None,
                   ks, ties: str) -> dict[str, dict]:
    subs = [s[np.ix_(idx, idx)] for s in sims]                  # each (B, B)
    sub_eq = None if eq is None else eq[np.ix_(idx, idx)]
    t2m = combiner(subs)                                         # rows = texts
    m2t = combiner([s.T for s in subs])                          # rows = motions, ranked afresh
    return {"t2m": metrics_from_ranks(query_ranks(t2m, sub_eq, ties), ks),
            "m2t": metrics_from_ranks(query_ranks(m2t, None if sub_eq is None else sub_eq.T, ties), ks)}


def _averaged(sims, combiner, batches, eq, ks, ties) -> dict[str, dict]:
    per_batch = [_batch_metrics(sims, combiner, idx, eq, ks, ties) for idx in batches]
    return {d: {k: float(np.mean([b[d][k] for b in per_batch])) for k in per_batch[0][d]} for d in ("t2m", "m2t")}


def official_metrics(sims: Sequence, combiner: Combiner, n_batches: int = 30, batch_size: int = 32,
                     seed: int = 0, equivalence=None, ties: str = "average") -> dict[str, dict]:
    """The official protocol (30 x 32) of the combined scores: {"t2m": {R1..R10, MedR, WR}, "m2t": ...}."""
    sims = [as_numpy(s) for s in sims]
    eq = None if equivalence is None else np.asarray(equivalence, dtype=bool)
    out = _averaged(sims, combiner, official_batches(len(sims[0]), n_batches, batch_size, seed), eq,
                    OFFICIAL_KS, ties)
    for direction in out.values():
        direction["WR"] = weighted_recall(direction, max_k=10)
    return out


def protocol_metrics(sims: Sequence, combiner: Combiner = identity, *, n_batches: int = 30,
                     batch_size: int = 32, seed: int = 0, equivalence=None, eq_view=None,
                     ties: str = "average") -> dict[str, float]:
    """Every retrieval metric of core.evaluate.evaluation_metrics for the combined scores of ``sims``
    (each (N, N), row i = text i, correct = motion i), with the combination done per candidate set.

    ``equivalence``: counts as correct in the primary metrics (RuntimeConfig.eval_equivalence);
    ``eq_view``: an extra equivalence-aware official view (eq_recall_at_1, eq_weighted_recall).
    """
    sims = [as_numpy(s) for s in sims]
    n = len(sims[0])
    if n == 0 or any(s.shape != (n, n) for s in sims):
        raise ValueError(f"protocol_metrics needs square (N, N) member matrices, got {[s.shape for s in sims]}.")
    eq = None if equivalence is None else np.asarray(equivalence, dtype=bool)
    official = official_metrics(sims, combiner, n_batches, batch_size, seed, eq, ties)
    t2m, m2t = official["t2m"], official["m2t"]
    out = {f"recall_at_{k}": t2m[f"R{k}"] for k in (1, 2, 3, 5, 10)}
    out.update(weighted_recall=t2m["WR"], medr=t2m["MedR"], m2t_recall_at_1=m2t["R1"],
               m2t_recall_at_5=m2t["R5"], m2t_weighted_recall=m2t["WR"])
    full = _averaged(sims, combiner, [np.arange(n)], eq, DEFAULT_KS, ties)
    small = _averaged(sims, combiner, small_batch_indices(n, batch_size, seed), eq, DEFAULT_KS, ties)
    for prefix, nested, keep in (("full_", full, None), ("small_", small, ("R1", "R5", "R10", "MedR"))):
        for direction, values in nested.items():
            out.update({f"{prefix}{direction}_{k}": float(v) for k, v in values.items() if keep is None or k in keep})
    if eq_view is not None:
        view = official_metrics(sims, combiner, n_batches, batch_size, seed, eq_view, ties)["t2m"]
        out.update(eq_recall_at_1=view["R1"], eq_weighted_recall=view["WR"])
    return out


def top_candidates(scores, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(Q, C) scores -> (Q, k) candidate indices best first (ties: lower column first) and their scores."""
    scores = as_numpy(scores)
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


# ----------------------------------------------------------------------------- selection

@dataclass
class GreedySelection:
    selected: list[int]                         # member indices in the order they were added
    score: tuple[float, ...]                    # the score of the final selection
    trace: list[dict] = field(default_factory=list)  # one entry per step: members, score, added


def greedy_forward_selection(n_members: int, score: Callable[[tuple[int, ...]], Sequence[float]],
                             min_gain: float = 1e-9) -> GreedySelection:
    """Forward selection: start from the best single member, then repeatedly add the member whose
    addition gives the best score, as long as it raises the PRIMARY score (score[0], e.g. val R@1)
    by more than ``min_gain``; stop when no remaining member does.

    ``score(subset)`` returns a tuple compared lexicographically (e.g. (R@1, weighted recall)):
    the later entries only choose between candidates, they never justify adding one.  Exact ties
    go to the lower member index (members come ranked, so the better-ranked trial wins).
    """
    if n_members < 1:
        raise ValueError("greedy selection needs at least one member.")

    def best_of(options: list[tuple[int, ...]]) -> tuple[tuple[int, ...], tuple[float, ...]]:
        scored = [(tuple(float(x) for x in score(o)), o) for o in options]
        top = max(s for s, _ in scored)
        return next((o, s) for s, o in scored if s == top)  # first = lowest index among equals

    selected, current = best_of([(i,) for i in range(n_members)])
    trace = [{"members": list(selected), "score": list(current), "added": selected[0]}]
    while len(selected) < n_members:
        rest = [i for i in range(n_members) if i not in selected]
        candidate, cand_score = best_of([selected + (i,) for i in rest])
        trace.append({"members": list(candidate), "score": list(cand_score), "added": candidate[-1],
                      "accepted": cand_score[0] > current[0] + min_gain})
        if not trace[-1]["accepted"]:
            break
        selected, current = candidate, cand_score
    return GreedySelection(list(selected), current, trace)
