"""``run(args)``: preflight -> Ray -> shared inputs -> Tuner (new or restored) -> fit -> results."""
from __future__ import annotations

import os
import time
from typing import Any

from . import storage
from .args import ArgsError, SearchArgs
from .cluster import check_cluster, ensure_ray  # joining a cluster + checks before any trial
from .post import SearchOutcome, finished_search, similarity_png, summarize
from .trainable import build_trainable
from .trial_config import METRIC, preflight
from .tuner import build_tuner, restore_tuner


def check_experiment_location(args: SearchArgs) -> None:
    from ray import tune

    path = args.experiment_path
    if args.resume:
        if not tune.Tuner.can_restore(path):
            # search_args.json exists (the CLI checked): the driver died before Tune's first save.
            raise ArgsError(f"--resume: experiment {args.name!r} at {path} has no Tune state to continue "
                            "(no experiment_state-*.json: its driver stopped before Tune saved any). "
                            f"Fix: delete {path} and start it again without --resume, or use another --name.")
    elif storage.exists(storage.join(path, storage.ARGS_FILE)) or tune.Tuner.can_restore(path):
        raise ArgsError(f"--name {args.name}: an experiment already exists at {path}. Continue it "
                        "with --resume, or choose another --name.")


def prepare_shared_inputs(base: dict[str, Any], sampled_keys: list[str]) -> Any:
    from core.train import prepare_shared

    t0 = time.perf_counter()
    config = dict(base)
    if "filter_threshold" in sampled_keys and not config["filter_threshold"]:
        # Trials that turn negative filtering on need caption sentence embeddings: compute them
        # here once instead of in every trial.
        config["filter_threshold"] = 0.8
    shared = prepare_shared(config)
    print(f"shared inputs (corpus + frozen text features) ready in {time.perf_counter() - t0:.1f}s; "
          "handed to every trial once through the object store.", flush=True)
    return shared


def was_interrupted(grid, args: SearchArgs) -> bool:
    """fit() returns normally after Ctrl+C; unfinished trials or missing samples reveal it."""
    unfinished = len(grid) - grid.num_terminated - grid.num_errors
    return unfinished > 0 or len(grid) < args.num_samples


def run(args: SearchArgs) -> SearchOutcome:
    if args.resume and (finished := finished_search(args)) is not None:
        return finished  # nothing left to run: reported without starting Ray
    base, param_columns = preflight(args)
    check_experiment_location(args)
    # The legacy reporter shows the columns we choose (R@1, wR, sampled params) and the best trial.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune warns when short epochs checkpoint faster than every 5 s; that is expected here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

    # Parse the data before Ray starts: a bad --data fails in seconds with the loader's message.
    shared = prepare_shared_inputs(base, param_columns)
    callbacks = []
    if args.wandb and not args.resume:  # on --resume the stored RunConfig brings its callbacks
        from .wandb_setup import make_callback
        callbacks.append(make_callback(args))
    elif args.wandb:
        from .wandb_setup import resolve_mode
        resolve_mode()  # the restored callback checks WANDB_MODE in this process
    started = ensure_ray(args)
    t0 = time.perf_counter()
    try:
        check_cluster(args)
        if not args.resume:  # what --resume rebuilds the search from; written once all is good
            storage.write_json(storage.join(args.experiment_path, storage.ARGS_FILE), args.to_json())
        trainable = build_trainable(args, shared)
        del shared  # the object store holds it now
        if args.resume:
            print(f"resuming {args.experiment_path}", flush=True)
            tuner = restore_tuner(args, trainable)
        else:
            tuner = build_tuner(args, trainable, base_config=base, callbacks=callbacks,
                                param_columns=param_columns)
        grid = tuner.fit()
    finally:
        if started:
            import ray
            ray.shutdown()
    elapsed = time.perf_counter() - t0
    interrupted = was_interrupted(grid, args)
    outcome = summarize(args, grid, interrupted=interrupted)
    report(args, outcome, elapsed)
    if args.wandb and not interrupted:
        from .wandb_setup import log_summary, sync_hint
        outcome.wandb_summary_dir = log_summary(
            args, best_config=outcome.best_config, best_metrics=outcome.best_metrics,
            leaderboard=outcome.leaderboard, similarity_png=similarity_png(args))
        hint = sync_hint(args)
        if hint:
            print(hint)
    return outcome


def report(args: SearchArgs, outcome: SearchOutcome, elapsed: float) -> None:
    print(f"\n=== search {args.name}: {outcome.num_trials} trials, {outcome.num_errors} errored, "
          f"{elapsed:.0f}s ===")
    if outcome.best_metrics:
        m = outcome.best_metrics
        print(f"best trial {outcome.best_trial_id}: {METRIC}={m.get(METRIC, float('nan')):.2f} "
              f"weighted_recall={m.get('weighted_recall', float('nan')):.2f} (epoch {m.get('epoch')})")
        print(f"best checkpoint: {outcome.best_checkpoint}")
    print(f"experiment: {outcome.experiment_path}")
    if outcome.interrupted:
        print(f"interrupted. Continue with:\n  python run_search.py --resume --name {args.name} "
              f"--storage {args.storage}")
