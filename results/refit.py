"""The refit stage's results: every config's full-length runs over seeds, ranked by the seed MEAN.

    from results.refit import summarize_refit
    summary = summarize_refit("experiments/aligned_loss-2026...")   # reads <experiment>/refit/
    summary.members        # every finished full-length run: the ensemble's candidate members
    summary.configs        # refit/configs.parquet: one row per config, ranked

The plan (``refit/refit_plan.json``, written by search/refit.py) lists each run: config rank in the search,
source trial, seed, and the search trial that already IS the run when the search trained it to full length
with that seed.  A run's score is its LAST epoch's val metrics (the full-length model, no selection among
epochs); its per-query val credit comes from that checkpoint (core/bootstrap.py), so configs are compared
query by query:

* ``val_R1_mean`` / ``val_R1_std``: mean and sample std over the config's seeds (the seed spread);
* ``val_R1_lo`` / ``_hi``: 95 % bootstrap CI over the val queries of the seed-averaged per-query credit;
* ``diff_vs_best`` [``diff_lo``, ``diff_hi``]: paired difference of the seed means to the top config.

Outputs: ``refit/trials.parquet`` + ``epochs.parquet`` + plots (like a search), ``refit/configs.parquet``,
``refit/plots/refit_configs.png`` (each seed's R@1 and the mean with its CI), and the printed ranking.
"""
from __future__ import annotations

import json
import math
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from core.bootstrap import QueryCredit, credits_from_arrays, interval, mean_credit, paired_difference
from results.errors import ResultsError
from results.experiment_dir import STATE_GLOB, TrialRecord, read_experiment
from results.plots import plot_refit_configs
from results.report import load_trials, write_parquet, write_results
from results.tables import last_checkpoint, to_table

REFIT_DIR = "refit"
PLAN_FILE = "refit_plan.json"
CONFIGS_FILE = "configs.parquet"
PLOT_FILE = "refit_configs.png"
# Keys that do not make two configs different: what the refit itself sets, and where/how fast it runs.
NOT_IDENTITY = frozenset({"seed", "epochs", "num_threads", "device", "cache_dir"})


def config_identity(config: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in config.items() if k not in NOT_IDENTITY))


@dataclass
class RefitMember:
    """One finished full-length run: a candidate ensemble member."""
    run_id: str                        # the refit trial's id, or the reused search trial's
    config_rank: int                   # rank of its config in the search (1 = best trial's config)
    source_trial: str
    seed: int
    checkpoint: Path                   # the last epoch's checkpoint
    val: dict[str, float]              # last-epoch val metrics as reported
    credits: dict[str, QueryCredit]    # val per-query credit (empty for checkpoints without it)
    config: dict[str, Any]
    reused: bool


@dataclass
class RefitSummary:
    directory: Path
    members: list[RefitMember]
    configs: pa.Table
    text: str
    missing: list[str] = field(default_factory=list)     # planned runs without a finished checkpoint

    @property
    def best_config_rank(self) -> int | None:
        rows = self.configs.to_pylist()
        return rows[0]["search_config_rank"] if rows else None


def read_plan(experiment_dir: Path) -> list[dict[str, Any]]:
    path = Path(experiment_dir) / REFIT_DIR / PLAN_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))["runs"]
    except FileNotFoundError:
        raise ResultsError("this experiment has no refit plan.", where=path,
                           fix="run the search with --refit-top-k K (>= 1), or resume it with --resume.") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ResultsError(f"the refit plan is unreadable ({exc}).", where=path,
                           fix="resume the search (--resume) to rewrite it, or delete the refit/ folder to plan anew.")


def has_refit(experiment_dir: Path) -> bool:
    return (Path(experiment_dir) / REFIT_DIR / PLAN_FILE).is_file()


_WARNED_DAMAGED: set[Path] = set()


