"""Ensemble of a search's best trials: pick members, encode val/test once, combine, evaluate, write files.

    from results.ensemble import build_ensemble, query
    res = build_ensemble("~/ray_results/my_search", top_k=5, method="borda", select="greedy")
    res.metrics["ensemble"]["test"]["recall_at_1"], res.directory          # <experiment>/ensemble/
    hits = query("~/ray_results/my_search", "a person waves with the left hand")   # or a checkpoint dir

Members: the top-K finished trials (status TERMINATED or ERROR: an errored trial's best checkpoint
is still a valid model) that still have a best checkpoint on disk, ranked by best val recall_at_1,
then best weighted recall, then trial id.  Each member's val and test splits are encoded ONCE;
its (N, N) similarity matrices feed every protocol and every candidate subset tried by greedy
selection.  Everything (members and ensemble) is evaluated with the SAME batches: the protocol
settings (eval_batches, eval_batch_size, eval_equivalence) and seed of the top-ranked member, so
that member's val numbers reproduce what its trial reported.  Combination methods, tie rules and
why the combination is done inside each protocol's candidate set: core/ensemble.py.

Fewer finished trials than K: ``build_ensemble`` (called after every search) uses what there is
and warns; the CLI refuses unless --allow-fewer (asking for 10 and silently getting 2 would be a
surprise there).  No finished trial with a checkpoint: ResultsError.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.ensemble import (METHODS, greedy_forward_selection, identity, make_combiner, official_metrics,
                           protocol_metrics, top_candidates)
from core.inference import (SplitEmbeddings, data_key, encode_queries, encode_split, is_checkpoint_dir,
                            load_checkpoint_model, open_data)
from core.metrics import equivalence_matrix, similarity_matrix
from results.ensemble_report import (ENSEMBLE_DIR, MANIFEST_FILE, METRICS_FILE, PLOT_FILE, PREDICTIONS_FILE,
                                     TOP_PREDICTIONS, format_table, plot_members_vs_ensemble, read_manifest,
                                     write_folder_atomically, write_json, write_predictions)
from results.errors import ResultsError
from results.report import load_trials

SPLITS = ("val", "test")
FINISHED = ("TERMINATED", "ERROR")
SELECTIONS = (None, "greedy")


@dataclass
class Candidate:
    trial_id: str
    checkpoint: Path
    status: str
    val_recall_at_1: float               # as the trial reported it (trials.parquet best_recall_at_1)
    val_weighted_recall: float | None


@dataclass
class EnsembleResult:
    directory: Path                      # <experiment>/ensemble
    method: str
    selection: str                       # "top_k" or "greedy"
    candidates: list[str]                # the top-K trial ids, ranked
    selected: list[str]                  # the members actually combined
    weights: list[float]                 # one per selected member
    metrics: dict[str, Any]              # metrics.json content
    table: str
    warnings: list[str] = field(default_factory=list)

    @property
    def files(self) -> dict[str, Path]:
        return {name: self.directory / name for name in (MANIFEST_FILE, METRICS_FILE, PREDICTIONS_FILE, PLOT_FILE)}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def rank_candidates(trials) -> list[Candidate]:
    """Finished trials with a best checkpoint on disk, best first (R@1, weighted recall, trial id)."""
    names = set(trials.column_names)
    out = []
    for row in trials.to_pylist():
        r1, ckpt = _number(row.get("best_recall_at_1")), row.get("best_checkpoint")
        if row.get("status") not in FINISHED or r1 is None or not ckpt or not is_checkpoint_dir(ckpt):
            continue
        wr = _number(row.get("best_weighted_recall")) if "best_weighted_recall" in names else None
        out.append(Candidate(str(row["trial_id"]), Path(ckpt), row["status"], r1, wr))
    return sorted(out, key=lambda c: (-c.val_recall_at_1, -(c.val_weighted_recall if c.val_weighted_recall
                                                           is not None else -math.inf), c.trial_id))


def select_candidates(experiment_dir: Path, top_k: int, allow_fewer: bool) -> tuple[list[Candidate], list[str]]:
    if top_k < 1:
        raise ResultsError(f"top_k={top_k}: an ensemble needs at least one member.", fix="pass --top-k 1 or more.")
    ranked = rank_candidates(load_trials(experiment_dir))
    if not ranked:
        raise ResultsError("no finished trial (TERMINATED/ERROR) with a best checkpoint on disk; nothing to "
                           "ensemble.", where=experiment_dir,
                           fix="wait for the search to finish trials, or check that checkpoints were kept "
                               "(CheckpointConfig num_to_keep >= 1).")
    notes = []
    if len(ranked) < top_k:
        msg = f"only {len(ranked)} finished trial(s) with a checkpoint, fewer than top_k={top_k}"
        if not allow_fewer:
            raise ResultsError(msg + ".", where=experiment_dir,
                               fix=f"pass --top-k {len(ranked)} or --allow-fewer to use all {len(ranked)}.")
        notes.append(msg + f"; the ensemble uses all {len(ranked)}.")
    return ranked[:top_k], notes


# ----------------------------------------------------------------------------- encoding

@dataclass
class _Encoded:
    candidate: Candidate
    flat_config: dict
    runtime: Any                         # core.config.RuntimeConfig
    seed: int
    splits: dict[str, SplitEmbeddings]


def encode_candidates(candidates: Sequence[Candidate], device=None, splits=SPLITS) -> list[_Encoded]:
    """Load each checkpoint, encode each split once; corpora are loaded once per data spec."""
    data_cache: dict[tuple, Any] = {}
    out = []
    for cand in candidates:
        loaded = load_checkpoint_model(cand.checkpoint, device)
        key = data_key(loaded.config)
        if key not in data_cache:
            data_cache[key] = open_data(loaded.config, loaded.mean, loaded.std)
        embs = {s: encode_split(loaded, data_cache[key], s) for s in splits}
        out.append(_Encoded(cand, loaded.flat_config, loaded.config.runtime, loaded.config.optim.seed, embs))
        del loaded  # the model is not needed once both splits are encoded
    for split in splits:
        ref = out[0].splits[split]
        for enc in out[1:]:
            if enc.splits[split].ids != ref.ids:
                raise ResultsError(
                    f"members {out[0].candidate.trial_id} and {enc.candidate.trial_id} were trained on different "
                    f"datasets ({out[0].flat_config.get('data')!r} vs {enc.flat_config.get('data')!r}): their "
                    f"{split} splits hold different motions, so their rankings cannot be combined.",
                    fix="ensemble trials of one search over one dataset (or pick members with --top-k).")
    return out


@dataclass
class _Protocol:
    n_batches: int
    batch_size: int
    seed: int
    eval_equivalence: bool

    def kwargs(self, emb: SplitEmbeddings) -> dict:
        has_groups = any(g is not None for g in emb.groups)
        eq = equivalence_matrix(emb.captions, emb.groups if has_groups else None)
        eq_view = eq if (not self.eval_equivalence and eq.sum() > len(eq)) else None
        return dict(n_batches=self.n_batches, batch_size=self.batch_size, seed=self.seed,
                    equivalence=eq if self.eval_equivalence else None, eq_view=eq_view)


# ----------------------------------------------------------------------------- build

PREDICTIONS_FORMAT = {
    "file": PREDICTIONS_FILE, "split": "test", "candidates": "the whole test split",
    "columns": "query_id (id of the motion whose first caption is the query = the correct answer), query_text, "
               f"rank_1..rank_{TOP_PREDICTIONS} (motion ids, best first; equal scores keep split order)"}


def _greedy(method: str, weights: list[float], val_sims: list[np.ndarray], val_kwargs: dict,
            trial_ids: list[str]) -> tuple[list[int], list[dict]]:
    """Greedy forward selection on the official val protocol, scored by (R@1, weighted recall)."""
    official_kwargs = {k: v for k, v in val_kwargs.items() if k != "eq_view"}

    def score(subset: tuple[int, ...]) -> tuple[float, float]:
        combiner = make_combiner(method, [weights[i] for i in subset])
        t2m = official_metrics([val_sims[i] for i in subset], combiner, **official_kwargs)["t2m"]
        return t2m["R1"], t2m["WR"]

    greedy = greedy_forward_selection(len(val_sims), score)
    for step in greedy.trace:   # indices -> trial ids for the manifest
        step["members"] = [trial_ids[i] for i in step["members"]]
        step["added"] = trial_ids[step["added"]]
    return greedy.selected, greedy.trace


def _check_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0] * n
    w = [float(x) for x in weights]
    if len(w) != n or not all(math.isfinite(x) and x >= 0 for x in w) or sum(w) <= 0:
        raise ResultsError(f"weights {w} do not fit the {n} member(s): expected {n} numbers >= 0 with a positive "
                           "sum, one per member in rank order.", fix=f"pass exactly {n} --weights, or none.")
    return w


def build_ensemble(experiment_dir: str | Path, top_k: int = 5, method: str = "borda", select: str | None = None,
                   quiet: bool = False, *, weights: Sequence[float] | None = None, allow_fewer: bool = True,
                   device=None) -> EnsembleResult:
    """Combine the top-K trials of an experiment and write ``<experiment>/ensemble/`` (see module doc)."""
    experiment_dir = Path(experiment_dir).expanduser().resolve()
    if method not in METHODS:
        raise ResultsError(f"method {method!r} is unknown.", fix=f"use one of {', '.join(METHODS)}.")
    if select not in SELECTIONS:
        raise ResultsError(f"select {select!r} is unknown.", fix="use 'greedy' or leave it out (all top-K).")
    t0 = time.perf_counter()
    candidates, notes = select_candidates(experiment_dir, top_k, allow_fewer)
    all_weights = _check_weights(weights, len(candidates))
    for note in notes:
        warnings.warn(note, stacklevel=2)
    encoded = encode_candidates(candidates, device)
    top = encoded[0]
    protocol = _Protocol(top.runtime.eval_batches, top.runtime.eval_batch_size, top.seed, top.runtime.eval_equivalence)
    sims = {s: [similarity_matrix(e.splits[s].text, e.splits[s].motion) for e in encoded] for s in SPLITS}  # (N, N)
    kwargs = {s: protocol.kwargs(top.splits[s]) for s in SPLITS}

    def evaluate(members: Sequence[int], combiner) -> dict[str, dict[str, float]]:
        return {s: protocol_metrics([sims[s][i] for i in members], combiner, **kwargs[s]) for s in SPLITS}

    chosen, trace = list(range(len(encoded))), []
    if select == "greedy":
        chosen, trace = _greedy(method, all_weights, sims["val"], kwargs["val"], [c.trial_id for c in candidates])
    sel_weights = [all_weights[i] for i in chosen]
    combiner = make_combiner(method, sel_weights)
    member_metrics = {e.candidate.trial_id: evaluate([i], identity) for i, e in enumerate(encoded)}
    ensemble_metrics = evaluate(chosen, combiner)

    best_id = max(member_metrics, key=lambda t: (member_metrics[t]["val"]["recall_at_1"],
                                                 member_metrics[t]["val"]["weighted_recall"]))
    gain = {s: {k: ensemble_metrics[s][k] - member_metrics[best_id][s][k]
                for k in ("recall_at_1", "weighted_recall", "full_t2m_R1")} for s in SPLITS}
    selection = "greedy" if select == "greedy" else "top_k"
    metrics = {"method": method, "selection": selection, "protocol": vars(protocol),
               "split_sizes": {s: len(top.splits[s].ids) for s in SPLITS},
               "members": member_metrics, "ensemble": ensemble_metrics,
               "best_single_member": best_id, "ensemble_minus_best_member": gain}
    label = f"ensemble ({method}, {len(chosen)} of {len(encoded)})"
    labels = [f"{c.trial_id}{'*' if i in chosen else ''}" for i, c in enumerate(candidates)]
    table = format_table([*zip(labels, member_metrics.values()), (label, ensemble_metrics)],
                         title=f"{experiment_dir.name}: members (* = in the ensemble) vs {label}; official "
                               f"protocol {protocol.n_batches} x {protocol.batch_size} unless full/small")

    test = top.splits["test"]
    order, _ = top_candidates(combiner([sims["test"][i] for i in chosen]), TOP_PREDICTIONS)   # whole test split
    ranked_ids = [[test.ids[j] for j in row] for row in order]
    manifest = {
        "format": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "experiment_dir": str(experiment_dir),
        "method": method, "selection": selection, "top_k": top_k,
        "members": [{"rank": i + 1, "trial_id": e.candidate.trial_id, "checkpoint": str(e.candidate.checkpoint),
                     "status": e.candidate.status, "selected": i in chosen, "weight": all_weights[i],
                     "reported_val_recall_at_1": e.candidate.val_recall_at_1,
                     "reported_val_weighted_recall": e.candidate.val_weighted_recall, "config": e.flat_config}
                    for i, e in enumerate(encoded)],
        "selected": [candidates[i].trial_id for i in chosen], "weights": sel_weights,
        "greedy_trace": trace, "protocol": vars(protocol), "warnings": notes, "predictions": PREDICTIONS_FORMAT,
    }
    plot_labels = [*labels, f"ensemble\n({method})"]
    plot_metrics = [*member_metrics.values(), ensemble_metrics]
    directory = write_folder_atomically(experiment_dir, {
        MANIFEST_FILE: lambda p: write_json(p, manifest),
        METRICS_FILE: lambda p: write_json(p, metrics),
        PREDICTIONS_FILE: lambda p: write_predictions(p, test.ids, test.captions, ranked_ids),
        PLOT_FILE: lambda p: plot_members_vs_ensemble(plot_labels, plot_metrics, p,
                                                      f"{experiment_dir.name}: test split, members vs ensemble"),
    })
    result = EnsembleResult(directory, method, selection, [c.trial_id for c in candidates], manifest["selected"],
                            sel_weights, metrics, table, notes)
    if not quiet:
        print(table)
        for note in notes:
            print(f"note: {note}")
        g = gain["test"]
        print(f"ensemble vs best member {best_id} on test: R@1 {g['recall_at_1']:+.2f}, weighted recall "
              f"{g['weighted_recall']:+.2f} (points); {time.perf_counter() - t0:.1f} s\nwrote {directory}")
    return result


# ----------------------------------------------------------------------------- query

@dataclass
class QueryHit:
    rank: int
    motion_id: str
    caption: str                         # the motion's first caption
    score: float                         # cosine (one model), Borda points or mean z-score (ensemble)


def query(target: str | Path, text: str, split: str = "test", top: int = TOP_PREDICTIONS,
          device=None) -> list[QueryHit]:
    """Top motions of ``split`` for a free-text query, by an experiment's ensemble or one checkpoint dir."""
    target = Path(target).expanduser().resolve()
    if is_checkpoint_dir(target):
        checkpoints, weights, method = [target], [1.0], None
    elif (target / ENSEMBLE_DIR / MANIFEST_FILE).is_file():
        manifest = read_manifest(target)
        chosen = [m for m in manifest["members"] if m["selected"]]
        checkpoints = [Path(m["checkpoint"]) for m in chosen]
        weights, method = [float(m["weight"]) for m in chosen], manifest["method"]
        missing = [str(p) for p in checkpoints if not is_checkpoint_dir(p)]
        if missing:
            raise ResultsError(f"ensemble member checkpoint(s) no longer on disk: {', '.join(missing)}.",
                               where=target / ENSEMBLE_DIR / MANIFEST_FILE, fix="rebuild: run_ensemble.py EXPERIMENT_DIR.")
    else:
        raise ResultsError("neither a checkpoint dir (checkpoint.pt) nor an experiment with an ensemble "
                           f"({ENSEMBLE_DIR}/{MANIFEST_FILE}).", where=target,
                           fix="build the ensemble first (run_ensemble.py EXPERIMENT_DIR --top-k 5) or pass a "
                               "trial's checkpoint_* folder.")
    data_cache: dict[tuple, Any] = {}
    rows, motions = [], None
    for ckpt in checkpoints:
        loaded = load_checkpoint_model(ckpt, device)
        key = data_key(loaded.config)
        if key not in data_cache:
            data_cache[key] = open_data(loaded.config, loaded.mean, loaded.std)
        emb = encode_split(loaded, data_cache[key], split)
        if motions is not None and emb.ids != motions.ids:
            raise ResultsError(f"ensemble members disagree on the {split} split (different datasets).", where=ckpt)
        motions = emb
        rows.append(similarity_matrix(encode_queries(loaded, [text], data_cache[key]), emb.motion))  # (1, N)
    scores = identity(rows) if method is None else make_combiner(method, weights)(rows)
    order, values = top_candidates(scores, top)
    return [QueryHit(r + 1, motions.ids[j], motions.captions[j], float(v))
            for r, (j, v) in enumerate(zip(order[0], values[0]))]
