"""Which fusion earns its place: every method and weighting reported, ONE pre-registered choice kept only if
it beats the best member on val.

Input: each member's (N, N) similarity matrices on val and test (row = text i, correct = motion i), and with
--eval-data on the other dataset's split ``eval_data`` (scored like test, never chosen on), one
protocol (core.protocols) and its equivalence views.  Variants (``default_variants``):

    method in core.ensemble.METHODS (borda with similarity tie-break, rrf k=60, mean_sim)
    x {all members, equal weights; all members, val weights (proportional to val R@1);
       members chosen by greedy forward selection on val (official R@1, then weighted recall), equal weights}

each evaluated on val and test with per-query credit:

    val R@1 [CI], val gain vs the best member [paired CI], test R@1 [CI], test gain [paired CI].

The best member is the one with the highest val R@1 (the choice a user makes without an ensemble).
The choice is fixed in advance (``DEFAULT_CHOICE``: mean_sim, equal weights, members chosen greedily on val:
the fusion measured to help most) rather than picked among the variants on val, whose best val score is
partly luck; it is kept only when its val gain over the best member is decided (paired 95 % CI above 0:
greedy selection makes that val gain optimistic, the interval is the guard), otherwise the ensemble IS the
best member (``fallback``) and the report says so with the CI.  An explicit choice
(``allow_fallback=False``) is kept as asked.  Test numbers never take part in a choice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from core.bootstrap import Interval, QueryCredit, interval, paired_difference
from core.ensemble import METHODS, greedy_forward_selection, make_combiner, val_weights
from core.protocols import ProtocolSettings, evaluate_protocols, identity

SPLITS = ("val", "test")
WEIGHTINGS = ("equal", "val")          # and "given": the caller's weights (run_ensemble.py --weights)
COMPARED = ("recall_at_1", "eq_recall_at_1", "full_t2m_R1")   # gains are reported for these (when present)


@dataclass(frozen=True)
class Variant:
    method: str          # a core.ensemble method
    weighting: str       # "equal", "val" (proportional to val R@1) or "given" (the caller's weights)
    select: str          # "all" members, or "greedy" forward selection on val

    def __str__(self) -> str:
        members = "greedy on val" if self.select == "greedy" else "all"
        return f"{self.method}, {self.weighting}-weighted, {members}"


# The fusion kept by default (when it beats the best member on val), fixed in advance rather than picked
# among the variants on val: mean_sim was the best method in every measured group and search, and greedy
# member selection keeps a refit's weaker config out (bench/ensemble_diversity.py, bench/ensemble_vs_member.py).
DEFAULT_CHOICE = Variant("mean_sim", "equal", "greedy")


@dataclass
class Scored:
    """One model (a member or a fused combination) evaluated on both splits."""
    label: str
    members: list[int]                       # indices into the member list
    weights: list[float]
    method: str                              # "single" for a member, else a core.ensemble method
    weighting: str
    metrics: dict[str, dict[str, float]]     # split -> flat metrics (with _lo/_hi CIs)
    credits: dict[str, dict[str, QueryCredit]]
    gains: dict[str, dict[str, Interval]] = field(default_factory=dict)   # split -> key -> vs best member
    select: str = "-"                        # "all" or "greedy" for a fusion
    trace: list[dict] = field(default_factory=list)   # greedy selection steps (members by label)

    def ci(self, split: str, key: str = "recall_at_1") -> Interval:
        return interval(self.credits[split][key])


@dataclass
class FusionStudy:
    members: list[Scored]
    best_member: int                         # index of the member with the highest val R@1
    variants: list[Scored]
    chosen: Scored                           # the chosen variant, or the best member itself (fallback)
    best_variant: Scored | None              # the chosen variant as scored, also when it fell back
    fallback: bool
    reason: str
    diversity: dict


class Evaluator:
    """Evaluates members and combinations of them on val and test with one protocol."""

    def __init__(self, sims: dict[str, list[np.ndarray]], settings: ProtocolSettings, views: dict[str, dict]):
        self.sims, self.settings, self.views = sims, settings, views

    def scored(self, label: str, members: Sequence[int], method: str, weighting: str,
               weights: Sequence[float]) -> Scored:
        combiner = identity if method == "single" else make_combiner(method, list(weights))
        metrics, credits = {}, {}
        for split in self.sims:   # val, test [, eval_data: reported, never chosen on]
            result = evaluate_protocols([self.sims[split][i] for i in members], combiner, self.settings,
                                        **self.views[split])
            metrics[split], credits[split] = result.metrics, result.credits
        return Scored(label, list(members), list(weights), method, weighting, metrics, credits)

    def val_score(self, members: Sequence[int], method: str, weights: Sequence[float]) -> tuple[float, float]:
        """(official R@1, weighted recall) on val: what greedy selection maximises."""
        result = evaluate_protocols([self.sims["val"][i] for i in members], make_combiner(method, list(weights)),
                                    self.settings, equivalence=self.views["val"]["equivalence"], intervals=False,
                                    official_only=True)
        return result.metrics["recall_at_1"], result.metrics["weighted_recall"]


def _gains(model: Scored, best: Scored) -> dict[str, dict[str, Interval]]:
    return {s: {k: paired_difference(model.credits[s][k], best.credits[s][k])
                for k in COMPARED if k in model.credits[s] and k in best.credits[s]} for s in model.credits}


def diversity(members: list[Scored], split: str = "test") -> dict:
    """Pearson correlation of the members' per-query full-split R@1 misses (1 = always fail together)."""
    misses = np.array([1.0 - m.credits[split]["full_t2m_R1"].sums for m in members])   # (M, N), one query once
    n = len(members)
    corr = np.ones((n, n))
    for a in range(n):
        for b in range(a + 1, n):
            if misses[a].std() > 0 and misses[b].std() > 0:
                corr[a, b] = corr[b, a] = float(np.corrcoef(misses[a], misses[b])[0, 1])
    pairs = [corr[a, b] for a in range(n) for b in range(a + 1, n)]
    oracle = float(100 * (1 - misses.min(axis=0)).mean()) if n else None   # any member right
    return {"split": split, "metric": "full_t2m_R1 misses", "pairwise_correlation": corr.round(4).tolist(),
            "mean_correlation": float(np.mean(pairs)) if pairs else None, "oracle_full_R1": oracle}


