"""Who can be an ensemble member, and their val/test embeddings (each split encoded ONCE per member).

Sources (``members=``):
* ``refit``: every finished full-length run of the refit stage (results/refit.py): seeds x the top
  configs, each at its LAST epoch (no selection among epochs).  Configs are taken in the refit's
  ranking (seed mean), at most ``top_k`` configs.
* ``search``: the search's top-K finished trials (status TERMINATED or ERROR: an errored trial's best
  checkpoint is still a valid model) that still have a best checkpoint, ranked by best val R@1, then
  best weighted recall, then trial id (trials.parquet's rank).
* ``auto`` (default): ``refit`` when the experiment has a finished refit run, else ``search``.

With ``eval_data`` (--eval-data, core/crossdata.py) each member also encodes the other dataset's split, as a
third split ``eval_data``, normalized with the member's own training mean/std; it is reported, never chosen on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from core.crossdata import EVAL_KEY, EvalData, describe_eval, open_eval_data
from core.inference import (SplitEmbeddings, data_key, encode_split, is_checkpoint_dir, load_checkpoint_model,
                            open_data, stored_split_embeddings)
from results.errors import ResultsError
from results.refit import has_refit, refit_members, refit_ranking
from results.report import load_trials
from results.tables import trial_rank_key

SPLITS = ("val", "test")
FINISHED = ("TERMINATED", "ERROR")
SOURCES = ("auto", "refit", "search")


@dataclass
class Candidate:
    member_id: str                       # trial id (search) or "<run trial id>" (refit)
    label: str                           # what tables show, e.g. "c27c62ba" or "#1 c27c62ba s1"
    checkpoint: Path
    status: str
    val_recall_at_1: float               # as its run reported it
    val_weighted_recall: float | None
    config_rank: int | None = None       # refit: rank of its config in the search
    seed: int | None = None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def search_candidates(trials) -> list[Candidate]:
    """Finished search trials (trials.parquet rows) with a best checkpoint on disk, best first."""
    out = []
    for row in trials.to_pylist():
        r1, ckpt = _number(row.get("best_recall_at_1")), row.get("best_checkpoint")
        if row.get("status") not in FINISHED or r1 is None or not ckpt or not is_checkpoint_dir(ckpt):
            continue
        out.append(Candidate(str(row["trial_id"]), str(row["trial_id"]), Path(ckpt), row["status"], r1,
                             _number(row.get("best_weighted_recall"))))
    return sorted(out, key=lambda c: trial_rank_key(c.val_recall_at_1, c.val_weighted_recall, c.member_id))


def refit_candidates(experiment_dir: Path, top_k: int) -> list[Candidate]:
    """The refit's finished runs of its top ``top_k`` configs (by seed-mean val R@1), config by config."""
    members, rows, _ = refit_ranking(experiment_dir)
    order = [r["search_config_rank"] for r in rows][:top_k]
    runs = sorted((m for m in members if m.config_rank in order),
                  key=lambda m: (order.index(m.config_rank), m.seed))
    return [Candidate(m.run_id, f"#{m.config_rank} {m.source_trial} s{m.seed}", m.checkpoint, "TERMINATED",
                      m.val.get("recall_at_1", math.nan), m.val.get("weighted_recall"), m.config_rank, m.seed)
            for m in runs]


def select_candidates(experiment_dir: Path, top_k: int, allow_fewer: bool, source: str = "auto"
                      ) -> tuple[list[Candidate], str, list[str]]:
    """(candidates, the source used, notes)."""
    if top_k < 1:
        raise ResultsError(f"top_k={top_k}: an ensemble needs at least one member.", fix="pass --top-k 1 or more.")
    if source not in SOURCES:
        raise ResultsError(f"members={source!r} is unknown.", fix=f"use one of {', '.join(SOURCES)}.")
    if source in ("auto", "refit") and has_refit(experiment_dir):
        finished, missing = refit_members(experiment_dir)
        refit = refit_candidates(experiment_dir, top_k) if finished else []
        if refit:   # a planned run left out (unfinished, or its records damaged) is said, not silently dropped
            notes = [f"{len(missing)} planned refit run(s) are not members (unfinished, or their records are "
                     f"unreadable: python -m results says which): {', '.join(missing[:4])}"] if missing else []
            return refit, "refit", notes
    if source == "refit":
        raise ResultsError("the experiment has no finished refit run to ensemble.", where=experiment_dir,
                           fix="run or resume the search with --refit-top-k K, or pass --members search.")
    ranked = search_candidates(load_trials(experiment_dir))
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
    return ranked[:top_k], "search", notes


@dataclass
class Encoded:
    candidate: Candidate
    flat_config: dict
    runtime: Any                         # core.config.RuntimeConfig
    splits: dict[str, SplitEmbeddings]   # val, test [, eval_data]
    eval_data: dict | None = None        # what the eval_data split is (core.crossdata.describe_eval)


def encode_candidates(candidates: Sequence[Candidate], device=None, splits=SPLITS,
                      eval_data: EvalData | None = None) -> list[Encoded]:
    """Load each checkpoint, encode each split once; corpora are loaded once per data spec (the other dataset
    once, its layout checked against each training corpus before anything is encoded with it)."""
    data_cache: dict[tuple, Any] = {}
    other = None
    out = []
    for cand in candidates:
        loaded = load_checkpoint_model(cand.checkpoint, device)
        key = data_key(loaded.config)
        if key not in data_cache:
            data_cache[key] = open_data(loaded.config, loaded.mean, loaded.std)
            if eval_data is not None:
                opened = open_eval_data(eval_data, data_cache[key], loaded.config.data.data)
                other = other if other is not None else opened
        # The val split was encoded by the trial itself at that epoch (embeddings.npz): only test is new.
        embs = {s: stored_split_embeddings(loaded, data_cache[key], s) or encode_split(loaded, data_cache[key], s)
                for s in splits}
        described = None
        if other is not None:
            embs[EVAL_KEY] = encode_split(loaded, other, eval_data.split)   # the member's own normalization
            described = describe_eval(eval_data, other, loaded)
        out.append(Encoded(cand, loaded.flat_config, loaded.config.runtime, embs, described))
        del loaded  # the model is not needed once its splits are encoded
    for split in splits:
        ref = out[0].splits[split]
        for enc in out[1:]:
            if enc.splits[split].ids != ref.ids:
                raise ResultsError(
                    f"members {out[0].candidate.member_id} and {enc.candidate.member_id} were trained on different "
                    f"datasets ({out[0].flat_config.get('data')!r} vs {enc.flat_config.get('data')!r}): their "
                    f"{split} splits hold different motions, so their rankings cannot be combined.",
                    fix="ensemble trials of one search over one dataset (or pick members with --top-k).")
    return out
