"""Ensemble combinations against hand-worked numbers, protocol parity with core.evaluate, greedy selection."""
import math

import numpy as np
import pytest

from core.config import RuntimeConfig
from core.ensemble import (borda_points, borda_scores, break_ties, combine, greedy_forward_selection, make_combiner,
                           mean_similarity_scores, rrf_scores, top_candidates, val_weights, zscore_rows)
from core.evaluate import evaluate_split
from core.metrics import similarity_matrix
from core.protocols import ProtocolSettings, evaluate_protocols, identity, official_batches


def official(sims, combiner, n_batches=1, batch_size=32, seed=0):
    settings = ProtocolSettings(n_batches=n_batches, batch_size=batch_size, seed=seed)
    m = evaluate_protocols(sims, combiner, settings, intervals=False, official_only=True).metrics
    return {"R1": m["recall_at_1"], "WR": m["weighted_recall"]}

# Two members, 3 texts (rows) x 3 motions (columns); text i's correct motion is motion i.
A = np.array([[0.9, 0.2, 0.5],
              [0.3, 0.3, 0.1],
              [0.0, 0.1, 0.7]])
B = np.array([[0.1, 0.8, 0.4],
              [0.2, 0.6, 0.6],
              [0.5, 0.5, 0.5]])


# ----------------------------------------------------------------------------- Borda

def test_borda_points_hand_worked_with_ties():
    # C = 3: rank 1 earns 2 points, rank 2 earns 1, rank 3 earns 0; tied candidates share the mean.
    np.testing.assert_array_equal(borda_points(A), [[2, 0, 1],
                                                    [1.5, 1.5, 0],      # 0.3, 0.3 share ranks 1-2
                                                    [0, 1, 2]])
    np.testing.assert_array_equal(borda_points(B), [[0, 2, 1],
                                                    [0, 1.5, 1.5],
                                                    [1, 1, 1]])          # all tied: mean of 2, 1, 0
    np.testing.assert_array_equal(borda_points([[0.9, 0.5, 0.5, 0.1]]), [[3, 1.5, 1.5, 0]])


def test_borda_scores_sum_and_weights_hand_worked():
    # Totals [[2, 2, 2], [1.5, 3, 1.5], [1, 2, 3]]: the tied totals are ordered by the mean z-scored similarity.
    totals = np.array([[2, 2, 2], [1.5, 3, 1.5], [1, 2, 3]])
    got, z = borda_scores([A, B]), mean_similarity_scores([A, B])
    for i in range(3):   # the order is (points, then mean z-sim) lexicographically
        assert np.argsort(-got[i]).tolist() == np.lexsort((-z[i], -totals[i])).tolist(), i
    gaps = np.array([[1.0], [1.5], [1.0]])   # smallest gap between distinct totals (1 for a constant row)
    assert ((got - totals) >= 0).all() and ((got - totals) < gaps).all()
    weighted = borda_scores([A, B], weights=[2, 1])
    assert np.argsort(-weighted, axis=1).tolist() == np.argsort(-np.array([[4, 2, 3], [3, 4.5, 1.5], [1, 3, 5]]),
                                                                axis=1).tolist()
    np.testing.assert_array_equal(combine([A, B], "borda"), got)


def test_break_ties_never_reorders_the_primary_and_orders_its_ties():
    rng = np.random.default_rng(5)
    primary = rng.integers(0, 5, size=(30, 12)).astype(float) * rng.choice([0.01, 1.0, 300.0])
    secondary = rng.normal(size=(30, 12))
    out = break_ties(primary, secondary)
    for i in range(30):
        for a in range(12):
            for b in range(12):
                if primary[i, a] > primary[i, b]:
                    assert out[i, a] > out[i, b]
                elif primary[i, a] == primary[i, b]:
                    assert (out[i, a] > out[i, b]) == (secondary[i, a] > secondary[i, b])
    np.testing.assert_array_equal(break_ties(np.ones((1, 3)), np.array([[0.0, 0.0, 1.0]]))[0, :2], [1 + 0.5 / 3] * 2)


def test_rrf_hand_worked():
    # Member ranks: A row 0 -> [1, 3, 2], B row 0 -> [3, 1, 2]: every candidate sums to 1/61 + 1/63 or 2/62.
    got = rrf_scores([A, B])
    fused = np.array([1 / 61 + 1 / 63, 1 / 63 + 1 / 61, 2 / 62])
    assert got[0] == pytest.approx(fused, abs=1e-4)
    assert np.argmax(got[0]) in (0, 1) and got[0, 2] < got[0].max()   # 2/62 < 1/61 + 1/63
    ties = rrf_scores([np.array([[0.5, 0.5, 0.1]])])                    # fractional rank 1.5 for the tie
    assert ties[0, 0] == pytest.approx(1 / 61.5, abs=1e-3) and ties[0, 0] == ties[0, 1]
    assert rrf_scores([A, B], weights=[1, 0])[0].argmax() == 0


