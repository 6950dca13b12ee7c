"""Combine the similarity matrices of several retrieval models into one score matrix (pure numpy).

Convention (as in core.metrics): every member matrix is (Q, C), row = query, column = candidate.
Text->motion uses ``sim``; motion->text uses ``sim.T`` (the motions become the queries), so a
combination is always taken per query row and must be recomputed for the other direction.

Methods (``make_combiner(method, weights)`` -> ``sims -> (Q, C) scores``, higher = better); every
member can carry a weight (e.g. ``val_weights``: proportional to its validation R@1):

* ``borda``: each member ranks the C candidates of a row; a candidate earns ``C - rank`` points
  (rank 1-based; tied candidates share the mean of the places they occupy), times the member's
  weight.  Totals are integers (halves) and tie constantly, so ties between totals are broken by
  the members' mean z-scored similarity (``mean_sim``): the added tie-breaker is smaller than the
  smallest gap between two distinct totals of the row, so it never reorders them, and only
  candidates equal on BOTH remain tied.
* ``rrf``: reciprocal rank fusion, ``sum_m w_m / (k + rank_m)`` with k = 60 (Cormack et al. 2009),
  the same similarity tie-break.
* ``mean_sim``: each member's row is z-normalized over its candidates (mean 0, population std 1;
  a constant row becomes all 0: it carries no preference), then averaged with the weights.

Candidate sets: every method depends on which candidates are ranked together, so evaluation applies
the combiner inside each protocol's candidate set (``core.protocols``, the combiner hook).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Sequence

import numpy as np

from .metrics import as_numpy
from .protocols import Combiner

METHODS = ("borda", "rrf", "mean_sim")
RRF_K = 60.0


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


def break_ties(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """(Q, C) scores ordered by ``primary`` first and ``secondary`` among equal primaries.

    Adds ``gap * points(secondary) / C`` to each row, where gap is the row's smallest difference between
    two distinct primary values and points are secondary's Borda points (0 .. C-1, ties shared): the
    addition stays below the gap, so the primary order is never changed (row-wise, any scale)."""
    primary = as_numpy(primary)
    c = primary.shape[1]
    steps = np.diff(np.sort(primary, axis=1), axis=1)           # (Q, C-1) >= 0
    steps = np.where(steps > 0, steps, np.inf)
    gap = steps.min(axis=1, initial=np.inf, keepdims=True)      # (Q, 1); inf when the row is constant
    gap = np.where(np.isfinite(gap), gap, 1.0)
    return primary + gap * borda_points(secondary) / c


def borda_scores(sims: Sequence, weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted sum of the members' Borda points, ties broken by mean similarity, (Q, C)."""
    mats, w = _check_members(sims, weights)
    totals = sum(wk * borda_points(m) for wk, m in zip(w, mats))
    return break_ties(totals, mean_similarity_scores(mats, w))


def rrf_scores(sims: Sequence, weights: Sequence[float] | None = None, k: float = RRF_K) -> np.ndarray:
    """Reciprocal rank fusion sum_m w_m / (k + rank_m) (fractional ranks for ties), tie-broken by mean similarity."""
    mats, w = _check_members(sims, weights)
    c = mats[0].shape[1]
    fused = sum(wk / (k + (c - borda_points(m))) for wk, m in zip(w, mats))   # rank = C - points, 1-based
    return break_ties(fused, mean_similarity_scores(mats, w))


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


COMBINERS = {"borda": borda_scores, "rrf": rrf_scores, "mean_sim": mean_similarity_scores}
assert tuple(COMBINERS) == METHODS


def make_combiner(method: str, weights: Sequence[float] | None = None) -> Combiner:
    """``sims -> scores`` for a method name in METHODS (weights bound; None = equal)."""
    if method not in COMBINERS:
        raise ValueError(f"ensemble method {method!r} is unknown: expected one of {METHODS}.")
    return partial(COMBINERS[method], weights=weights)


def combine(sims: Sequence, method: str = "borda", weights: Sequence[float] | None = None) -> np.ndarray:
    return make_combiner(method, weights)(sims)


MIN_VAL_WEIGHT = 0.01


def val_weights(val_scores: Sequence[float]) -> list[float]:
    """Weights proportional to each member's validation score (e.g. R@1 %), the best member = 1; at least
    MIN_VAL_WEIGHT, so a member alone (as greedy selection scores it) still has a valid weight."""
    scores = np.maximum(np.asarray(val_scores, dtype=np.float64), 0.0)
    if scores.size == 0 or scores.max() <= 0:
        return [1.0] * len(scores)
    return np.maximum(scores / scores.max(), MIN_VAL_WEIGHT).tolist()


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
