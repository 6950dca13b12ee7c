"""Retrieval metrics from a similarity matrix, plus embedding diagnostics.

Convention: ``sim`` is (N, N), row i = text query i, column j = motion j, and text i's correct
motion is motion i.  Motion->text retrieval uses ``sim.T``.  Inputs may be numpy or torch.
With an ``equivalence`` matrix (N, N) bool, every motion j with equivalence[i, j] counts as a
correct answer for text i (the diagonal always does).

A query is scored by its BEST correct candidate (score b).  With g = #incorrect candidates
scoring > b, t_w = #incorrect tied at b and t_r = #correct tied at b (>= 1), the tie rules are:

* ``"expected"`` (default): the expectation over a uniformly random order of the tied group.
  X = #incorrect ahead of the first correct in that order, so rank = 1 + g + X and
  R@k credit = P(g + X < k) = 1 - P(X >= k - g),  P(X >= x) = prod_{j<x} (t_w - j) / (t_w + t_r - j)
  (fractional credit); the reported rank is E[rank] = 1 + g + t_w / (t_r + 1).  A collapsed model
  (all similarities equal) scores exactly chance, and fused integer scores are not penalised.
* ``"tmr"``: TMR's published ``contrastive_metrics`` with ``break_ties="averaging"``: the 0-based
  position of the correct answer is the MEAN position of every candidate tied with it,
  col = g + (t_w + t_r - 1) / 2, a hit at k when col < k, MedR = median(col) + 1.
* ``"optimistic"``: rank = 1 + g (a collapsed model scores 100 %: never use it to compare models).
* ``"pessimistic"``: rank = 1 + g + t_w.

Non-finite similarities raise ValueError (a diverged model must not look perfect).
Protocols (full split, TMR small batches, the official 30 x 32) are in ``core/protocols.py``.
"""
from __future__ import annotations

import numpy as np

TIE_RULES = ("expected", "tmr", "optimistic", "pessimistic")
DEFAULT_KS = (1, 2, 3, 5, 10)
WR_MAX_K = 10


def as_numpy(a) -> np.ndarray:
    """numpy array or torch tensor -> float64 numpy array (a copy for torch)."""
    if hasattr(a, "detach"):
        a = a.detach().to("cpu").double().numpy()
    return np.asarray(a, dtype=np.float64)


def as_bool(a) -> np.ndarray | None:
    if a is None:
        return None
    return np.asarray(a.detach().cpu() if hasattr(a, "detach") else a, dtype=bool)


def _check_square(sim: np.ndarray, equivalence) -> np.ndarray:
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1] or len(sim) == 0:
        raise ValueError(f"similarity matrix must be square and non-empty (text i <-> motion i), got shape {sim.shape}.")
    if not np.isfinite(sim).all():
        raise ValueError(f"similarity matrix has {int((~np.isfinite(sim)).sum())} non-finite entries "
                         f"(NaN/inf): the embeddings are broken, most likely the model diverged.")
    correct = np.eye(len(sim), dtype=bool)
    if equivalence is not None:
        eq = as_bool(equivalence)
        if eq.shape != sim.shape:
            raise ValueError(f"equivalence matrix has shape {eq.shape}, the similarity matrix {sim.shape}.")
        correct |= eq
    return correct


def _check_ties(ties: str) -> None:
    if ties not in TIE_RULES:
        raise ValueError(f"ties={ties!r} is invalid: expected one of {TIE_RULES}.")