def test_val_weights():
    assert val_weights([60.0, 30.0, 0.0]) == [1.0, 0.5, 0.01]
    assert val_weights([0.0, 0.0]) == [1.0, 1.0]


def test_borda_points_match_brute_force_on_many_ties():
    rng = np.random.default_rng(0)
    sim = rng.integers(0, 4, size=(20, 9)).astype(float)  # values 0..3: lots of ties
    got = borda_points(sim)
    c = sim.shape[1]
    for i in range(len(sim)):
        for j in range(c):
            greater = (sim[i] > sim[i, j]).sum()
            equal = (sim[i] == sim[i, j]).sum()          # includes j itself
            mean_rank = greater + (equal + 1) / 2         # mean of ranks greater+1 .. greater+equal
            assert got[i, j] == c - mean_rank
    assert np.allclose(got.sum(axis=1), c * (c - 1) / 2)  # every row hands out the same total


def test_borda_ignores_scale_and_mean_sim_ignores_affine_row_changes():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(5, 7))
    np.testing.assert_array_equal(borda_points(s), borda_points(3 * s + 10))
    shifted = 4 * s + rng.normal(size=(5, 1))  # a per-row offset and a global scale
    np.testing.assert_allclose(mean_similarity_scores([shifted]), mean_similarity_scores([s]), atol=1e-12)


# ----------------------------------------------------------------------------- mean similarity

def test_zscore_rows_hand_worked():
    z = zscore_rows([[1, 2, 3], [0, 0, 3], [2, 2, 2]])
    s15, s05 = math.sqrt(1.5), math.sqrt(0.5)
    np.testing.assert_allclose(z, [[-s15, 0, s15], [-s05, -s05, 2 * s05], [0, 0, 0]], atol=1e-12)


def test_mean_similarity_hand_worked_with_weights_and_a_constant_row():
    a = np.array([[3.0, 2.0, 1.0], [5.0, 5.0, 5.0]])
    b = np.array([[0.0, 0.0, 3.0], [1.0, 2.0, 3.0]])
    s15, s05 = math.sqrt(1.5), math.sqrt(0.5)
    # row 0: z(a) = [s15, 0, -s15], z(b) = [-s05, -s05, 2 s05]; row 1: z(a) = 0 (constant), z(b) = [-s15, 0, s15]
    np.testing.assert_allclose(mean_similarity_scores([a, b]),
                               [[(s15 - s05) / 2, -s05 / 2, (2 * s05 - s15) / 2], [-s15 / 2, 0, s15 / 2]], atol=1e-12)
    np.testing.assert_allclose(mean_similarity_scores([a, b], weights=[3, 1])[0],
                               [(3 * s15 - s05) / 4, -s05 / 4, (2 * s05 - 3 * s15) / 4], atol=1e-12)
    np.testing.assert_allclose(mean_similarity_scores([a, b])[0], [0.258819, -0.353553, 0.094734], atol=1e-6)


def test_bad_members_and_weights_are_rejected():
    with pytest.raises(ValueError, match="at least one"):
        borda_scores([])
    with pytest.raises(ValueError, match="one shape"):
        borda_scores([A, A[:2]])
    with pytest.raises(ValueError, match="non-finite"):
        mean_similarity_scores([A, np.full((3, 3), np.nan)])
    for bad in ([1.0], [1.0, -1.0], [0.0, 0.0], [1.0, math.inf]):
        with pytest.raises(ValueError, match="weights"):
            borda_scores([A, B], weights=bad)
    with pytest.raises(ValueError, match="unknown"):
        make_combiner("max")


# ----------------------------------------------------------------------------- protocols

def test_full_split_borda_is_ranked_per_direction_hand_worked():
    # Text->motion totals (rows) [2,2,2], [1.5,3,1.5], [1,2,3] -> tie-broken by mean z-sim: t0 wins (z favours 0).
    # Motion->text: Borda over the columns of A and B, ranked afresh (not a transpose of the text->motion totals).
    m = evaluate_protocols([A, B], make_combiner("borda"), ProtocolSettings(n_batches=1, batch_size=3),
                           intervals=False).metrics
    z = mean_similarity_scores([A, B])
    assert m["full_t2m_R1"] == pytest.approx(100 * np.mean([z[0].argmax() == 0, True, True]))
    cols = mean_similarity_scores([A.T, B.T])
    assert m["full_m2t_R1"] == pytest.approx(100 * np.mean([cols[0].argmax() == 0, False, True]))
    assert m["recall_at_1"] == m["full_t2m_R1"]      # one batch holding all 3 = the full split


