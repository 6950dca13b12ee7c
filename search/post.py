"""After the search: results tables + leaderboard (results/), the refit ranking (results.refit), with
``--eval-data`` the best checkpoint on the in-domain test split and the other dataset (``eval_data.json``,
core/crossdata.py), the ensemble (results.ensemble) and the W&B summary.

They read the experiment directory from disk, so they run only for local (or mounted) storage;
with s3:// or gs:// storage, run ``python -m results`` / ``run_ensemble.py`` on a synced copy.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .args import SearchArgs
from .trial_config import METRIC   # maximized: results/ ranks by it (results.tables.trial_rank_key)

EVAL_FILE = "eval_data.json"   # --eval-data: the best checkpoint's test metrics, in-domain and on the other dataset


@dataclass
class SearchOutcome:
    experiment_path: str
    num_trials: int
    num_errors: int
    interrupted: bool
    best_trial_id: str | None
    best_config: dict[str, Any] | None
    best_metrics: dict[str, Any] | None
    best_checkpoint: str | None
    leaderboard: str
    results: Any = None           # results.ExperimentResults when results/ is available
    refit: Any = None             # results.refit.RefitSummary after a refit
    ensemble: Any = None          # whatever ensemble.build_ensemble returned
    wandb_summary_dir: str | None = None
    eval_report: dict | None = None   # --eval-data: what EVAL_FILE holds
    seconds: dict[str, float] = field(default_factory=dict)   # wall time per stage: search, refit


def _best_report(result) -> dict[str, Any] | None:
    """The report of a Tune result where R@1 peaked (results/'s rule: the earliest of equal peaks)."""
    from results.tables import best_row

    df = result.metrics_dataframe
    if df is None or METRIC not in df:
        return None
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items() if not k.startswith("config/")}
            for row in df.to_dict("records")]
    for row in rows:
        row.setdefault("epoch", row.get("training_iteration"))
    return best_row(rows, METRIC)


def best_from_grid(grid, trial_id: str | None = None,
                   base: dict[str, Any] | None = None) -> tuple[str | None, dict | None, dict | None, str | None]:
    """(trial_id, config, metrics at its best epoch, best checkpoint) of the given trial, or of the best trial by
    results/'s one ranking rule (``results.tables.trial_rank_key``) over every epoch each trial reported (ASHA-
    stopped trials end on an early epoch)."""
    from results.tables import best_row, trial_rank_key

    scored = [(r, report) for r in grid if (report := _best_report(r)) is not None]
    if trial_id is not None:
        scored = [(r, report) for r, report in scored if r.metrics.get("trial_id") == trial_id]
    if not scored:
        return None, None, None, None
    best, metrics = min(scored, key=lambda item: trial_rank_key(
        item[1][METRIC], item[1].get("weighted_recall"), item[0].metrics.get("trial_id", "")))
    candidates = [{**m, "epoch": m.get("epoch", m.get("training_iteration")), "path": c.path}
                  for c, m in (best.best_checkpoints or [])]
    chosen = best_row(candidates, METRIC)
    return best.metrics.get("trial_id"), {**(base or {}), **best.config}, metrics, chosen["path"] if chosen else None


def leaderboard_from_grid(grid, top: int = 10) -> str:
    """Plain-text top-N, in results/'s order, for when results/ cannot read the experiment (cloud storage, an
    interrupted search)."""
    from results.tables import trial_rank_key

    rows = []
    for r in grid:
        report = _best_report(r)
        if report is not None:
            rows.append((report[METRIC], report.get("weighted_recall", float("nan")),
                         int(r.metrics_dataframe["training_iteration"].max()), r.metrics.get("trial_id", "?")))
    rows.sort(key=lambda row: trial_rank_key(row[0], row[1], row[3]))
    lines = [f"{'rank':>4}  {'trial':<10} {'R@1':>7} {'wR':>7} {'epochs':>6}"]
    lines += [f"{n:>4}  {tid:<10} {r1:7.2f} {wr:7.2f} {ep:>6}" for n, (r1, wr, ep, tid) in
              enumerate(rows[:top], 1)]
    return "\n".join(lines)


def summarize(args: SearchArgs, grid, *, interrupted: bool, base: dict[str, Any] | None = None) -> SearchOutcome:
    trial_id, config, metrics, checkpoint = best_from_grid(grid, base=base)
    outcome = SearchOutcome(
        experiment_path=args.experiment_path, num_trials=len(grid), num_errors=grid.num_errors,
        interrupted=interrupted, best_trial_id=trial_id, best_config=config, best_metrics=metrics,
        best_checkpoint=checkpoint, leaderboard="")
    if interrupted:
        outcome.leaderboard = leaderboard_from_grid(grid)
        print(outcome.leaderboard)
        return outcome
    res = None
    if args.is_local_storage:
        import results

        try:  # prints its leaderboard, tables and plot paths
            res = results.write_results(Path(args.experiment_path))
        except results.ResultsError as e:  # e.g. no trial finished an epoch
            print(f"results: {e}")
    if res is not None:  # results/ ranks the trials (ties included); follow its choice
        outcome.results = res
        outcome.leaderboard = res.leaderboard_text
        trial_id, config, metrics, checkpoint = best_from_grid(grid, res.best_trial_id, base)
        outcome.best_trial_id = res.best_trial_id
        outcome.best_config = dict(res.best_config) if res.best_config else config
        # every metric of the best epoch (Tune itself only holds the few keys its scheduler reads)
        outcome.best_metrics = res.best_report() or metrics or outcome.best_metrics
        outcome.best_checkpoint = str(res.best_checkpoint) if res.best_checkpoint else checkpoint
    else:
        if not args.is_local_storage:
            print("note: Parquet tables and plots skipped for cloud storage; run `python -m results` on a synced copy.")
        outcome.leaderboard = leaderboard_from_grid(grid)
        print(outcome.leaderboard)
    return outcome


