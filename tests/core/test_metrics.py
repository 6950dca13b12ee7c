"""Metrics against brute-force references: explicit sorting per query, loops, permutations for ties."""
import itertools
import math

import numpy as np
import pytest
import torch

from core.metrics import (alignment_gap, both_directions, centroid_distance, equivalence_matrix,
                          flatten_metrics, full_split, mean_diag_sim, official_batches, official_protocol,
                          query_ranks, retrieval_metrics, small_batches, weighted_recall)


# ----------------------------------------------------------------------------- brute force

def brute_rank(row, correct, ties):
    """Rank (1-based) of the first correct candidate in an explicit sort of one query's row."""
    n = len(row)
    if ties in ("optimistic", "pessimistic"):
        first_correct = ties == "optimistic"
        order = sorted(range(n), key=lambda j: (-row[j], (0 if correct[j] else 1) if first_correct
                                                 else (1 if correct[j] else 0)))
        return float(next(pos for pos, j in enumerate(order) if correct[j]) + 1)
    # average: expectation over every ordering of each group of tied candidates
    values = sorted(set(row), reverse=True)
    position = 0
    for v in values:
        group = [j for j in range(n) if row[j] == v]
        if any(correct[j] for j in group):
            firsts = [next(p for p, j in enumerate(perm) if correct[j]) for perm in itertools.permutations(group)]
            return position + 1 + sum(firsts) / len(firsts)
        position += len(group)
    raise AssertionError("no correct candidate")


def brute_metrics(sim, eq, ties="optimistic", ks=(1, 2, 3, 5, 10)):
    n = len(sim)
    ranks = []
    for i in range(n):
        correct = [j == i or (eq is not None and bool(eq[i][j])) for j in range(n)]
        ranks.append(brute_rank(list(sim[i]), correct, ties))
    out = {f"R{k}": 100.0 * sum(1 for r in ranks if r <= k) / n for k in ks}
    s = sorted(ranks)
    out["MedR"] = s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
    return out


def assert_close_dicts(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-9), k


# ----------------------------------------------------------------------------- ranks / metrics

@pytest.mark.parametrize("ties", ["optimistic", "pessimistic", "average"])
def test_random_matrix_both_directions(ties):
    sim = np.random.default_rng(1).normal(size=(37, 37))
    out = both_directions(sim, ties=ties)
    assert_close_dicts(out["t2m"], brute_metrics(sim, None, ties))
    assert_close_dicts(out["m2t"], brute_metrics(sim.T, None, ties))


@pytest.mark.parametrize("ties", ["optimistic", "pessimistic", "average"])
@pytest.mark.parametrize("with_eq", [False, True])
def test_deliberate_ties(ties, with_eq):
    rng = np.random.default_rng(2)
    sim = rng.integers(0, 3, size=(12, 12)).astype(float)  # 3 levels: ties everywhere
    eq = None
    if with_eq:
        eq = equivalence_matrix([f"cap{i % 4}" for i in range(12)], [None] * 12)
    ranks = query_ranks(sim, eq, ties)
    for i in range(12):
        correct = [j == i or (eq is not None and eq[i, j]) for j in range(12)]
        assert ranks[i] == pytest.approx(brute_rank(list(sim[i]), correct, ties)), i
    assert_close_dicts(retrieval_metrics(sim.T, equivalence=None if eq is None else eq.T, ties=ties),
                       brute_metrics(sim.T, None if eq is None else eq.T, ties))


