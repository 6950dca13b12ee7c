"""Ensemble of a search's models: pick members, encode val/test once, study every fusion, write ensemble/.

    from results.ensemble import build_ensemble, query
    res = build_ensemble("experiments/my_search")                       # auto: refit members, best fusion
    res.chosen, res.fallback, res.metrics["ensemble_minus_best_member"]["test"]["recall_at_1"]
    hits = query("experiments/my_search", "a person waves with the left hand")   # or a checkpoint dir

Members (results/ensemble_members.py): the refit's full-length runs (seeds x top configs) when the
experiment has a refit, else the search's top-K trials.  Each member's val and test splits are encoded
ONCE; its (N, N) similarity matrices feed every protocol and every subset tried by greedy selection.
Members and fusions are evaluated with the SAME protocol (eval batches, evaluation seed, tie rule,
equivalence views of the top member's config), so per-query credits pair up for the CIs.

Fusion (results/fusion.py): every method (Borda with a similarity tie-break, RRF, z-scored mean similarity)
over all members with equal and val weights, and over greedily chosen members, is scored and reported;
with everything on ``auto`` the pre-registered default (mean_sim, equal weights, members chosen greedily on
val) is kept only when its val gain over the best member has a paired 95 % CI above 0 - otherwise the
ensemble is the best member alone, and the report says so with the CI.  An explicit ``method`` / ``weighting`` / ``select``
builds exactly that combination, reporting its gain (no fallback).  Test numbers are reported, never used
to choose.  Fewer finished trials than K: used with a warning (the CLI refuses unless --allow-fewer).

Cross-dataset (``eval_data=EvalData(...)``, --eval-data; core/crossdata.py): every member and fusion is also
scored on the other dataset's split, as the third split ``eval_data`` of the table and of metrics.json (with
its CIs and paired gains), each member normalizing it with its own training mean/std.  Reported, never chosen on.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from core import lockfile
from core.crossdata import EVAL_KEY, EvalData
from core.ensemble import METHODS, make_combiner, top_candidates
from core.evaluate import equivalence_views, protocol_settings
from core.metrics import similarity_matrix
from core.protocols import identity
from results.ensemble_members import Encoded, encode_candidates, select_candidates
from results.ensemble_report import (MANIFEST_FILE, METRICS_FILE, PLOT_FILE, PREDICTIONS_FILE, TOP_PREDICTIONS,
                                     format_table, plot_members_vs_ensemble, stored_path, verdict_text,
                                     write_folder_atomically, write_json, write_predictions)
from results.errors import ResultsError
from results.fusion import DEFAULT_CHOICE, WEIGHTINGS, Evaluator, FusionStudy, Scored, Variant, study
from results.retrieval import Retriever

SELECTIONS = ("auto", "all", "greedy")


@dataclass
class EnsembleResult:
    directory: Path                      # <experiment>/ensemble
    source: str                          # "refit" or "search"
    candidates: list[str]                # member labels, ranked
    chosen: str                          # label of the chosen model (a fusion, or the best member on fallback)
    method: str                          # "single" on fallback, else a core.ensemble method
    selected: list[str]                  # member ids actually combined
    weights: list[float]
    fallback: bool
    metrics: dict[str, Any]              # metrics.json content
    table: str
    verdict: str                         # what was chosen and its test gain with the paired CI
    warnings: list[str] = field(default_factory=list)

    @property
    def files(self) -> dict[str, Path]:
        return {name: self.directory / name for name in (MANIFEST_FILE, METRICS_FILE, PREDICTIONS_FILE, PLOT_FILE)}


def resolve_choice(method: str, weighting: str, select: str, weights, n: int) -> tuple[Variant, bool]:
    """(the fusion to keep, whether it is the automatic default, which may fall back to the best member)."""
    if method != "auto" and method not in METHODS:
        raise ResultsError(f"method {method!r} is unknown.", fix=f"use auto or one of {', '.join(METHODS)}.")
    if weighting != "auto" and weighting not in WEIGHTINGS:
        raise ResultsError(f"weighting {weighting!r} is unknown.", fix=f"use auto or one of {', '.join(WEIGHTINGS)}.")
    if select not in SELECTIONS:
        raise ResultsError(f"select {select!r} is unknown.", fix=f"use one of {', '.join(SELECTIONS)}.")
    if weights is not None:
        w = [float(x) for x in weights]
        if len(w) != n or not all(math.isfinite(x) and x >= 0 for x in w) or sum(w) <= 0:
            raise ResultsError(f"weights {w} do not fit the {n} member(s): expected {n} numbers >= 0 with a positive "
                               "sum, one per member in rank order.", fix=f"pass exactly {n} --weights, or none.")
    d = DEFAULT_CHOICE
    choice = Variant(d.method if method == "auto" else method,
                     "given" if weights is not None else d.weighting if weighting == "auto" else weighting,
                     # given weights are one per member, so "auto" keeps every member they weight
                     ("all" if weights is not None else d.select) if select == "auto" else select)
    return choice, (method, weighting, select) == ("auto", "auto", "auto") and weights is None


def _metrics_json(fs: FusionStudy, encoded: list[Encoded], source: str, settings, labels: list[str]) -> dict:
    best = fs.members[fs.best_member]
    splits = list(encoded[0].splits)      # val, test [, eval_data]

    def entry(m: Scored) -> dict:
        return {"label": m.label, "method": m.method, "weighting": m.weighting, "selection": m.select,
                "members": [encoded[i].candidate.member_id for i in m.members], "weights": m.weights,
                "greedy_trace": m.trace,
                **{s: m.metrics[s] for s in splits},
                "minus_best_member": {s: {k: vars(ci) for k, ci in m.gains.get(s, {}).items()} for s in splits}}

    eval_data = ({**encoded[0].eval_data, "normalization": "each member's own training mean/std (its checkpoint's)"}
                 if encoded[0].eval_data else None)
    return {"source": source, "protocol": vars(settings), EVAL_KEY: eval_data,
            "split_sizes": {s: len(encoded[0].splits[s].ids) for s in splits},
            "members": {e.candidate.member_id: entry(m) for e, m in zip(encoded, fs.members)},
            "variants": [entry(v) for v in fs.variants], "chosen": entry(fs.chosen), "fallback": fs.fallback,
            "reason": fs.reason, "best_single_member": encoded[fs.best_member].candidate.member_id,
            "ensemble": {s: fs.chosen.metrics[s] for s in splits},
            "ensemble_minus_best_member": {s: {k: vars(ci) for k, ci in fs.chosen.gains.get(s, {}).items()}
                                           for s in splits},
            "diversity": fs.diversity, "labels": labels, "best_member_label": best.label}


def build_ensemble(experiment_dir: str | Path, top_k: int = 5, method: str = "auto", select: str = "auto",
                   quiet: bool = False, *, weighting: str = "auto", weights: Sequence[float] | None = None,
                   members: str = "auto", allow_fewer: bool = True, device=None,
                   eval_data: EvalData | None = None) -> EnsembleResult:
    """Study the fusions of an experiment's members and write ``<experiment>/ensemble/`` (see module doc)."""
    experiment_dir = Path(experiment_dir).expanduser().resolve()
    t0 = time.perf_counter()
    candidates, source, notes = select_candidates(experiment_dir, top_k, allow_fewer, members)
    choice, automatic = resolve_choice(method, weighting, select, weights, len(candidates))
    if not os.access(experiment_dir, os.W_OK):   # say so before encoding every member, not after
        raise ResultsError("cannot write the ensemble here (read-only filesystem or no permission).",
                           where=experiment_dir, fix="copy the folder somewhere writable (cp -r) and build it there; "
                                                     "--query works on it as it is.")
    with one_ensemble_writer(experiment_dir):   # a second build at once exits with one line, never half-writes
        for note in notes:
            warnings.warn(note, stacklevel=2)
        encoded = encode_candidates(candidates, device, eval_data=eval_data)
        settings = protocol_settings(encoded[0].runtime)
        splits = list(encoded[0].splits)      # val, test [, eval_data]
        sims = {s: [similarity_matrix(e.splits[s].text, e.splits[s].motion) for e in encoded] for s in splits}  # (N, N)
        views = {s: equivalence_views(encoded[0].splits[s].captions, encoded[0].splits[s].groups, encoded[0].runtime)
                 for s in splits}
        labels = [c.label for c in candidates]
        fs = study(Evaluator(sims, settings, views), labels, choice=choice, fixed_weights=weights,
                   allow_fallback=automatic)
        metrics = _metrics_json(fs, encoded, source, settings, labels)
        n_batches = settings.batches_for(len(encoded[0].splits["test"].ids))
        title = (f"{experiment_dir.name}: {len(encoded)} {source} member(s) and their fusions; R@1 among "
                 f"{settings.batch_size} candidates ({n_batches} batches), CI = 95 % bootstrap over queries, gains paired")
        if eval_data is not None:
            e = encoded[0].eval_data
            title += (f"\neval-data = {eval_data.describe()}: {e['name']}, {e['motions']} motions, normalized with each "
                      "member's training mean/std; reported, never chosen on")
        table = format_table(fs, title=title)
        verdict = verdict_text(fs, encoded)
        chosen_ids = [encoded[i].candidate.member_id for i in fs.chosen.members]
        combiner = identity if fs.chosen.method == "single" else make_combiner(fs.chosen.method, fs.chosen.weights)
        test = encoded[0].splits["test"]
        order, _ = top_candidates(combiner([sims["test"][i] for i in fs.chosen.members]), TOP_PREDICTIONS)   # whole split
        manifest = {
            "format": 2, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "experiment_dir": str(experiment_dir),
            "source": source, "method": fs.chosen.method, "weighting": fs.chosen.weighting, "selection": fs.chosen.select,
            "fallback": fs.fallback, "reason": fs.reason, "top_k": top_k,
            "members": [{"rank": i + 1, "member_id": e.candidate.member_id, "label": e.candidate.label,
                         "checkpoint": stored_path(e.candidate.checkpoint, experiment_dir), "status": e.candidate.status,
                         "selected": i in fs.chosen.members,
                         "weight": fs.chosen.weights[fs.chosen.members.index(i)] if i in fs.chosen.members else 0.0,
                         "reported_val_recall_at_1": e.candidate.val_recall_at_1, "config": e.flat_config}
                        for i, e in enumerate(encoded)],
            "selected": chosen_ids, "weights": fs.chosen.weights, "protocol": vars(settings), "warnings": notes,
            EVAL_KEY: eval_data.to_json() if eval_data is not None else None,
            "predictions": PREDICTIONS_FORMAT,
        }
        directory = write_folder_atomically(experiment_dir, {
            MANIFEST_FILE: lambda p: write_json(p, manifest),
            METRICS_FILE: lambda p: write_json(p, metrics),
            PREDICTIONS_FILE: lambda p: write_predictions(p, test.ids, test.captions,
                                                          [[test.ids[j] for j in row] for row in order]),
            PLOT_FILE: lambda p: plot_members_vs_ensemble(fs, p, f"{experiment_dir.name}: test split, members vs fusions"),
        })
        result = EnsembleResult(directory, source, labels, fs.chosen.label, fs.chosen.method, chosen_ids,
                                fs.chosen.weights, fs.fallback, metrics, table, verdict, notes)
        if not quiet:
            print(table)
            for note in notes:
                print(f"note: {note}")
            print(f"{verdict}\n{time.perf_counter() - t0:.1f} s; wrote {directory}")
        return result