def finish(args: SearchArgs, outcome: SearchOutcome, rebuild: bool = True) -> None:
    """Refit ranking, ensemble (``rebuild=False``: only when none is on disk yet) and the W&B summary run."""
    if not args.is_local_storage:
        print("note: refit ranking and ensemble skipped for cloud storage; run `python -m results` and "
              "`run_ensemble.py` on a synced copy.")
    elif outcome.results is None:
        print("note: no refit ranking or ensemble: no trial finished an epoch.")
    else:
        from results.errors import ResultsError
        from results.refit import has_refit, summarize_refit

        path = Path(args.experiment_path)
        if args.refit_top_k > 0 and has_refit(path):
            try:
                outcome.refit = summarize_refit(path)
            except ResultsError as e:
                print(f"refit: {e}")
        ev = args.eval
        if ev is not None and outcome.best_checkpoint and (rebuild or not (path / EVAL_FILE).is_file()):
            outcome.eval_report = evaluate_best(path, outcome, ev)
        if args.ensemble_top_k > 0 and (rebuild or not (path / "ensemble" / "manifest.json").is_file()):
            from results.ensemble import build_ensemble

            outcome.ensemble = build_ensemble(path, top_k=args.ensemble_top_k, eval_data=ev)
        elif (path / "ensemble").is_dir():
            print(f"ensemble: {path / 'ensemble'}")
    if args.wandb and rebuild:
        from .wandb_setup import log_summary, sync_hint

        outcome.wandb_summary_dir = log_summary(
            args, best_config=outcome.best_config, best_metrics=outcome.best_metrics,
            leaderboard=outcome.leaderboard, similarity_png=similarity_png(args),
            refit_text=outcome.refit.text if outcome.refit is not None else None,
            ensemble_text=outcome.ensemble.table + "\n" + outcome.ensemble.verdict if outcome.ensemble else None)
        hint = sync_hint(args)
        if hint:
            print(hint)


def evaluate_best(path: Path, outcome: SearchOutcome, ev) -> dict:
    """The best trial's best checkpoint (chosen on val) on the in-domain test split and on --eval-data: printed
    and written to ``<experiment>/eval_data.json``.  Reported only: nothing is chosen on it."""
    from core.atomic import atomic_write_text
    from core.crossdata import evaluate_checkpoint, format_report

    report = {"trial_id": outcome.best_trial_id, **evaluate_checkpoint(outcome.best_checkpoint, ev=ev)}
    print(f"\n=== best trial {outcome.best_trial_id} (chosen on val), test metrics ===\n{format_report(report)}",
          flush=True)
    atomic_write_text(path / EVAL_FILE, json.dumps(report, indent=1))
    return report


def similarity_png(args: SearchArgs) -> Path | None:
    if not args.is_local_storage:
        return None
    png = Path(args.experiment_path) / "plots" / "best_similarity.png"
    return png if png.is_file() else None


def finished_search(args: SearchArgs) -> SearchOutcome | None:
    """``--resume`` of an experiment whose ``num_samples`` trials all TERMINATED: the search has nothing left
    to run, so report it (leaderboard, tables, plots) without starting Ray; the caller then finishes a
    pending refit (search/refit.py) or only the ensemble when it is missing.

    None when there is something to resume (unfinished or errored trials, missing samples) or the
    storage is remote: then Tune restores the experiment as usual.
    """
    if not args.is_local_storage:
        return None
    import results

    try:
        exp = results.read_experiment(args.experiment_path)
    except results.ResultsError:
        return None  # not an experiment (yet): the resume path's own checks explain what is wrong
    known = [t for t in exp.trials if t.in_state]  # ABANDONED folders of a killed driver do not count
    if len(known) < args.num_samples or any(t.status != "TERMINATED" for t in known):
        return None
    print(f"experiment {args.name}: the search already finished ({len(known)} of {args.num_samples} trials "
          "TERMINATED); no search trial started.", flush=True)
    outcome = SearchOutcome(experiment_path=args.experiment_path, num_trials=len(known), num_errors=0,
                            interrupted=False, best_trial_id=None, best_config=None, best_metrics=None,
                            best_checkpoint=None, leaderboard="")
    try:
        res = results.write_results(Path(args.experiment_path))  # prints the leaderboard
    except results.ResultsError as e:
        print(f"results: {e}")
        return outcome
    best = res.trials.slice(0, 1).to_pylist()[0]
    outcome.results, outcome.leaderboard = res, res.leaderboard_text
    outcome.best_trial_id, outcome.best_config = res.best_trial_id, dict(res.best_config)
    outcome.best_metrics = {k[len("best_"):]: v for k, v in best.items() if k.startswith("best_")
                            and k != "best_checkpoint" and v is not None}
    outcome.best_checkpoint = str(res.best_checkpoint) if res.best_checkpoint else None
    return outcome
