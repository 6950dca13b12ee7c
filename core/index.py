"""Top-k text->motion retrieval over a library of motion embeddings: FAISS's exact inner-product index when it is
installed, one matrix product and a partial sort in numpy otherwise (pure numpy / faiss; no torch).

    lib = LibrarySearch([x0, x1], backend="auto")          # member m: (N, D_m) float32 embeddings of one model
    top = lib.search([q0, q1], method="mean_sim", weights=[1, 1], k=10)   # q_m: (Q, D_m) that model's text queries
    top.ids (Q, k) library rows best first, top.scores (Q, k), top.exact

Scores are core.ensemble's (``method`` None: one model's cosine).  What is exact, i.e. the same top k and scores
as core.ensemble over the whole library (tests/core/test_index.py: to 1e-12):

* One model: cosine = inner product of unit rows.  FAISS's IndexFlatIP compares the query with every row, as the
  numpy path does; an approximate index (IVF, HNSW, PQ) would return other motions for some queries, so none is used.
* ``mean_sim`` of several models (core.ensemble.mean_similarity_scores: each model's row z-scored over the library,
  then a weighted mean).  The z-score is per query, yet the fusion is still ONE inner product: model m's row
  s_m = X_m q_m has mean mu_m . q_m and variance q_m^T C_m q_m over the library, mu_m (D_m,) and C_m (D_m, D_m)
  being the library's mean and covariance of X_m (``Moments``, computed once), so
      sum_m w_m (s_m - mean_m) / (W std_m) = [X_0 | X_1 | ...] . [a_0 q_0 | a_1 q_1 | ...] - const,  a_m = w_m / (W std_m),
  one search of the concatenated rows with a query scaled per query.
* Borda / RRF: a motion's points depend on its rank under every model among ALL motions; no vector index holds
  that.  By default (``candidates`` None) each model's cosines to the whole library are computed (float64, in
  blocks) and fused by core.ensemble.combine: exact, at O(N log N) per model and query (bench/retrieval_index.py,
  3 models: 9 ms at 10,000 motions, 1.5 s at 1,000,000).  With ``candidates`` C, each model's top C are retrieved
  from the index and their union is ranked by the fusion over that union only, and ``exact`` is False: a motion
  within model m's top C has the same rank under m among the union as among the library, but one outside it ranks
  higher among the union than in the library, so a motion one model ranks far down gains there and the top k can
  differ from the exact one (measured there: at 10,000 motions Borda's top-1 agrees for 35 % of queries at C=100,
  97 % at C=1,000).

Ties: equal scores keep the lower library row first, as core.ensemble.top_candidates (unless more than REFINE rows
tie at the k-th place of the float32 search, which then chooses among them its own way).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .ensemble import METHODS, combine
from .errors import ClearError
from .metrics import unit_rows

BACKENDS = ("auto", "faiss", "numpy")
QUERY_BLOCK = 64          # queries scored together by the numpy path: a (64, N) float32 block at a time
MOMENT_BLOCK = 65536      # library rows per float64 block when summing the moments


def faiss_module():
    """The faiss module, or None when it is not installed (it is optional: the ``index`` extra)."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def resolve_backend(backend: str) -> str:
    """'faiss' or 'numpy' for a BACKENDS name ('auto': FAISS when installed)."""
    if backend not in BACKENDS:
        raise ClearError(f"index backend {backend!r} is unknown.", fix=f"use one of {', '.join(BACKENDS)}.")
    if backend == "numpy":
        return "numpy"
    if faiss_module() is None:
        if backend == "faiss":
            raise ClearError("index backend 'faiss' was asked for, but FAISS is not installed.",
                             fix="pip install faiss-cpu (pip install -e .[index]), or use --backend numpy.")
        return "numpy"
    return "faiss"


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(Q, N) scores -> (Q, k) columns best first and their scores, ties to the lower column (as a stable sort),
    in O(N) per row: argpartition, then a full stable sort only for a row whose k-th value is shared beyond k."""
    q, n = scores.shape
    k = min(int(k), n)
    if k >= n:
        ids = np.argsort(-scores, axis=1, kind="stable")
        return ids, np.take_along_axis(scores, ids, axis=1)
    ids = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(scores, ids, axis=1).min(axis=1, keepdims=True)     # (Q, 1)
    for r in np.flatnonzero((scores >= kth).sum(axis=1) > k):   # ties straddle the cut: keep the lower columns
        ids[r] = np.argsort(-scores[r], kind="stable")[:k]
    values = np.take_along_axis(scores, ids, axis=1)
    order = np.lexsort((ids, -values), axis=-1)                 # by score, then column
    ids = np.take_along_axis(ids, order, axis=1)
    return ids, np.take_along_axis(values, order, axis=1)


def _unit64(rows: np.ndarray) -> np.ndarray:
    return unit_rows(np.asarray(rows, np.float64))


class FlatIP:
    """Exact inner-product top-k over (N, D) float32 rows (FAISS IndexFlatIP, or numpy)."""

    def __init__(self, vectors: np.ndarray, backend: str = "auto"):
        self.backend = resolve_backend(backend)
        self.n = len(vectors)
        self.vectors, self._faiss = None, None
        if self.backend == "faiss":
            self._faiss = faiss_module().IndexFlatIP(vectors.shape[1])
            self._faiss.add(np.ascontiguousarray(vectors, dtype=np.float32))   # FAISS keeps its own copy
        else:
            self.vectors = vectors                # (N, D) float32

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(Q, D) -> (Q, k) row ids best first, (Q, k) inner products."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(int(k), self.n)
        if self._faiss is not None:
            values, ids = self._faiss.search(queries, k)
            order = np.lexsort((ids, -values), axis=-1)             # FAISS's order among equal scores -> ours
            return np.take_along_axis(ids, order, axis=1), np.take_along_axis(values, order, axis=1)
        out = [top_k_rows(queries[s:s + QUERY_BLOCK] @ self.vectors.T, k) for s in range(0, len(queries), QUERY_BLOCK)]
        return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out])


@dataclass(frozen=True)
class Moments:
    """Mean (D,) and population covariance (D, D) of a library's UNIT rows, float64: the mean and std over the
    library of the cosines to any unit query q are mean . q and sqrt(q^T cov q)."""
    mean: np.ndarray
    cov: np.ndarray

    @classmethod
    def of(cls, vectors: np.ndarray) -> "Moments":
        """Of the rows of ``vectors`` (N, D) normalized in float64, in blocks: two passes, the second centred
        (E[xx^T] - mu mu^T would cancel digits away)."""
        n, d = vectors.shape
        blocks = range(0, n, MOMENT_BLOCK)
        mean = sum(_unit64(vectors[s:s + MOMENT_BLOCK]).sum(axis=0) for s in blocks) / n
        cov = np.zeros((d, d))
        for s in blocks:
            centred = _unit64(vectors[s:s + MOMENT_BLOCK]) - mean
            cov += centred.T @ centred
        return cls(mean, cov / n)

    def zscore_affine(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Q, D) unit queries -> (scale, shift), each (Q,): z = scale * (x . q) - shift for every library row x,
        as core.ensemble.zscore_rows (a query whose similarities are all equal gets scale 0: no preference)."""
        q = np.asarray(queries, np.float64)
        var = np.maximum(np.einsum("qd,de,qe->q", q, self.cov, q), 0.0)
        std = np.sqrt(var)
        scale = np.divide(1.0, std, out=np.zeros_like(std), where=std > 1e-12)
        return scale, (q @ self.mean) * scale


