"""The fusion study's decision on similarity matrices built to help, to change nothing, or to hurt."""
import numpy as np
import pytest

from core.evaluate import equivalence_views
from core.config import RuntimeConfig
from core.protocols import ProtocolSettings
from results.fusion import DEFAULT_CHOICE, Evaluator, Variant, study


def member(truth_strength: np.ndarray, rng, n: int) -> np.ndarray:
    """(N, N) similarities: the correct motion gets a per-query boost; independent noise everywhere."""
    return rng.normal(size=(n, n)) + np.diag(truth_strength)


def evaluator(members_by_split: dict, n: int) -> Evaluator:
    views = {s: equivalence_views([f"c{i}" for i in range(n)], None, RuntimeConfig()) for s in ("val", "test")}
    return Evaluator(members_by_split, ProtocolSettings(), views)


def test_complementary_members_are_fused_and_the_gain_is_decided():
    n, rng = 600, np.random.default_rng(0)
    sims = {s: [member(np.full(n, 1.6), rng, n) for _ in range(3)] for s in ("val", "test")}   # independent errors
    fs = study(evaluator(sims, n), ["a", "b", "c"])
    assert not fs.fallback and fs.chosen in fs.variants and len(fs.chosen.members) >= 2
    assert (fs.chosen.method, fs.chosen.weighting, fs.chosen.select) == ("mean_sim", "equal", "greedy") == (
        DEFAULT_CHOICE.method, DEFAULT_CHOICE.weighting, DEFAULT_CHOICE.select)
    assert len(fs.variants) == 9            # 3 methods x (all equal, all val-weighted, greedy)
    gain = fs.chosen.gains["test"]["recall_at_1"]
    assert gain.low > 0, gain                               # three independent views of the truth add up
    assert fs.diversity["test"]["mean_correlation"] < 0.3 and "gains" in fs.reason


def test_copies_add_nothing_so_the_study_falls_back_to_the_best_member():
    n, rng = 400, np.random.default_rng(1)
    base = {s: member(np.full(n, 1.5), rng, n) for s in ("val", "test")}
    sims = {s: [base[s], base[s] + 1e-9 * rng.normal(size=(n, n))] for s in ("val", "test")}
    fs = study(evaluator(sims, n), ["a", "a-copy"])
    assert fs.fallback and fs.chosen is fs.members[fs.best_member] and fs.chosen.method == "single"
    assert fs.chosen.gains["test"]["recall_at_1"].value == 0
    assert fs.diversity["val"]["mean_correlation"] > 0.95


def test_a_harmful_member_is_left_out_by_greedy_selection():
    n, rng = 500, np.random.default_rng(2)
    sims = {s: [member(np.full(n, 1.8), rng, n), member(np.full(n, 1.8), rng, n), rng.normal(size=(n, n))]
            for s in ("val", "test")}                                        # the third knows nothing
    fs = study(evaluator(sims, n), ["good1", "good2", "noise"])
    greedy = [v for v in fs.variants if v.select == "greedy"]
    assert greedy and all(2 not in v.members for v in greedy)


def test_explicit_choice_never_falls_back_and_one_member_is_its_own_ensemble():
    n, rng = 200, np.random.default_rng(3)
    base = {s: member(np.full(n, 1.5), rng, n) for s in ("val", "test")}
    sims = {s: [base[s], base[s].copy()] for s in ("val", "test")}
    borda = Variant("borda", "equal", "all")
    fs = study(evaluator(sims, n), ["a", "b"], variants=[borda], choice=borda, allow_fallback=False)
    assert not fs.fallback and fs.chosen.method == "borda" and fs.chosen.members == [0, 1]
    alone = study(evaluator({s: [base[s]] for s in ("val", "test")}, n), ["a"])
    assert alone.fallback and alone.reason == "only one member" and not alone.variants
    with pytest.raises(KeyError):
        alone.diversity["val"]