def _tie_counts(scores: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(g, t_w, t_r), each (Q,) int, of (Q, C) scores and a (Q, C) bool mask of correct candidates."""
    best = np.where(correct, scores, -np.inf).max(axis=1, keepdims=True)   # (Q, 1) best correct score
    at_best = scores == best
    return (scores > best).sum(axis=1), (at_best & ~correct).sum(axis=1), (at_best & correct).sum(axis=1)


def query_ranks(sim, equivalence=None, ties: str = "expected") -> np.ndarray:
    """(N,) float ranks (1-based) of each row query's best correct candidate; see the module doc."""
    sim = as_numpy(sim)
    return _ranks(_tie_counts(sim, _check_square(sim, equivalence)), ties)


def _ranks(counts: tuple[np.ndarray, np.ndarray, np.ndarray], ties: str) -> np.ndarray:
    _check_ties(ties)
    g, t_w, t_r = counts
    if ties == "optimistic":
        return 1.0 + g
    if ties == "pessimistic":
        return 1.0 + g + t_w
    if ties == "tmr":
        return 1.0 + g + (t_w + t_r - 1) / 2.0
    return 1.0 + g + t_w / (t_r + 1.0)


def _expected_hits(g: np.ndarray, t_w: np.ndarray, t_r: np.ndarray, ks) -> np.ndarray:
    """(N, len(ks)) P(g + X < k) with X the #incorrect ahead of the first correct in a random tie order."""
    out = np.empty((len(g), len(ks)))
    for col, k in enumerate(ks):
        need = k - g                                  # (N,) the correct one must come within this many
        p_miss = np.ones(len(g))                      # P(X >= need): the first `need` tied are all incorrect
        for j in range(int(max(need.max(), 0))):
            # j >= t_w: no incorrect one is left to be ahead, so the miss probability is 0.
            factor = np.clip((t_w - j) / np.maximum(t_w + t_r - j, 1), 0.0, 1.0)
            p_miss = np.where(j < need, p_miss * factor, p_miss)
        out[:, col] = np.where(need >= 1, 1.0 - p_miss, 0.0)
    return out


def query_hits(sim, equivalence=None, ties: str = "expected", ks=DEFAULT_KS) -> np.ndarray:
    """(N, len(ks)) credit in [0, 1] of each query at each k (fractional under ``expected``)."""
    sim = as_numpy(sim)
    return hits_and_ranks(sim, _check_square(sim, equivalence), ties, ks)[0]


def hits_and_ranks(scores: np.ndarray, correct: np.ndarray, ties: str = "expected",
                   ks=DEFAULT_KS) -> tuple[np.ndarray, np.ndarray]:
    """Credit (Q, len(ks)) and rank (Q,) of every row query of (Q, C) ``scores`` whose correct candidates are
    ``correct`` (Q, C) bool, at least one per row: what the protocols score their stacked batches with."""
    _check_ties(ties)
    counts = _tie_counts(scores, correct)
    ranks = _ranks(counts, ties)
    if ties == "expected":
        return _expected_hits(*counts, ks), ranks
    if ties == "tmr":    # TMR counts the 0-based averaged position: col = rank - 1 < k
        return (ranks[:, None] - 1.0 < np.asarray(ks)[None, :]).astype(np.float64), ranks
    return (ranks[:, None] <= np.asarray(ks)[None, :]).astype(np.float64), ranks


def weighted_recall_weights(max_k: int = WR_MAX_K) -> np.ndarray:
    """(max_k,) weights w_K = (1/K) / sum_{K'} 1/K': WR = sum_K w_K R@K."""
    inv = 1.0 / np.arange(1, max_k + 1)
    return inv / inv.sum()


def weighted_recall(recalls: dict[str, float], max_k: int = WR_MAX_K) -> float:
    """WR = sum_{K=1..max_k} R@K / K  /  sum_{K=1..max_k} 1 / K  (needs R1..R<max_k>, percent)."""
    return float(sum(w * recalls[f"R{k}"] for k, w in enumerate(weighted_recall_weights(max_k), start=1)))


def metrics_from(hits: np.ndarray, ranks: np.ndarray, ks=DEFAULT_KS) -> dict[str, float]:
    """{"R<k>": percent credit at k, ..., "MedR": median rank} from ``query_hits``/``query_ranks``."""
    out = {f"R{k}": float(100.0 * hits[:, c].mean()) for c, k in enumerate(ks)}
    out["MedR"] = float(np.median(ranks))
    return out


def retrieval_metrics(sim, ks=DEFAULT_KS, equivalence=None, ties: str = "expected") -> dict[str, float]:
    """Text->motion metrics of ``sim`` (rows are queries); pass ``sim.T`` for motion->text."""
    sim = as_numpy(sim)
    return metrics_from(*hits_and_ranks(sim, _check_square(sim, equivalence), ties, ks), ks)


def both_directions(sim, ks=DEFAULT_KS, equivalence=None, ties: str = "expected") -> dict[str, dict]:
    """{"t2m": metrics of sim, "m2t": metrics of sim.T}."""
    sim = as_numpy(sim)
    eq = as_bool(equivalence)
    return {"t2m": retrieval_metrics(sim, ks, eq, ties),
            "m2t": retrieval_metrics(sim.T, ks, None if eq is None else eq.T, ties)}


def _normalize_caption(text: str) -> str:
    return " ".join(text.lower().split())


def equivalence_matrix(captions: list[str], groups: list[str | None] | None = None) -> np.ndarray:
    """(N, N) bool: items i, j are interchangeable answers when their (first) captions are
    identical up to case and whitespace, or they share a non-None label group.  Diagonal True."""
    n = len(captions)
    if groups is not None and len(groups) != n:
        raise ValueError(f"equivalence_matrix: {n} captions but {len(groups)} groups.")
    ids: dict[str, int] = {}
    cap = np.array([ids.setdefault(_normalize_caption(c), len(ids)) for c in captions], dtype=np.int64)
    eq = cap[:, None] == cap[None, :]
    if groups is not None:
        gids: dict[str, int] = {}
        g = np.array([-1 if x is None else gids.setdefault(x, len(gids)) for x in groups], dtype=np.int64)
        eq |= (g[:, None] == g[None, :]) & (g[:, None] >= 0)
    np.fill_diagonal(eq, True)
    return eq


# ----------------------------------------------------------------------------- diagnostics

def similarity_matrix(text_emb, motion_emb) -> np.ndarray:
    """(N, d), (M, d) -> (N, M) cosine similarities (rows are re-normalized here)."""
    t, m = unit_rows(as_numpy(text_emb)), unit_rows(as_numpy(motion_emb))
    return t @ m.T


def unit_rows(x: np.ndarray) -> np.ndarray:
    """(N, d) -> each row divided by its L2 norm (a zero row stays zero): what every cosine here is taken of."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def mean_diag_sim(text_emb, motion_emb) -> float:
    """Mean cosine of the correct pairs (text i, motion i)."""
    t, m = unit_rows(as_numpy(text_emb)), unit_rows(as_numpy(motion_emb))
    return float(np.mean(np.sum(t * m, axis=1)))


def alignment_gap(text_emb, motion_emb) -> float:
    """Mean cosine of correct pairs minus mean cosine of incorrect pairs (i != j); needs N >= 2."""
    sim = similarity_matrix(text_emb, motion_emb)
    n = len(sim)
    if n < 2 or sim.shape[1] != n:
        raise ValueError(f"alignment_gap needs N >= 2 paired embeddings, got {sim.shape}.")
    diag = np.trace(sim)
    return float(diag / n - (sim.sum() - diag) / (n * (n - 1)))


def centroid_distance(text_emb, motion_emb) -> float:
    """||mean(text) - mean(motion)||: the modality gap between the two embedding clouds."""
    return float(np.linalg.norm(as_numpy(text_emb).mean(0) - as_numpy(motion_emb).mean(0)))