ENSEMBLE_LOCK = ".ensemble.lock"   # in the experiment folder, held while one build writes ensemble/


@contextmanager
def one_ensemble_writer(experiment_dir: Path) -> Iterator[None]:
    """One build of an experiment's ensemble at a time (two at once removed each other's temp folders)."""
    with ExitStack() as stack:
        try:
            stack.enter_context(lockfile.held(experiment_dir / ENSEMBLE_LOCK))
        except lockfile.LockHeld as err:
            raise ResultsError(f"another ensemble build is writing this experiment's ensemble/ ({err.describe()}).",
                               where=experiment_dir, fix="wait for it to finish (its result is the ensemble), or "
                                                         "stop it and run again.") from None
        yield


PREDICTIONS_FORMAT = {
    "file": PREDICTIONS_FILE, "split": "test", "candidates": "the whole test split",
    "columns": "query_id (id of the motion whose first caption is the query = the correct answer), query_text, "
               f"rank_1..rank_{TOP_PREDICTIONS} (motion ids, best first; equal scores keep split order)"}


# ----------------------------------------------------------------------------- query

@dataclass
class QueryHit:
    rank: int
    motion_id: str
    caption: str                         # the motion's first caption
    score: float                         # cosine (one model), Borda points or mean z-score (ensemble)


def query(target: str | Path, text: str, split: str = "test", top: int = TOP_PREDICTIONS,
          device=None) -> list[QueryHit]:
    """Top motions of ``split`` for a free-text query, by an experiment's ensemble or one checkpoint dir
    (results/retrieval.py ranks; an index is searched with Retriever.index)."""
    retriever = Retriever(target, device)
    answer = retriever.search(text, retriever.split(split), k=top)
    return [QueryHit(h.rank, h.motion_id, h.captions[0], h.score) for h in answer.hits]
