"""Protocols (full split, TMR small batches, official 30 x 32) against a brute-force loop over the batches,
the per-query credit behind the CIs, and the combiner hook."""
import numpy as np
import pytest

from core.bootstrap import QueryCredit
from core.metrics import equivalence_matrix
from core.protocols import (ProtocolSettings, evaluate_protocols, identity, official_batches,
                            small_batch_indices)

from .test_metrics import brute_metrics

HARMONIC = sum(1.0 / k for k in range(1, 11))


def _average_brute(sim, eq, batches, ks, ties="expected"):
    per = {"t2m": [], "m2t": []}
    for idx in batches:
        sub = sim[np.ix_(idx, idx)]
        sub_eq = None if eq is None else eq[np.ix_(idx, idx)]
        per["t2m"].append(brute_metrics(sub, sub_eq, ties, ks))
        per["m2t"].append(brute_metrics(sub.T, None if sub_eq is None else sub_eq.T, ties, ks))
    return {d: {k: sum(m[k] for m in ms) / len(ms) for k in ms[0]} for d, ms in per.items()}


def test_full_split_keys_are_the_whole_matrix():
    sim = np.random.default_rng(3).normal(size=(20, 20))
    out = evaluate_protocols([sim], intervals=False).metrics
    for d, ref in (("t2m", brute_metrics(sim, None)), ("m2t", brute_metrics(sim.T, None))):
        for k, v in ref.items():
            assert out[f"full_{d}_{k}"] == pytest.approx(v), (d, k)


def test_small_batches_reference():
    rng = np.random.default_rng(4)
    sim = rng.normal(size=(70, 70))
    eq = equivalence_matrix([f"c{i % 30}" for i in range(70)], None)
    perm = list(np.random.default_rng(7).permutation(70))
    batches = [perm[0:32], perm[32:64]]  # the last 6 are dropped
    assert [b.tolist() for b in small_batch_indices(70, 32, 7)] == [[int(x) for x in b] for b in batches]
    out = evaluate_protocols([sim], settings=ProtocolSettings(seed=7), equivalence=eq, intervals=False).metrics
    ref = _average_brute(sim, eq, batches, (1, 2, 3, 5, 10))
    for d in ("t2m", "m2t"):
        for k in ("R1", "R5", "R10", "MedR"):
            assert out[f"small_{d}_{k}"] == pytest.approx(ref[d][k]), (d, k)
    assert [len(b) for b in small_batch_indices(10, 32)] == [10]   # N < batch size: one batch of all


@pytest.mark.parametrize("n, n_batches, disjoint, size", [(64, 2, True, 32), (40, 30, False, 32), (10, 5, False, 10)])
def test_official_protocol_batches_and_values(n, n_batches, disjoint, size):
    sim = np.random.default_rng(5).normal(size=(n, n))
    batches = official_batches(n, n_batches, 32, seed=3)
    assert len(batches) == n_batches
    for idx in batches:
        assert len(idx) == size and len(set(idx.tolist())) == size  # without replacement
    if disjoint:
        assert len(set(np.concatenate(batches).tolist())) == n_batches * size
    settings = ProtocolSettings(n_batches=n_batches, batch_size=32, seed=3)
    out = evaluate_protocols([sim], settings=settings, intervals=False)
    ref = _average_brute(sim, None, batches, tuple(range(1, 11)))
    m = out.metrics
    for k in (1, 2, 3, 5, 10):
        assert m[f"recall_at_{k}"] == pytest.approx(ref["t2m"][f"R{k}"])
    assert m["medr"] == pytest.approx(ref["t2m"]["MedR"]) and m["m2t_recall_at_1"] == pytest.approx(ref["m2t"]["R1"])
    for key, d in (("weighted_recall", "t2m"), ("m2t_weighted_recall", "m2t")):
        assert m[key] == pytest.approx(sum(ref[d][f"R{k}"] / k for k in range(1, 11)) / HARMONIC)
    # the per-query credit reproduces the metric: a query drawn into several batches counts each time
    counts = np.bincount(np.concatenate(batches), minlength=n)
    credit = out.credits["recall_at_1"]
    np.testing.assert_array_equal(credit.counts, counts)
    assert credit.value == pytest.approx(m["recall_at_1"])
    assert out.credits["weighted_recall"].value == pytest.approx(m["weighted_recall"])
    assert evaluate_protocols([sim], settings=settings, intervals=False).metrics == m   # fixed seed: reproducible


