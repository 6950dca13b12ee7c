"""Which fusion earns its place: every method x weighting, members chosen on val, judged against the best member.

Input: each member's (N, N) similarity matrices on val and test (row = text i, correct = motion i), one
protocol (core.protocols) and its equivalence views.  For every variant

    method in core.ensemble.METHODS (borda with similarity tie-break, rrf k=60, mean_sim)
    x weighting in ("equal", "val": proportional to the member's val R@1)

members are chosen by greedy forward selection on val (official R@1, then weighted recall) or all are used,
and the combination is evaluated on val and test with per-query credit, so each variant has

    val R@1 [CI], val gain vs the best member [paired CI], test R@1 [CI], test gain [paired CI].

The best member is the one with the highest val R@1 (the choice a user makes without an ensemble).
``choose``: the variant with the highest val R@1, kept only when its val gain over the best member is
decided (paired 95 % CI above 0); otherwise the ensemble IS the best member (``fallback``), and the report
says so with the CI.  Test numbers never take part in a choice.
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
    trace: list[dict] = field(default_factory=list)   # greedy selection steps (members by label)

    def ci(self, split: str, key: str = "recall_at_1") -> Interval:
        return interval(self.credits[split][key])


@dataclass
class FusionStudy:
    members: list[Scored]
    best_member: int                         # index of the member with the highest val R@1
    variants: list[Scored]
    chosen: Scored                           # a variant, or the best member itself (fallback)
    best_variant: Scored | None              # the variant with the best val R@1 (chosen unless fallback)
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
        for split in SPLITS:
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
                for k in COMPARED if k in model.credits[s] and k in best.credits[s]} for s in SPLITS}


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


def study(evaluator: Evaluator, labels: Sequence[str], *, methods: Sequence[str] = METHODS,
          weightings: Sequence[str] = WEIGHTINGS, select: str = "greedy", fixed_weights: Sequence[float] | None = None,
          allow_fallback: bool = True) -> FusionStudy:
    """Score every member and every fusion variant; choose (see module doc)."""
    members = [evaluator.scored(label, [i], "single", "-", [1.0]) for i, label in enumerate(labels)]
    best = max(range(len(members)), key=lambda i: (members[i].metrics["val"]["recall_at_1"],
                                                   members[i].metrics["val"]["weighted_recall"], -i))
    for m in members:
        m.gains = _gains(m, members[best])
    variants: list[Scored] = []
    if len(members) > 1:
        val_r1 = [m.metrics["val"]["recall_at_1"] for m in members]
        for method in methods:
            for weighting in weightings:
                weights = (list(fixed_weights) if weighting == "given" else
                           val_weights(val_r1) if weighting == "val" else [1.0] * len(members))
                chosen, trace = list(range(len(members))), []
                if select == "greedy":
                    picked = greedy_forward_selection(
                        len(members), lambda sub: evaluator.val_score(sub, method, [weights[i] for i in sub]))
                    chosen = picked.selected
                    trace = [{**step, "members": [labels[i] for i in step["members"]], "added": labels[step["added"]]}
                             for step in picked.trace]
                label = f"{method}, {weighting}-weighted ({len(chosen)} of {len(members)})"
                if len(chosen) == 1:
                    continue   # greedy kept one member: that is the member itself, already scored
                variant = evaluator.scored(label, chosen, method, weighting, [weights[i] for i in chosen])
                variant.gains, variant.trace = _gains(variant, members[best]), trace
                variants.append(variant)
    top = max(variants, key=lambda v: (v.metrics["val"]["recall_at_1"], v.metrics["val"]["weighted_recall"]),
              default=None)
    if top is None:
        chosen, fallback = members[best], True
        reason = ("greedy selection on val kept a single member for every fusion variant" if len(members) > 1
                  else "only one member")
    elif allow_fallback and not top.gains["val"]["recall_at_1"].low > 0:
        chosen, fallback = members[best], True
        reason = (f"no combination beats the best member on val: the best, {top.label}, gains "
                  f"{top.gains['val']['recall_at_1'].signed()} val R@1 (paired 95 % CI includes 0)")
    else:
        chosen, fallback = top, False
        reason = (f"{top.label} gains {top.gains['val']['recall_at_1'].signed()} val R@1 over the best member "
                  "(paired 95 % CI above 0)" if top.gains["val"]["recall_at_1"].low > 0 else
                  f"{top.label} as asked ({top.gains['val']['recall_at_1'].signed()} val R@1 vs the best member)")
    return FusionStudy(members, best, variants, chosen, top, fallback, reason,
                       {s: diversity(members, s) for s in SPLITS} if len(members) > 1 else {})