def _member(run: Mapping[str, Any], record: TrialRecord) -> RefitMember | None:
    """The run's last report and checkpoint, if it finished full length."""
    ckpt = last_checkpoint(record)
    if ckpt is None or not record.rows or record.rows[-1].get("epoch", 0) < run["config"]["epochs"]:
        return None
    credits: dict[str, QueryCredit] = {}
    emb = ckpt / "embeddings.npz"
    if emb.is_file():
        try:
            with np.load(emb, allow_pickle=False) as data:   # never unpickle
                credits = credits_from_arrays(data)
        except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:   # cut off or foreign: as absent
            if emb not in _WARNED_DAMAGED:   # once per file, however often the members are read
                _WARNED_DAMAGED.add(emb)
                print(f"warning: {emb}: damaged ({type(exc).__name__}: {str(exc)[:120]}); this refit member's "
                      "per-query credits are left out (its recall is read from its records).", file=sys.stderr)
    val = {k: v for k, v in record.rows[-1].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return RefitMember(record.trial_id, int(run["config_rank"]), run["source_trial"], int(run["seed"]), ckpt, val,
                       credits, dict(run["config"]), reused=run.get("reused_trial") is not None)


def refit_members(experiment_dir: Path) -> tuple[list[RefitMember], list[str]]:
    """(finished full-length runs in plan order, descriptions of the planned runs that are missing)."""
    experiment_dir = Path(experiment_dir)
    plan = read_plan(experiment_dir)
    search = {t.trial_id: t for t in read_experiment(experiment_dir).trials}
    trained: dict[tuple, TrialRecord] = {}
    if (experiment_dir / REFIT_DIR).is_dir() and any((experiment_dir / REFIT_DIR).glob(STATE_GLOB)):
        for record in read_experiment(experiment_dir / REFIT_DIR).trials:
            trained[(config_identity(record.config), record.config.get("seed"))] = record
    members, missing = [], []
    for run in plan:
        key = (config_identity(run["config"]), run["seed"])
        record = search.get(run["reused_trial"]) if run.get("reused_trial") else trained.get(key)
        member = _member(run, record) if record is not None else None
        if member is None:
            missing.append(f"config #{run['config_rank']} ({run['source_trial']}) seed {run['seed']}")
        else:
            members.append(member)
    return members, missing


def _config_rows(members: list[RefitMember], search_r1: Mapping[str, float]) -> list[dict[str, Any]]:
    by_config: dict[int, list[RefitMember]] = {}
    for m in members:
        by_config.setdefault(m.config_rank, []).append(m)
    rows = []
    for rank, runs in by_config.items():
        r1 = [m.val.get("recall_at_1", math.nan) for m in runs]
        row = {"rank": None, "search_config_rank": rank, "source_trial": runs[0].source_trial, "runs": len(runs),
               "seeds": ",".join(str(m.seed) for m in runs), "val_R1_mean": float(np.mean(r1)),
               "val_R1_std": float(np.std(r1, ddof=1)) if len(r1) > 1 else None,
               "search_best_R1": search_r1.get(runs[0].source_trial)}
        for key, column in (("weighted_recall", "val_WR_mean"), ("full_t2m_R1", "val_full_R1_mean"),
                            ("eq_recall_at_1", "val_eq_R1_mean")):
            values = [m.val[key] for m in runs if key in m.val]
            row[column] = float(np.mean(values)) if values else None
        credits = [m.credits["recall_at_1"] for m in runs if "recall_at_1" in m.credits]
        row["_credit"] = mean_credit(credits) if len(credits) == len(runs) else None
        ci = interval(row["_credit"]) if row["_credit"] is not None else None
        row["val_R1_lo"], row["val_R1_hi"] = (ci.low, ci.high) if ci else (None, None)
        row.update({f"config/{k}": v for k, v in runs[0].config.items() if k not in NOT_IDENTITY})
        rows.append(row)
    rows.sort(key=lambda r: (-r["val_R1_mean"], r["search_config_rank"]))
    for i, row in enumerate(rows, start=1):
        row["rank"] = i
        top, credit = rows[0]["_credit"], row["_credit"]
        diff = paired_difference(credit, top) if (i > 1 and top is not None and credit is not None) else None
        row["diff_vs_best"] = (row["val_R1_mean"] - rows[0]["val_R1_mean"]) if i > 1 else 0.0
        row["diff_lo"], row["diff_hi"] = (diff.low, diff.high) if diff else (None, None)
    for row in rows:
        row.pop("_credit")
    return rows


def format_ranking(rows: list[dict[str, Any]], n_val: int | None, epochs: int | None) -> str:
    head = (f"Refit ranking: {len(rows)} config(s), each trained to full length ({epochs} epochs) with several seeds; "
            f"ranked by the seed-mean val R@1 among 32 candidates{f' on {n_val} val queries' if n_val else ''}.\n"
            "CI = 95 % bootstrap over val queries of the seed-averaged credit; vs #1 = paired difference.")
    lines = [head, f"{'rank':>4}  {'config (trial)':<16} {'seeds':<8} {'mean R@1':>8} {'std':>5}  {'95% CI':<15} "
                   f"{'vs #1 (paired CI)':<22} {'search R@1':>10}"]
    for r in rows:
        ci = f"[{r['val_R1_lo']:.1f}, {r['val_R1_hi']:.1f}]" if r["val_R1_lo"] is not None else "-"
        diff = "-" if r["rank"] == 1 else (f"{r['diff_vs_best']:+.2f} [{r['diff_lo']:+.1f}, {r['diff_hi']:+.1f}]"
                                           if r["diff_lo"] is not None else f"{r['diff_vs_best']:+.2f}")
        std = f"{r['val_R1_std']:.2f}" if r["val_R1_std"] is not None else "-"
        search = f"{r['search_best_R1']:.2f}" if r["search_best_R1"] is not None else "-"
        lines.append(f"{r['rank']:>4}  #{r['search_config_rank']} {r['source_trial']:<13} {r['seeds']:<8} "
                     f"{r['val_R1_mean']:8.2f} {std:>5}  {ci:<15} {diff:<22} {search:>10}")
    if len(rows) > 1 and rows[1]["diff_hi"] is not None and rows[1]["diff_hi"] >= 0:
        lines.append("note: #1 and #2 are not distinguishable on val (the paired CI of #2 includes 0).")
    return "\n".join(lines)


def refit_ranking(experiment_dir: str | Path) -> tuple[list[RefitMember], list[dict[str, Any]], list[str]]:
    """(finished runs, one ranked row per config, missing runs) without writing anything."""
    experiment_dir = Path(experiment_dir).expanduser().resolve()
    members, missing = refit_members(experiment_dir)
    if not members:
        raise ResultsError("the refit has no finished full-length run yet" + (f" (missing: {', '.join(missing)})"
                           if missing else "") + ".", where=experiment_dir / REFIT_DIR,
                           fix="resume the search with run_search.py --resume --name NAME to finish the refit.")
    search_r1 = {r["trial_id"]: r["best_recall_at_1"] for r in load_trials(experiment_dir).to_pylist()}
    return members, _config_rows(members, search_r1), missing


def summarize_refit(experiment_dir: str | Path, quiet: bool = False) -> RefitSummary:
    """Rank the refit's configs; write refit/configs.parquet and its plot; print the ranking (see module doc)."""
    experiment_dir = Path(experiment_dir).expanduser().resolve()
    refit_dir = experiment_dir / REFIT_DIR
    members, rows, missing = refit_ranking(experiment_dir)
    if any(refit_dir.glob(STATE_GLOB)):
        write_results(refit_dir, quiet=True)          # refit/trials.parquet, epochs.parquet, plots like a search
    table = to_table(rows)
    write_parquet(table, refit_dir / CONFIGS_FILE)
    n_val = len(next(iter(members[0].credits.values()))) if members[0].credits else None
    text = format_ranking(rows, n_val, members[0].config.get("epochs"))
    plot_refit_configs(rows, members, refit_dir / "plots" / PLOT_FILE, f"{experiment_dir.name}: refit, val R@1 per seed")
    if missing:
        text += f"\nnote: {len(missing)} planned run(s) have no finished checkpoint: {', '.join(missing)}."
    if not quiet:
        print(text)
        print(f"tables: {refit_dir / CONFIGS_FILE}\nplot:   {refit_dir / 'plots' / PLOT_FILE}")
    return RefitSummary(refit_dir, members, table, text, missing)