def test_perfect_model_and_interval_keys():
    out = evaluate_protocols([np.eye(100)], settings=ProtocolSettings(n_batches=3))
    m = out.metrics
    assert m["recall_at_1"] == 100.0 and m["weighted_recall"] == pytest.approx(100.0) and m["medr"] == 1.0
    assert m["recall_at_1_lo"] == m["recall_at_1_hi"] == 100.0 and m["full_t2m_R1_lo"] == 100.0
    assert "eq_recall_at_1" not in m


def test_interval_brackets_value_and_eq_view_is_credited():
    rng = np.random.default_rng(8)
    text = rng.normal(size=(300, 8))
    sim = text @ (text + 1.5 * rng.normal(size=(300, 8))).T
    eq = equivalence_matrix([f"c{i % 150}" for i in range(300)])
    out = evaluate_protocols([sim], eq_view=eq)
    m = out.metrics
    for key in ("recall_at_1", "weighted_recall", "full_t2m_R1", "eq_recall_at_1"):
        assert m[f"{key}_lo"] < m[key] < m[f"{key}_hi"], key
        assert isinstance(out.credits[key], QueryCredit) and out.credits[key].value == pytest.approx(m[key])
    assert m["eq_recall_at_1"] >= m["recall_at_1"]


def test_combiner_scores_the_stacked_query_rows_of_every_batch():
    rng = np.random.default_rng(9)
    sims = [rng.normal(size=(64, 64)) + 2 * np.eye(64) * k for k in (0.3, 0.5, 0.7)]
    seen = []

    def recording(subs):
        seen.append(subs[0].shape)
        return sum(subs)

    out = evaluate_protocols(sims, recording, ProtocolSettings(n_batches=2, batch_size=32), intervals=False)
    # official (2 batches of 32 rows) + full (64 rows) + small (2 x 32 rows), each direction in one call
    assert sorted(seen) == sorted([(64, 32)] * 4 + [(64, 64)] * 2)
    assert out.metrics == evaluate_protocols([sum(sims)], settings=ProtocolSettings(n_batches=2), intervals=False).metrics
    with pytest.raises(ValueError, match="exactly one"):
        identity(sims)


def test_auto_batches_draw_every_query_about_16_times_and_30_is_the_official_protocol():
    settings = ProtocolSettings()
    assert settings.batches_for(500) == 250 and settings.batches_for(40) == 30 and settings.batches_for(10) == 30
    assert ProtocolSettings(n_batches=30).batches_for(5000) == 30
    sim = np.random.default_rng(10).normal(size=(500, 500)) + 2.5 * np.eye(500)
    auto = evaluate_protocols([sim])
    counts = auto.credits["recall_at_1"].counts
    assert counts.sum() == 250 * 32 and counts.min() >= 4 and abs(counts.mean() - 16) < 1e-9
    official = evaluate_protocols([sim], settings=ProtocolSettings(n_batches=30))
    assert official.credits["recall_at_1"].counts.sum() == 960       # 30 x 32: 960 draws, whatever N
    # the same expectation, less noise: the two agree within the official protocol's interval
    assert official.metrics["recall_at_1_lo"] <= auto.metrics["recall_at_1"] <= official.metrics["recall_at_1_hi"]
    width = lambda m: m["recall_at_1_hi"] - m["recall_at_1_lo"]
    assert width(auto.metrics) < width(official.metrics)
