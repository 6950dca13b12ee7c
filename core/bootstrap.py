"""Confidence intervals for retrieval metrics: percentile bootstrap over queries (the unit of sampling).

A metric is a ratio of per-query credit: query i collected ``sums[i]`` credit (e.g. R@1 hits, possibly
fractional under ties) over ``counts[i]`` appearances (the official 30 x 32 protocol draws a query into
several batches when the split is smaller than 960; the full split counts each query once), and

    value = 100 * sum_i sums[i] / sum_i counts[i].

One bootstrap replicate draws N query ids with replacement and recomputes that ratio, so a query's
appearances move together (a cluster bootstrap: the queries, not the batches, are the sample).

* ``interval(credit)``: CI of one model's metric.
* ``paired_difference(a, b)``: CI of a - b for two models scored on the SAME queries and batches
  (equal counts), resampling the same query ids for both: the per-query correlation of the two models
  cancels, which is what makes a small gain decidable at all.
* ``mean_credit(credits)``: the per-query average over several runs (e.g. seeds of one config) of
  equal counts: its interval is the CI of the seed-mean over queries (seed spread is reported apart).

    from core.bootstrap import QueryCredit, interval, paired_difference
    interval(QueryCredit(hits, np.ones(len(hits))))          # Interval(value, low, high)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class QueryCredit:
    """Per-query credit of one metric under one protocol; ``value`` is the metric in percent."""
    sums: np.ndarray      # (N,) credit query i collected over its appearances
    counts: np.ndarray    # (N,) how often query i was scored (0 = never drawn)

    def __post_init__(self):
        sums, counts = np.asarray(self.sums, np.float64), np.asarray(self.counts, np.float64)
        if sums.ndim != 1 or sums.shape != counts.shape or counts.sum() <= 0:
            raise ValueError(f"QueryCredit needs sums and counts of one shape (N,) with a positive total count, "
                             f"got {sums.shape} and {counts.shape} (total {counts.sum()}).")
        object.__setattr__(self, "sums", sums)
        object.__setattr__(self, "counts", counts)

    @property
    def value(self) -> float:
        return float(100.0 * self.sums.sum() / self.counts.sum())

    def __len__(self) -> int:
        return len(self.sums)


@dataclass(frozen=True)
class Interval:
    value: float          # the point estimate on the real data
    low: float            # percentile bootstrap bounds at ``level``
    high: float
    level: float = LEVEL

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"

    def signed(self) -> str:
        return f"{self.value:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


def resample_indices(n: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples, n) query ids drawn with replacement (seeded: the same seed pairs two analyses)."""
    return np.random.default_rng([seed, n]).integers(0, n, size=(resamples, n))


def _ratio_interval(sums: np.ndarray, counts: np.ndarray, value: float, resamples: int, level: float,
                    seed: int) -> Interval:
    if not 0 < level < 1:
        raise ValueError(f"level={level} must be in (0, 1).")
    idx = resample_indices(len(sums), resamples, seed)
    drawn = counts[idx].sum(axis=1)                               # (B,) appearances in each replicate
    stats = 100.0 * sums[idx].sum(axis=1) / np.maximum(drawn, 1e-12)
    stats = stats[drawn > 0]                                      # a replicate of never-drawn queries says nothing
    if len(stats) == 0:
        return Interval(value, value, value, level)
    low, high = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return Interval(value, float(low), float(high), level)


def interval(credit: QueryCredit, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> Interval:
    """Percentile-bootstrap CI of ``credit.value`` over queries."""
    return _ratio_interval(credit.sums, credit.counts, credit.value, resamples, level, seed)


def _check_paired(credits: Sequence[QueryCredit]) -> None:
    ref = credits[0]
    for other in credits[1:]:
        if len(other) != len(ref) or not np.array_equal(other.counts, ref.counts):
            raise ValueError("paired bootstrap needs the same queries in the same protocol batches "
                             f"(equal per-query counts): got N = {len(ref)} and {len(other)}"
                             + ("" if len(other) != len(ref) else ", different batch draws (evaluation seed or "
                                                                  "batch settings differ)") + ".")


def paired_difference(a: QueryCredit, b: QueryCredit, resamples: int = RESAMPLES, level: float = LEVEL,
                      seed: int = 0) -> Interval:
    """CI of a.value - b.value, both resampled with the same query ids."""
    _check_paired([a, b])
    return _ratio_interval(a.sums - b.sums, a.counts, a.value - b.value, resamples, level, seed)


def mean_credit(credits: Sequence[QueryCredit]) -> QueryCredit:
    """Per-query mean of several runs' credit on the same queries and batches (e.g. the seeds of a config)."""
    if not credits:
        raise ValueError("mean_credit needs at least one QueryCredit.")
    _check_paired(list(credits))
    return QueryCredit(np.mean([c.sums for c in credits], axis=0), credits[0].counts)


CREDIT_PREFIX, COUNT_PREFIX = "credit__", "count__"


def credits_to_arrays(credits: dict[str, QueryCredit]) -> dict[str, np.ndarray]:
    """Flat arrays for an .npz next to the embeddings (``credits_from_arrays`` reads them back)."""
    out = {}
    for key, credit in credits.items():
        out[CREDIT_PREFIX + key], out[COUNT_PREFIX + key] = credit.sums, credit.counts
    return out


def credits_from_arrays(arrays) -> dict[str, QueryCredit]:
    """Inverse of ``credits_to_arrays`` over any mapping of arrays (an open np.load result works)."""
    keys = [k[len(CREDIT_PREFIX):] for k in arrays if k.startswith(CREDIT_PREFIX)]
    return {k: QueryCredit(np.asarray(arrays[CREDIT_PREFIX + k]), np.asarray(arrays[COUNT_PREFIX + k]))
            for k in keys if COUNT_PREFIX + k in arrays}
