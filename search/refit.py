"""Refit stage: the top-K DISTINCT configs of a finished search, retrained to full length with S seeds each.

Why: every search decision (ASHA's rungs, TPE, "best trial") is taken on one noisy run per config, so the
search's best is partly luck.  The refit trains each of the top ``--refit-top-k`` configs ``--refit-seeds``
times for ``--refit-epochs`` (default ``--max-epochs``) and ranks the configs by the MEAN over seeds
(results/refit.py: mean, std, bootstrap CI, paired difference to the top config).  Its runs are the
ensemble's members (diverse seeds and configs).

``<experiment>/refit/`` is a Tune experiment of its own: the search's trainable, resources, cluster and
W&B group (job type "refit"), FIFO (every run trains full length), resumable with ``--resume`` like the
search.  ``refit/refit_plan.json`` lists every run: config rank, the search trial it comes from, seed,
and - when the search trial itself already trained that config to full length with the search's seed -
that trial, which then stands for its seed instead of being retrained (the same computation twice).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from results.refit import PLAN_FILE, REFIT_DIR, config_identity

from . import storage
from .args import SearchArgs
from .ray_internals import can_resume
from .trial_config import METRIC
from .tune_state import keeping_last_good_state, restore_last_good


@dataclass(frozen=True)
class SearchTrial:
    """What the refit needs to know about one finished search trial."""
    trial_id: str
    config: dict[str, Any]
    best_r1: float
    epochs_run: int
    ok: bool                     # finished normally (not errored, not diverged)


@dataclass(frozen=True)
class RefitRun:
    config_rank: int             # 1 = the search's best distinct config
    source_trial: str            # the search trial the config comes from
    seed: int
    reused_trial: str | None     # the search trial that already is this run (not retrained), else None
    config: dict[str, Any]       # the full flat training config of the run


def plan_refit(args: SearchArgs, trials: Iterable[SearchTrial]) -> list[RefitRun]:
    """Runs of the refit: the top ``refit_top_k`` distinct configs (by best val R@1, then trial id) x seeds."""
    ranked = sorted((t for t in trials if t.ok and math.isfinite(t.best_r1)), key=lambda t: (-t.best_r1, t.trial_id))
    chosen: dict[tuple, SearchTrial] = {}
    for trial in ranked:
        chosen.setdefault(config_identity(trial.config), trial)
        if len(chosen) == args.refit_top_k:
            break
    seeds = [args.seed + s for s in range(args.refit_seeds)]
    runs = []
    for rank, trial in enumerate(chosen.values(), start=1):
        full_length = trial.epochs_run >= args.refit_length and trial.config.get("epochs") == args.refit_length
        for seed in seeds:
            reused = trial.trial_id if (full_length and seed == trial.config.get("seed")) else None
            runs.append(RefitRun(rank, trial.trial_id, seed, reused,
                                 {**trial.config, "seed": seed, "epochs": args.refit_length}))
    return runs


def trials_from_grid(grid, base: dict[str, Any] | None = None) -> list[SearchTrial]:
    """SearchTrials of a Tune ResultGrid (any storage: local or s3://, gs://); ``base``: the config constants
    under Tune's sampled configs."""
    out = []
    for result in grid:
        df = result.metrics_dataframe
        if df is None or METRIC not in df or df[METRIC].isna().all():
            continue
        metrics = result.metrics or {}
        out.append(SearchTrial(str(metrics.get("trial_id", result.path)), {**(base or {}), **result.config},
                               float(df[METRIC].max()), int(df["epoch"].max()),
                               ok=result.error is None and not metrics.get("diverged")))
    return out


def trials_from_table(trials) -> list[SearchTrial]:
    """SearchTrials of a search's trials.parquet (results.load_trials)."""
    out = []
    for row in trials.to_pylist():
        if row.get("best_recall_at_1") is None:
            continue
        config = {k[len("config/"):]: v for k, v in row.items() if k.startswith("config/")}
        out.append(SearchTrial(row["trial_id"], config, float(row["best_recall_at_1"]), int(row["epochs_run"]),
                               ok=row["status"] == "TERMINATED" and not row.get("diverged")))
    return out


def refit_path(args: SearchArgs) -> str:
    return storage.join(args.experiment_path, REFIT_DIR)


def write_plan(args: SearchArgs, runs: list[RefitRun]) -> None:
    storage.write_json(storage.join(refit_path(args), PLAN_FILE),
                       {"format": 1, "refit_top_k": args.refit_top_k, "refit_seeds": args.refit_seeds,
                        "refit_epochs": args.refit_length, "runs": [asdict(r) for r in runs]})


def read_plan(args: SearchArgs) -> list[RefitRun] | None:
    path = storage.join(refit_path(args), PLAN_FILE)
    if not storage.exists(path):
        return None
    return [RefitRun(**run) for run in storage.read_json(path)["runs"]]


def to_train(runs: list[RefitRun]) -> list[RefitRun]:
    return [r for r in runs if r.reused_trial is None]


def refit_space(configs: list[dict[str, Any]]) -> dict[str, Any]:
    """The refit's param_space: the points' shared values, and a choice among theirs for each key they vary in.
    A constant there that a point overrides makes Tune log "Pre-set value ... is not equal to the value of
    parameter" once per point and key (the seed, at least): noise on the user's console."""
    from ray import tune

    space: dict[str, Any] = {}
    for key, first in configs[0].items():
        values: list[Any] = []
        for config in configs:
            if config.get(key) not in values:
                values.append(config.get(key))
        space[key] = first if len(values) == 1 else tune.choice(values)
    return space


def build_refit_tuner(args: SearchArgs, trainable: Callable, runs: list[RefitRun]):
    """A FIFO Tune experiment at <experiment>/refit running each planned config once, in plan order."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from .interrupt import InterruptWatch
    from .records import TrialRecords
    from .tuner import build_progress_reporter, trial_name

    configs = [r.config for r in to_train(runs)]
    return tune.Tuner(
        trainable,
        param_space=refit_space(configs),   # every point below replaces all of it
        tune_config=tune.TuneConfig(
            search_alg=BasicVariantGenerator(points_to_evaluate=configs, max_concurrent=args.max_concurrent),
            num_samples=len(configs), reuse_actors=True,
            trial_name_creator=trial_name, trial_dirname_creator=trial_name),
        run_config=tune.RunConfig(
            name=REFIT_DIR, storage_path=args.experiment_path,
            failure_config=tune.FailureConfig(max_failures=args.max_failures),
            # the full-length model is the last one: only the latest checkpoint is kept (search/retention.py)
            callbacks=[TrialRecords(refit_path(args), keep_best=False), InterruptWatch()],
            progress_reporter=build_progress_reporter(args, ["seed", "lr", "temperature"],
                                                                           total=len(configs)),
            verbose=1))


def run_refit(args: SearchArgs, trainable: Callable, trials: list[SearchTrial] | None):
    """Plan (or reload the plan), then train what it needs; returns (runs, grid or None, interrupted)."""
    from ray import tune

    from .interrupt import INTERRUPTED

    path = refit_path(args)
    runs = read_plan(args)
    if runs is None:
        runs = plan_refit(args, trials or [])
        write_plan(args, runs)
    needed = to_train(runs)
    configs = len({r.config_rank for r in runs})
    print(f"\n=== refit: {configs} distinct config(s) x {args.refit_seeds} seed(s), {args.refit_length} epochs; "
          f"{len(runs) - len(needed)} run(s) reused from the search, {len(needed)} to train ===", flush=True)
    if not needed:
        return runs, None, False
    if args.is_local_storage:
        repaired = restore_last_good(Path(path))
        if repaired:
            print(f"refit: {repaired}", flush=True)
    if can_resume(path):
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        tuner = build_refit_tuner(args, trainable, runs)
    with keeping_last_good_state(path):
        grid = tuner.fit()
    unfinished = len(grid) - grid.num_terminated - grid.num_errors
    return runs, grid, INTERRUPTED.is_set() or unfinished > 0 or len(grid) < len(needed)


def refit_pending(args: SearchArgs) -> bool:
    """A refit is asked for and not complete on (local) disk: no plan yet, or planned runs not all finished."""
    if args.refit_top_k <= 0 or not args.is_local_storage:
        return args.refit_top_k > 0 and not args.is_local_storage
    runs = read_plan(args)
    if runs is None:
        return True
    needed = to_train(runs)
    if not needed:
        return False
    import results

    try:
        exp = results.read_experiment(refit_path(args))
    except results.ResultsError:
        return True
    done = [t for t in exp.trials if t.in_state and t.status == "TERMINATED"]
    return len(done) < len(needed)
