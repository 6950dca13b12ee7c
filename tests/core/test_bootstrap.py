"""Bootstrap CIs against brute force: the exact bootstrap distribution of a tiny sample (every one of the
N^N resamples enumerated), a loop over the same resampled ids, and pairing."""
import itertools

import numpy as np
import pytest

from core.bootstrap import (Interval, QueryCredit, credits_from_arrays, credits_to_arrays, interval, mean_credit,
                            paired_difference, resample_indices)


def exact_quantiles(sums, counts, level=0.95):
    """Every resample of n ids with replacement, equally likely: the exact bootstrap distribution."""
    n = len(sums)
    stats = []
    for ids in itertools.product(range(n), repeat=n):
        c = sum(counts[i] for i in ids)
        if c > 0:
            stats.append(100.0 * sum(sums[i] for i in ids) / c)
    return np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])


def test_matches_the_exact_bootstrap_distribution_of_a_tiny_sample():
    sums, counts = np.array([1.0, 0.0, 0.5, 2.0, 1.0]), np.array([1.0, 1.0, 1.0, 2.0, 2.0])
    want = exact_quantiles(sums, counts)
    got = interval(QueryCredit(sums, counts), resamples=40_000, seed=3)
    assert got.value == pytest.approx(100 * 4.5 / 7)
    assert got.low == pytest.approx(want[0], abs=2.0) and got.high == pytest.approx(want[1], abs=2.0)


def test_vectorized_equals_a_loop_over_the_same_resampled_ids():
    rng = np.random.default_rng(0)
    sums, counts = rng.random(40), rng.integers(1, 4, 40).astype(float)
    idx = resample_indices(40, 500, seed=11)
    loop = [100 * sum(sums[i] for i in row) / sum(counts[i] for i in row) for row in idx]
    got = interval(QueryCredit(sums, counts), resamples=500, seed=11)
    assert (got.low, got.high) == pytest.approx(tuple(np.quantile(loop, [0.025, 0.975])))


def test_half_width_follows_the_binomial_standard_error():
    hits = (np.random.default_rng(1).random(2000) < 0.6).astype(float)
    ci = interval(QueryCredit(hits, np.ones(2000)))
    se = 100 * np.sqrt(0.6 * 0.4 / 2000)
    assert ci.half_width == pytest.approx(1.96 * se, rel=0.15)
    assert ci.low < ci.value < ci.high and not Interval(1, -1, 2).excludes_zero()


def test_paired_difference_cancels_what_both_models_share():
    rng = np.random.default_rng(2)
    a = (rng.random(500) < 0.6).astype(float)
    b = a.copy()
    flip = rng.choice(500, 25, replace=False)          # b differs from a on 5 % of the queries
    b[flip] = 1 - b[flip]
    ones = np.ones(500)
    paired = paired_difference(QueryCredit(a, ones), QueryCredit(b, ones))
    unpaired = np.hypot(interval(QueryCredit(a, ones)).half_width, interval(QueryCredit(b, ones)).half_width)
    assert paired.value == pytest.approx(100 * (a.mean() - b.mean()))
    assert paired.half_width < unpaired / 2           # pairing is what makes small gains decidable
    assert str(paired).count("[") == 1 and paired.signed().startswith(("+", "-"))


def test_pairing_refuses_different_queries_or_batches():
    with pytest.raises(ValueError, match="same queries"):
        paired_difference(QueryCredit(np.ones(3), np.ones(3)), QueryCredit(np.ones(4), np.ones(4)))
    with pytest.raises(ValueError, match="batch draws"):
        paired_difference(QueryCredit(np.ones(3), np.ones(3)), QueryCredit(np.ones(3), np.array([1.0, 2, 1])))
    with pytest.raises(ValueError, match="positive total"):
        QueryCredit(np.zeros(3), np.zeros(3))


def test_mean_credit_and_round_trip_through_arrays():
    a, b = QueryCredit(np.array([1.0, 0, 1]), np.ones(3)), QueryCredit(np.array([0.0, 0, 1]), np.ones(3))
    m = mean_credit([a, b])
    assert m.value == pytest.approx((a.value + b.value) / 2)
    back = credits_from_arrays(credits_to_arrays({"recall_at_1": a, "full_t2m_R1": b}))
    assert set(back) == {"recall_at_1", "full_t2m_R1"} and back["recall_at_1"].value == a.value