def test_single_member_reproduces_core_evaluation_exactly():
    rng = np.random.default_rng(2)
    text = rng.normal(size=(150, 16))
    motion = text + 1.2 * rng.normal(size=(150, 16))
    captions = [f"caption {i % 120}" for i in range(150)]   # duplicates -> an equivalence view
    want = evaluate_split(text, motion, captions, None, RuntimeConfig(eval_seed=7)).metrics
    sim = similarity_matrix(text, motion)
    from core.metrics import equivalence_matrix
    got = evaluate_protocols([sim], identity, ProtocolSettings(seed=7), eq_view=equivalence_matrix(captions)).metrics
    assert set(got) == set(want) - {"alignment_gap", "centroid_distance", "mean_diag_sim"}
    for key, value in got.items():
        assert value == pytest.approx(want[key], abs=1e-12), key
    # One member through Borda / RRF: rank transforms with a similarity tie-break -> the same numbers.
    for method in ("borda", "rrf", "mean_sim"):
        fused = evaluate_protocols([sim], make_combiner(method), ProtocolSettings(seed=7)).metrics
        assert fused == pytest.approx({k: v for k, v in got.items() if not k.startswith("eq_")}), method


def test_combination_is_done_inside_each_batch():
    # Candidate scores inside a batch must be the combination of the batch's sub-matrices, not a slice of
    # the full-split combination: check one official batch by hand.
    rng = np.random.default_rng(4)
    sims = [rng.normal(size=(64, 64)) + 2 * np.eye(64) * k for k in (0.3, 0.5, 0.7)]
    from core.metrics import query_hits
    idx = official_batches(64, 1, 32, seed=0)[0]
    sub = [s[np.ix_(idx, idx)] for s in sims]
    want = 100 * np.mean(query_hits(borda_scores(sub), ks=(1,)))
    assert official(sims, make_combiner("borda"))["R1"] == pytest.approx(want)


def test_top_candidates_orders_and_breaks_ties_by_column():
    order, scores = top_candidates(np.array([[0.1, 0.5, 0.5, 0.9]]), k=3)
    assert order.tolist() == [[3, 1, 2]] and scores.tolist() == [[0.9, 0.5, 0.5]]


# ----------------------------------------------------------------------------- greedy selection

def _helps_and_hurts_members(n=6):
    m0 = np.eye(n)                                    # right on texts 0-3, wrong on 4, 5
    m0[4], m0[5] = 0, 0
    m0[4, 4], m0[4, 0], m0[5, 5], m0[5, 1] = 0.5, 1, 0.5, 1
    m1 = np.zeros((n, n))                             # right only on 4, 5, close second elsewhere
    for i in range(4):
        m1[i, i], m1[i, (i + 1) % n] = 0.6, 0.7
    m1[4, 4] = m1[5, 5] = 1
    m2 = np.ones((n, n))                              # confidently wrong everywhere
    for i in range(n):
        m2[i, i], m2[i, (i + 2) % n] = 0, 3
    return [m0, m1, m2]


@pytest.mark.parametrize("method", ["borda", "rrf", "mean_sim"])
def test_greedy_adds_the_member_that_helps_and_not_the_one_that_hurts(method):
    members = _helps_and_hurts_members()

    def score(subset):
        t2m = official([members[i] for i in subset], make_combiner(method), n_batches=1, batch_size=6)
        return t2m["R1"], t2m["WR"]

    assert score((0,))[0] == pytest.approx(400 / 6) and score((0, 1))[0] == 100
    assert score((0, 1, 2))[0] < 100                   # member 2 would hurt
    picked = greedy_forward_selection(3, score)
    assert picked.selected == [0, 1] and picked.score[0] == 100
    assert [s["added"] for s in picked.trace] == [0, 1, 2]
    assert picked.trace[1]["accepted"] is True and picked.trace[2]["accepted"] is False


def test_greedy_stop_rule_and_tie_breaks():
    table = {(0,): (50, 1), (1,): (50, 2), (2,): (40, 0),
             (1, 0): (50, 9), (1, 2): (50, 3)}          # no pair raises R@1: only the secondary key differs
    picked = greedy_forward_selection(3, lambda s: table[s])
    assert picked.selected == [1] and picked.score == (50, 2)   # best single by (R@1, WR); WR never adds
    equal = greedy_forward_selection(3, lambda s: (10.0 * len(s) if 2 not in s else 0.0, 0.0))
    assert equal.selected == [0, 1]                    # equal scores: the lower (better-ranked) index wins
    with pytest.raises(ValueError):
        greedy_forward_selection(0, lambda s: (0,))