@dataclass
class Ranked:
    ids: np.ndarray          # (Q, k) int64 library rows, best first
    scores: np.ndarray       # (Q, k) float64, the fusion's scores (one model: cosine)
    exact: bool              # the top k of the fusion over the whole library (False: reranked candidates)
    pooled: int              # most motions one query's fusion ranked (N when exact)


class LibrarySearch:
    """The library embedded by M models (member m: (N, D_m) embeddings as the model gave them); see the module doc.

    The float32 unit rows of the index only choose candidates: the top k + REFINE of a search are scored again in
    float64 from the stored embeddings, as core.metrics.similarity_matrix scores them, so float32 rounding cannot
    reorder two motions whose scores differ by more than ~1e-15."""

    REFINE = 16

    def __init__(self, members: Sequence[np.ndarray], moments: Sequence[Moments] | None = None,
                 backend: str = "auto"):
        if not members or any(x.ndim != 2 or len(x) != len(members[0]) for x in members):
            raise ValueError(f"members must be (N, D_m) arrays of one N, got {[x.shape for x in members]}.")
        self.members = list(members)              # (N, D_m) float32 each; may be read-only memory maps
        self.backend = resolve_backend(backend)
        self._moments = list(moments) if moments is not None else [None] * len(members)
        self._flat: dict[tuple[int, ...], FlatIP] = {}

    @property
    def n(self) -> int:
        return len(self.members[0])

    def moments(self, m: int) -> Moments:
        """Of member m's unit rows (computed on first use when not given)."""
        if self._moments[m] is None:
            self._moments[m] = Moments.of(self.members[m])
        return self._moments[m]

    def unit32(self, m: int) -> np.ndarray:
        """(N, D_m) float32 unit rows of member m, normalized in float64 blocks."""
        x = self.members[m]
        return np.concatenate([_unit64(x[s:s + MOMENT_BLOCK]).astype(np.float32) for s in range(0, len(x), MOMENT_BLOCK)])

    def flat(self, use: tuple[int, ...]) -> FlatIP:
        """The exact index of one member's unit rows, or of several members' side by side (built on first use)."""
        if use not in self._flat:
            rows = self.unit32(use[0]) if len(use) == 1 else np.hstack([self.unit32(m) for m in use])
            self._flat[use] = FlatIP(rows, self.backend)
        return self._flat[use]

    def cosines(self, m: int, rows: np.ndarray | None, q: np.ndarray) -> np.ndarray:
        """float64 cosines of library rows ``rows`` (None: all, in blocks) of member m with ONE unit query (D_m,)."""
        x = self.members[m]
        if rows is not None:
            return _unit64(x[rows]) @ q
        return np.concatenate([_unit64(x[s:s + MOMENT_BLOCK]) @ q for s in range(0, len(x), MOMENT_BLOCK)])

    def search(self, queries: Sequence[np.ndarray], use: Sequence[int], method: str | None = None,
               weights: Sequence[float] | None = None, k: int = 10, candidates: int | None = None) -> Ranked:
        """Top k for Q queries; ``queries[i]`` (Q, D_use[i]) holds member ``use[i]``'s text embeddings.
        method None: one model's cosine; else a core.ensemble method with ``weights`` (None = equal);
        ``candidates``: Borda / RRF rerank each model's top C (None: the whole library, exact)."""
        use = tuple(int(m) for m in use)
        if method is not None and method not in METHODS:
            raise ValueError(f"method {method!r} is unknown: expected None or one of {METHODS}.")
        if method is None and len(use) != 1:
            raise ValueError(f"method None ranks by one model's cosine; {len(use)} models need a fusion method.")
        if len(queries) != len(use):
            raise ValueError(f"{len(queries)} query blocks for {len(use)} models.")
        w = np.ones(len(use)) if weights is None else np.asarray(weights, np.float64)
        q = [_unit64(x) for x in queries]                                    # (Q, D_m) float64 each
        k = min(int(k), self.n)
        if method in ("borda", "rrf"):
            return self._rerank(q, use, method, w, k, self.n if candidates is None else int(candidates))
        if method is None:
            a, shift = [np.ones(len(q[0]))], np.zeros(len(q[0]))
        else:   # mean_sim: z-scores from the library's moments (module docstring)
            affine = [self.moments(m).zscore_affine(x) for m, x in zip(use, q)]      # (scale (Q,), shift (Q,))
            a = [wm / w.sum() * scale for wm, (scale, _) in zip(w, affine)]         # (Q,) per member
            shift = sum(wm / w.sum() * sh for wm, (_, sh) in zip(w, affine))        # (Q,)
        scaled = np.hstack([x * am[:, None] for x, am in zip(q, a)]).astype(np.float32)   # (Q, sum D_m)
        chosen, _ = self.flat(use).search(scaled, min(k + self.REFINE, self.n))
        ids, scores = [], []
        for r in range(len(scaled)):   # float64 scores of the chosen rows, then the final order
            exact = sum(am[r] * self.cosines(m, chosen[r], x[r]) for m, x, am in zip(use, q, a)) - shift[r]
            top, values = top_k_rows(exact[None], k)
            ids.append(chosen[r][top[0]])
            scores.append(values[0])
        return Ranked(np.stack(ids), np.stack(scores), True, self.n)

    def _rerank(self, q: list[np.ndarray], use: tuple[int, ...], method: str, w: np.ndarray, k: int,
                candidates: int) -> Ranked:
        if candidates < 1:
            raise ValueError(f"candidates={candidates}: rank at least 1 motion per model.")
        exact = candidates >= self.n
        tops = None if exact else [self.flat((m,)).search(x.astype(np.float32), candidates)[0]
                                   for m, x in zip(use, q)]                  # (Q, C) each
        all_ids, all_scores, pooled = [], [], 0
        for r in range(len(q[0])):
            # Library rows ascending, so equal fused scores keep the lower row first, as over the whole library.
            pool = None if exact else np.unique(np.concatenate([t[r] for t in tops]))
            rows = [self.cosines(m, pool, x[r])[None] for m, x in zip(use, q)]     # (1, |pool|) each
            ids, values = top_k_rows(combine(rows, method, w), k)
            all_ids.append(ids[0] if exact else pool[ids[0]])
            all_scores.append(values[0])
            pooled = max(pooled, self.n if exact else len(pool))
        return Ranked(np.stack(all_ids), np.stack(all_scores), exact, pooled)
