"""Metrics against brute-force references: explicit sorting per query, loops, permutations for ties."""
import itertools
import math

import numpy as np
import pytest
import torch

from core.metrics import (TIE_RULES, alignment_gap, both_directions, centroid_distance, equivalence_matrix,
                          mean_diag_sim, query_hits, query_ranks, retrieval_metrics, weighted_recall)


# ----------------------------------------------------------------------------- brute force

def _tie_orders(row, correct):
    """Every equally likely ordering of one query's candidates: ties permuted in every way."""
    values = sorted(set(row), reverse=True)
    groups = [[j for j in range(len(row)) if row[j] == v] for v in values]
    for perms in itertools.product(*(itertools.permutations(g) for g in groups)):
        yield [j for perm in perms for j in perm]


def brute_credit(row, correct, ties, k):
    """Credit at k and the rank of one query, by explicit sorting (TMR: from its description)."""
    n = len(row)
    if ties in ("optimistic", "pessimistic"):
        first_correct = ties == "optimistic"
        order = sorted(range(n), key=lambda j: (-row[j], (0 if correct[j] else 1) if first_correct
                                                 else (1 if correct[j] else 0)))
        rank = float(next(pos for pos, j in enumerate(order) if correct[j]) + 1)
        return float(rank <= k), rank
    if ties == "tmr":
        # TMR: sort the distances (-similarity) ascending, take the distance of the ground truth (the best
        # correct one), average the 0-based positions of every entry equal to it; hit when that mean < k.
        dists = sorted(-x for x in row)
        gt = min(-row[j] for j in range(n) if correct[j])
        positions = [p for p, d in enumerate(dists) if d == gt]
        col = sum(positions) / len(positions)
        return float(col < k), col + 1.0
    # expected: the fraction of all tie orderings in which the first correct candidate is within the top k
    firsts = [next(p for p, j in enumerate(order) if correct[j]) + 1 for order in _tie_orders(row, correct)]
    return sum(f <= k for f in firsts) / len(firsts), sum(firsts) / len(firsts)


def brute_metrics(sim, eq, ties="expected", ks=(1, 2, 3, 5, 10)):
    n = len(sim)
    credit = {k: 0.0 for k in ks}
    ranks = []
    for i in range(n):
        correct = [j == i or (eq is not None and bool(eq[i][j])) for j in range(n)]
        for k in ks:
            credit[k] += brute_credit(list(sim[i]), correct, ties, k)[0]
        ranks.append(brute_credit(list(sim[i]), correct, ties, 1)[1])
    out = {f"R{k}": 100.0 * credit[k] / n for k in ks}
    s = sorted(ranks)
    out["MedR"] = s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
    return out


def assert_close_dicts(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-9), k


# ----------------------------------------------------------------------------- ranks / metrics

@pytest.mark.parametrize("ties", TIE_RULES)
def test_random_matrix_both_directions(ties):
    sim = np.random.default_rng(1).normal(size=(37, 37))
    out = both_directions(sim, ties=ties)
    assert_close_dicts(out["t2m"], brute_metrics(sim, None, ties))
    assert_close_dicts(out["m2t"], brute_metrics(sim.T, None, ties))


@pytest.mark.parametrize("ties", TIE_RULES)
@pytest.mark.parametrize("with_eq", [False, True])
def test_deliberate_ties(ties, with_eq):
    rng = np.random.default_rng(2)
    sim = rng.integers(0, 4, size=(9, 9)).astype(float)  # 4 levels: ties everywhere (small: orders are enumerated)
    eq = None
    if with_eq:
        eq = equivalence_matrix([f"cap{i % 4}" for i in range(9)], [None] * 9)
    ranks, hits = query_ranks(sim, eq, ties), query_hits(sim, eq, ties, (1, 2, 3, 5))
    for i in range(9):
        correct = [j == i or (eq is not None and eq[i, j]) for j in range(9)]
        for c, k in enumerate((1, 2, 3, 5)):
            want, rank = brute_credit(list(sim[i]), correct, ties, k)
            assert hits[i, c] == pytest.approx(want), (i, k)
        assert ranks[i] == pytest.approx(rank), i
    assert_close_dicts(retrieval_metrics(sim.T, equivalence=None if eq is None else eq.T, ties=ties),
                       brute_metrics(sim.T, None if eq is None else eq.T, ties))


def test_tie_rules_hand_case():
    # query 0: correct score 1.0 tied with two wrong candidates, one wrong candidate above (g=1, t_w=2, t_r=1)
    sim = np.array([[1.0, 1.0, 2.0, 1.0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    assert query_ranks(sim, ties="optimistic")[0] == 2.0
    assert query_ranks(sim, ties="pessimistic")[0] == 4.0
    assert query_ranks(sim, ties="expected")[0] == pytest.approx(2.0 + 2 / 2)
    assert query_ranks(sim, ties="tmr")[0] == pytest.approx(1 + 1 + (2 + 1 - 1) / 2)   # mean position of 1, 2, 3
    # expected credit: first of the 3 tied is correct with p = 1/3 -> R@2 = 1/3, R@3 = 2/3, R@4 = 1
    np.testing.assert_allclose(query_hits(sim, ties="expected", ks=(1, 2, 3, 4))[0], [0, 1 / 3, 2 / 3, 1])
    # TMR: col = 2 -> a hit only from k = 3 on
    np.testing.assert_allclose(query_hits(sim, ties="tmr", ks=(1, 2, 3, 4))[0], [0, 0, 1, 1])


def test_collapsed_model_scores_chance_and_tmr_differs_from_expected_by_up_to_50_points():
    n = 32
    flat = np.zeros((n, n))
    assert retrieval_metrics(flat, ties="expected")["R1"] == pytest.approx(100 / n)
    assert retrieval_metrics(flat, ties="optimistic")["R1"] == 100.0
    # one wrong candidate tied with the correct one everywhere: expected gives half credit, TMR a full hit
    pair = np.eye(n) + np.roll(np.eye(n), 1, axis=1)
    assert retrieval_metrics(pair, ties="expected")["R1"] == pytest.approx(50.0)
    assert retrieval_metrics(pair, ties="tmr")["R1"] == pytest.approx(100.0)


def test_bad_tie_rule():
    with pytest.raises(ValueError, match="ties='average'"):
        query_ranks(np.eye(3), ties="average")


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


def test_weighted_recall_hand_case():
    recalls = {f"R{k}": 10.0 * k for k in range(1, 11)}  # R@K / K = 10 for every K
    harmonic = sum(1.0 / k for k in range(1, 11))
    assert weighted_recall(recalls) == pytest.approx(100.0 / harmonic)
    assert weighted_recall({f"R{k}": 100.0 for k in range(1, 11)}) == pytest.approx(100.0)
    only_r1 = {f"R{k}": (60.0 if k == 1 else 0.0) for k in range(1, 11)}
    assert weighted_recall(only_r1) == pytest.approx(60.0 / harmonic)



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