def default_variants(methods: Sequence[str] = METHODS) -> list[Variant]:
    """What every study reports: each method over all members (equal and val weights) and greedily chosen."""
    return [Variant(m, w, sel) for m in methods for w, sel in (("equal", "all"), ("val", "all"), ("equal", "greedy"))]


def _fuse(evaluator: Evaluator, labels: Sequence[str], variant: Variant, weights: list[float]) -> Scored | None:
    chosen, trace = list(range(len(labels))), []
    if variant.select == "greedy":
        picked = greedy_forward_selection(
            len(labels), lambda sub: evaluator.val_score(sub, variant.method, [weights[i] for i in sub]))
        chosen = picked.selected
        trace = [{**step, "members": [labels[i] for i in step["members"]], "added": labels[step["added"]]}
                 for step in picked.trace]
    if len(chosen) == 1:
        return None   # greedy kept one member: that is the member itself, already scored
    scored = evaluator.scored(f"{variant} ({len(chosen)} of {len(labels)})", chosen, variant.method,
                              variant.weighting, [weights[i] for i in chosen])
    scored.select, scored.trace = variant.select, trace
    return scored


def study(evaluator: Evaluator, labels: Sequence[str], *, variants: Sequence[Variant] | None = None,
          choice: Variant = DEFAULT_CHOICE, fixed_weights: Sequence[float] | None = None,
          allow_fallback: bool = True) -> FusionStudy:
    """Score every member and every variant (default: ``default_variants()`` plus ``choice``); keep ``choice``
    (see the module doc)."""
    members = [evaluator.scored(label, [i], "single", "-", [1.0]) for i, label in enumerate(labels)]
    best = max(range(len(members)), key=lambda i: (members[i].metrics["val"]["recall_at_1"],
                                                   members[i].metrics["val"]["weighted_recall"], -i))
    for m in members:
        m.gains = _gains(m, members[best])
    wanted = list(dict.fromkeys([*(variants if variants is not None else default_variants()), choice]))
    scored: list[Scored] = []
    picked = None
    if len(members) > 1:
        val_r1 = [m.metrics["val"]["recall_at_1"] for m in members]
        for variant in wanted:
            weights = (list(fixed_weights) if variant.weighting == "given" else
                       val_weights(val_r1) if variant.weighting == "val" else [1.0] * len(members))
            fused = _fuse(evaluator, labels, variant, weights)
            if fused is not None:
                fused.gains = _gains(fused, members[best])
                scored.append(fused)
                picked = fused if variant == choice else picked
    gain = picked.gains["val"]["recall_at_1"] if picked is not None else None
    if picked is None:
        chosen, fallback = members[best], True
        reason = ("only one member" if len(members) == 1 else
                  f"greedy selection on val kept a single member for {choice}")
    elif allow_fallback and not gain.low > 0:
        chosen, fallback = members[best], True
        reason = (f"{picked.label} does not beat the best member on val: {gain.signed()} val R@1, paired 95 % CI "
                  "includes 0")
    else:
        chosen, fallback = picked, False
        reason = (f"{picked.label} gains {gain.signed()} val R@1 over the best member (paired 95 % CI above 0)"
                  if gain.low > 0 else f"{picked.label} as asked ({gain.signed()} val R@1 vs the best member)")
    return FusionStudy(members, best, scored, chosen, picked, fallback, reason,
                       {s: diversity(members, s) for s in SPLITS} if len(members) > 1 else {})
