"""Retrieval metrics from a similarity matrix, plus embedding diagnostics.

Convention: ``sim`` is (N, N), row i = text query i, column j = motion j, and text i's correct
motion is motion i.  Motion->text retrieval uses ``sim.T``.  Inputs may be numpy or torch.

Rank of a query = rank of its best-scoring correct candidate (1-based).  Ties (``ties=``):

* ``"optimistic"`` (default): rank = 1 + #(candidates with strictly greater similarity than
  the best correct one).  A tie with an incorrect candidate does not hurt.
* ``"pessimistic"``: every incorrect candidate tied with the best correct one ranks before it.
* ``"average"``: the expected rank under a random order of the tied group; with m incorrect and
  k correct candidates tied, rank = 1 + #(greater) + m / (k + 1) (TMR's "averaging" for k = 1).

Beware: under "optimistic" a collapsed model (all similarities equal) scores R@1 = 100 %.
Non-finite similarities raise ValueError (a diverged model must not look perfect).

With an ``equivalence`` matrix (N, N) bool, every motion j with equivalence[i, j] counts as a
correct answer for text i (the diagonal always does).

Protocols live in ``core/metrics_protocols.py`` (full split, TMR small batches, official 30 x 32).
"""
from __future__ import annotations

import numpy as np

TIE_RULES = ("optimistic", "pessimistic", "average")
DEFAULT_KS = (1, 2, 3, 5, 10)


def as_numpy(a) -> np.ndarray:
    """numpy array or torch tensor -> float64 numpy array (a copy for torch)."""
    if hasattr(a, "detach"):
        a = a.detach().to("cpu").double().numpy()
    return np.asarray(a, dtype=np.float64)


def _check_square(sim: np.ndarray, equivalence) -> np.ndarray:
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"similarity matrix must be square (text i <-> motion i), got shape {sim.shape}.")
    if not np.isfinite(sim).all():
        raise ValueError(f"similarity matrix has {int((~np.isfinite(sim)).sum())} non-finite entries "
                         f"(NaN/inf): the embeddings are broken, most likely the model diverged.")
    correct = np.eye(len(sim), dtype=bool)
    if equivalence is not None:
        eq = np.asarray(equivalence.detach().cpu() if hasattr(equivalence, "detach") else equivalence, dtype=bool)
        if eq.shape != sim.shape:
            raise ValueError(f"equivalence matrix has shape {eq.shape}, the similarity matrix {sim.shape}.")
        correct |= eq
    return correct


def query_ranks(sim, equivalence=None, ties: str = "optimistic") -> np.ndarray:
    """(N,) float ranks (1-based) of each row query's best correct candidate; see module doc."""
    sim = as_numpy(sim)
    correct = _check_square(sim, equivalence)
    if ties not in TIE_RULES:
        raise ValueError(f"ties={ties!r} is invalid: expected one of {TIE_RULES}.")
    best = np.where(correct, sim, -np.inf).max(axis=1, keepdims=True)  # (N, 1) best correct score
    greater = (sim > best).sum(axis=1)  # all of these are incorrect
    rank = 1.0 + greater
    if ties != "optimistic":
        tied_wrong = ((sim == best) & ~correct).sum(axis=1)
        if ties == "pessimistic":
            rank = rank + tied_wrong
        else:
            tied_right = ((sim == best) & correct).sum(axis=1)
            rank = rank + tied_wrong / (tied_right + 1.0)
    return rank


def metrics_from_ranks(ranks: np.ndarray, ks=DEFAULT_KS) -> dict[str, float]:
    """{"R<k>": percent of queries with rank <= k, ..., "MedR": median rank}."""
    out = {f"R{k}": float(100.0 * np.mean(ranks <= k)) for k in ks}
    out["MedR"] = float(np.median(ranks))
    return out


def retrieval_metrics(sim, ks=DEFAULT_KS, equivalence=None, ties: str = "optimistic") -> dict[str, float]:
    """Text->motion metrics of ``sim`` (rows are queries); pass ``sim.T`` for motion->text."""
    return metrics_from_ranks(query_ranks(sim, equivalence, ties), ks)


def both_directions(sim, ks=DEFAULT_KS, equivalence=None, ties: str = "optimistic") -> dict[str, dict]:
    """{"t2m": metrics of sim, "m2t": metrics of sim.T}."""
    sim = as_numpy(sim)
    eq_t = None if equivalence is None else np.asarray(equivalence, dtype=bool).T
    return {"t2m": retrieval_metrics(sim, ks, equivalence, ties),
            "m2t": retrieval_metrics(sim.T, ks, eq_t, ties)}


def weighted_recall(recalls: dict[str, float], max_k: int = 10) -> float:
    """WR = sum_{K=1..max_k} R@K / K  /  sum_{K=1..max_k} 1 / K  (needs R1..R<max_k>, percent)."""
    ks = np.arange(1, max_k + 1)
    return float(sum(recalls[f"R{k}"] / k for k in ks) / np.sum(1.0 / ks))


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


def flatten_metrics(nested: dict, prefix: str = "") -> dict[str, float]:
    """{"t2m": {"R1": x}} -> {"<prefix>t2m/R1": x} for logging."""
    flat: dict[str, float] = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# ----------------------------------------------------------------------------- diagnostics

def similarity_matrix(text_emb, motion_emb) -> np.ndarray:
    """(N, d), (M, d) -> (N, M) cosine similarities (rows are re-normalized here)."""
    t, m = _unit(as_numpy(text_emb)), _unit(as_numpy(motion_emb))
    return t @ m.T


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def mean_diag_sim(text_emb, motion_emb) -> float:
    """Mean cosine of the correct pairs (text i, motion i)."""
    t, m = _unit(as_numpy(text_emb)), _unit(as_numpy(motion_emb))
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


# The protocols are re-exported so callers can import everything metric-related from here;
# imported last because metrics_protocols builds on the functions above.
from .metrics_protocols import full_split, official_batches, official_protocol, small_batches  # noqa: E402,F401