def test_tie_rules_hand_case():
    # query 0: correct score 1.0 tied with two wrong candidates, one wrong candidate above
    sim = np.array([[1.0, 1.0, 2.0, 1.0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    assert query_ranks(sim, ties="optimistic")[0] == 2.0
    assert query_ranks(sim, ties="pessimistic")[0] == 4.0
    assert query_ranks(sim, ties="average")[0] == pytest.approx(2.0 + 2 / 2)


def test_equivalence_counts_best_correct_candidate():
    sim = np.array([[0.1, 0.9, 0.5], [0.2, 0.3, 0.8], [0.0, 0.4, 0.6]])
    eq = np.array([[True, True, False], [True, True, False], [False, False, True]])
    # query 0: motion 1 (0.9) is equivalent -> rank 1; query 1: correct {0, 1}, best 0.3 < 0.8 -> rank 2
    np.testing.assert_array_equal(query_ranks(sim, eq), [1.0, 2.0, 1.0])
    np.testing.assert_array_equal(query_ranks(sim), [3.0, 2.0, 1.0])


def test_torch_input_and_nonfinite_error():
    sim = torch.randn(8, 8)
    assert retrieval_metrics(sim) == retrieval_metrics(sim.numpy())
    bad = sim.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        retrieval_metrics(bad)
    with pytest.raises(ValueError, match="square"):
        retrieval_metrics(np.zeros((3, 4)))


def test_equivalence_matrix():
    caps = ["A man walks.", "a  man walks.", "jump", "wave", "run"]
    groups = [None, None, "g1", "g1", None]
    eq = equivalence_matrix(caps, groups)
    expected = np.eye(5, dtype=bool)
    expected[0, 1] = expected[1, 0] = True  # same caption up to case/whitespace
    expected[2, 3] = expected[3, 2] = True  # same group
    np.testing.assert_array_equal(eq, expected)


# ----------------------------------------------------------------------------- protocols

def test_full_split_is_whole_matrix():
    sim = np.random.default_rng(3).normal(size=(20, 20))
    out = full_split(sim)
    assert_close_dicts(out["t2m"], brute_metrics(sim, None))
    assert_close_dicts(out["m2t"], brute_metrics(sim.T, None))
    assert flatten_metrics(out, "val/")["val/m2t/R1"] == out["m2t"]["R1"]


def _average_brute(sim, eq, batches, ks, ties="optimistic"):
    per = {"t2m": [], "m2t": []}
    for idx in batches:
        sub = sim[np.ix_(idx, idx)]
        sub_eq = None if eq is None else eq[np.ix_(idx, idx)]
        per["t2m"].append(brute_metrics(sub, sub_eq, ties, ks))
        per["m2t"].append(brute_metrics(sub.T, None if sub_eq is None else sub_eq.T, ties, ks))
    return {d: {k: sum(m[k] for m in ms) / len(ms) for k in ms[0]} for d, ms in per.items()}


def test_small_batches_reference():
    rng = np.random.default_rng(4)
    sim = rng.normal(size=(70, 70))
    eq = equivalence_matrix([f"c{i % 30}" for i in range(70)], None)
    perm = list(np.random.default_rng(7).permutation(70))
    batches = [perm[0:32], perm[32:64]]  # the last 6 are dropped
    out = small_batches(sim, batch_size=32, seed=7, equivalence=eq)
    ref = _average_brute(sim, eq, batches, (1, 2, 3, 5, 10))
    for d in ("t2m", "m2t"):
        assert_close_dicts(out[d], ref[d])
    tiny = small_batches(sim[:10, :10], batch_size=32)  # N < batch size: one batch of all
    assert_close_dicts(tiny["t2m"], brute_metrics(sim[:10, :10], None))


def test_weighted_recall_hand_case():
    recalls = {f"R{k}": 10.0 * k for k in range(1, 11)}  # R@K / K = 10 for every K
    harmonic = sum(1.0 / k for k in range(1, 11))
    assert weighted_recall(recalls) == pytest.approx(100.0 / harmonic)
    assert weighted_recall({f"R{k}": 100.0 for k in range(1, 11)}) == pytest.approx(100.0)
    only_r1 = {f"R{k}": (60.0 if k == 1 else 0.0) for k in range(1, 11)}
    assert weighted_recall(only_r1) == pytest.approx(60.0 / harmonic)


@pytest.mark.parametrize("n, n_batches, disjoint, size", [(64, 2, True, 32), (40, 30, False, 32), (10, 5, False, 10)])
def test_official_protocol_batches_and_values(n, n_batches, disjoint, size):
    sim = np.random.default_rng(5).normal(size=(n, n))
    batches = official_batches(n, n_batches, 32, seed=3)
    assert len(batches) == n_batches
    for idx in batches:
        assert len(idx) == size and len(set(idx.tolist())) == size  # without replacement
    if disjoint:
        assert len(set(np.concatenate(batches).tolist())) == n_batches * size
    out = official_protocol(sim, n_batches=n_batches, batch_size=32, seed=3)
    ref = _average_brute(sim, None, batches, tuple(range(1, 11)))
    harmonic = sum(1.0 / k for k in range(1, 11))
    for d in ("t2m", "m2t"):
        wr = sum(ref[d][f"R{k}"] / k for k in range(1, 11)) / harmonic
        assert_close_dicts(out[d], {**ref[d], "WR": wr})
    assert official_protocol(sim, n_batches=n_batches, seed=3) == out  # fixed seed: reproducible


def test_official_perfect_model():
    out = official_protocol(np.eye(100) + 0.0, n_batches=3)
    assert out["t2m"]["R1"] == 100.0 and out["t2m"]["WR"] == pytest.approx(100.0) and out["m2t"]["MedR"] == 1.0


# ----------------------------------------------------------------------------- diagnostics

def test_diagnostics_brute_force():
    rng = np.random.default_rng(6)
    t, m = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    tu = [v / math.sqrt(sum(x * x for x in v)) for v in t]
    mu = [v / math.sqrt(sum(x * x for x in v)) for v in m]
    cos = [[sum(a * b for a, b in zip(tu[i], mu[j])) for j in range(6)] for i in range(6)]
    diag = sum(cos[i][i] for i in range(6)) / 6
    off = sum(cos[i][j] for i in range(6) for j in range(6) if i != j) / 30
    assert mean_diag_sim(t, m) == pytest.approx(diag)
    assert alignment_gap(torch.tensor(t), torch.tensor(m)) == pytest.approx(diag - off)
    centroid = [sum(t[i][k] for i in range(6)) / 6 - sum(m[i][k] for i in range(6)) / 6 for k in range(4)]
    assert centroid_distance(t, m) == pytest.approx(math.sqrt(sum(c * c for c in centroid)))
