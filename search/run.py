"""``run(args)``: preflight -> shared inputs -> Ray -> search (new or restored) -> refit -> results, ensemble."""
from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from core.data.splits import MIN_DECISIVE_SPLIT, small_split_note
from core.interrupts import python_handles_ctrl_c, sigterm_is_ctrl_c

from . import storage
from .args import ArgsError, SearchArgs
from .study import StudyStorageError, check_study, upload_study
from .cluster import check_cluster, ensure_ray  # joining a cluster + checks before any trial
from .diskspace import check_free_space, checkpoint_bytes, disk_full_error, is_disk_full, storage_nearly_full
from .interrupt import INTERRUPTED
from .lock import experiment_lock
from .post import SearchOutcome, finish, finished_search, summarize
from .ray_internals import EXPERIMENT_STATE_GLOB, can_resume, use_legacy_progress_reporter
from .refit import refit_pending, run_refit, trials_from_grid, trials_from_table
from .trainable import build_trainable
from .trial_config import METRIC, preflight
from .tune_state import keeping_last_good_state, restore_last_good, unrecoverable_state
from .tuner import build_tuner, restore_tuner


def check_experiment_location(args: SearchArgs) -> None:
    from ray import tune

    path = args.experiment_path
    if args.resume:
        # No Tune state (search_args.json exists, the CLI checked): the driver died before Tune's first save; the
        # search starts again in place (fit_search), and the study's trials continue (search/study.py).
        torn = unrecoverable_state(Path(path)) if args.is_local_storage and tune.Tuner.can_restore(path) else None
        if torn is not None:   # Tune would silently start over
            raise ArgsError(f"--resume: {torn} is cut off (a full disk or a killed copy) and no complete copy of "
                            "Tune's state was kept, so Tune cannot continue this search. Its finished trials stay "
                            "readable (python -m results, run_ensemble.py). Fix: start a new --name.")
    elif storage.exists(storage.join(path, storage.ARGS_FILE)) or tune.Tuner.can_restore(path):
        raise ArgsError(f"--name {args.name}: an experiment already exists at {path}. Continue it "
                        "with --resume, or choose another --name.")
    try:
        check_study(args)
    except StudyStorageError as e:
        raise ArgsError(str(e)) from None


def prepare_shared_inputs(base: dict[str, Any], sampled_keys: list[str], eval_data: Any = None) -> Any:
    """The trials' shared inputs; ``eval_data`` (--eval-data) is loaded and its layout checked against them,
    then left out: no trial sees it."""
    from core.shared import load_shared

    t0 = time.perf_counter()
    config = dict(base)
    if "filter_threshold" in sampled_keys and not config["filter_threshold"]:
        # Trials that turn negative filtering on need caption sentence embeddings: compute them
        # here once instead of in every trial.
        config["filter_threshold"] = 0.8
    shared = load_shared(config)
    if eval_data is not None:   # a different feature layout fails here, before Ray starts
        from core.crossdata import open_eval_data

        other = open_eval_data(eval_data, shared, config["data"])
        print(f"eval data {eval_data.describe()}: {len(other.corpus.split(eval_data.split))} motions "
              f"({other.corpus.layout.kind}, {other.corpus.dim}-d), reported after the search, never used to choose.",
              flush=True)
    shared.precompute(config)
    print(f"shared inputs (corpus + frozen text features) ready in {time.perf_counter() - t0:.1f}s; "
          "handed to every trial once through the object store.", flush=True)
    return shared


def was_interrupted(grid, args: SearchArgs) -> bool:
    """fit() returns normally after Ctrl+C: the signal itself (search/interrupt.py), unfinished trials or missing
    samples reveal it."""
    unfinished = len(grid) - grid.num_terminated - grid.num_errors
    return INTERRUPTED.is_set() or unfinished > 0 or len(grid) < args.num_samples


def run(args: SearchArgs) -> SearchOutcome:
    finished = finished_search(args) if args.resume else None   # the search itself has nothing left to run
    if finished is not None and not refit_pending(args):
        with experiment_lock(args):
            finish(args, finished, rebuild=False)   # refit ranking + the ensemble if it is missing
        return finished
    base, param_columns = preflight(args)
    if finished is None:
        check_experiment_location(args)
    with experiment_lock(args):
        if finished is None:
            if args.resume and args.is_local_storage:
                repaired = restore_last_good(Path(args.experiment_path))
                if repaired:
                    print(f"--resume: {repaired}", flush=True)
            check_experiment_location(args)   # again: a driver that held the lock until now may have started it
        return run_locked(args, finished, base, param_columns)


def run_locked(args: SearchArgs, finished: SearchOutcome | None, base: dict[str, Any],
               param_columns: list[str]) -> SearchOutcome:
    # The legacy reporter shows the columns we choose (R@1, wR, sampled params) and the best trial.
    use_legacy_progress_reporter()
    # Tune warns when short epochs checkpoint faster than every 5 s; that is expected here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

    # Parse the data before Ray starts: a bad --data fails in seconds with the loader's message.
    shared = prepare_shared_inputs(base, param_columns, args.eval)
    check_small_splits(shared.corpus, base, args)
    per_checkpoint = checkpoint_bytes(base, shared)
    check_free_space(args, per_checkpoint)   # a search that cannot fit fails now, not at its 1st checkpoint
    started = False
    t0 = time.perf_counter()
    if args.wandb:   # W&B's server is asked once, with a bounded wait, before Ray starts (offline if it fails)
        from .wandb_setup import resolve_mode

        resolve_mode()
    try:
        started = start_ray(args)
        INTERRUPTED.clear()
        check_cluster(args)
        if not args.resume:  # what --resume rebuilds the search from; written once all is good
            storage.write_json(storage.join(args.experiment_path, storage.ARGS_FILE), args.to_json())
        import ray

        # Into Ray's object store block by block (the driver's cache pages dropped as they go); every trial of a
        # node then reads this one copy through read-only views.
        trainable = build_trainable(args, shared.published(ray.put), base)
        del shared
        if finished is None:
            with disk_full_named(args, per_checkpoint), keeping_last_good_state(args.experiment_path):
                try:
                    grid = fit_search(args, trainable, base, param_columns)
                finally:
                    python_handles_ctrl_c()
                    upload_study(args)   # cloud storage: the study travels with the experiment
            if grid.num_errors and storage_nearly_full(args, per_checkpoint):   # trials failed writing
                raise disk_full_error(args, per_checkpoint)
            outcome = summarize(args, grid, interrupted=was_interrupted(grid, args), base=base)
            trials = trials_from_grid(grid, base)
        else:
            outcome, trials = finished, trials_from_table(finished.results.trials) if finished.results else []
        outcome.seconds["search"] = time.perf_counter() - t0
        if not outcome.interrupted and args.refit_top_k > 0:
            with disk_full_named(args, per_checkpoint):
                try:
                    _, refit_grid, outcome.interrupted = run_refit(args, trainable, trials)
                finally:
                    python_handles_ctrl_c()
            if refit_grid is not None and refit_grid.num_errors and storage_nearly_full(args, per_checkpoint):
                raise disk_full_error(args, per_checkpoint)
            outcome.seconds["refit"] = time.perf_counter() - t0 - outcome.seconds["search"]
    finally:
        if started:
            import ray
            ray.shutdown()
        sigterm_is_ctrl_c()       # ray.shutdown left SIGTERM at its default: the last stages answer it like Ctrl+C
        python_handles_ctrl_c()
    report(args, outcome)
    if not outcome.interrupted:
        finish(args, outcome)
    return outcome


@contextmanager
def disk_full_named(args: SearchArgs, per_checkpoint: int) -> Iterator[None]:
    """Tune itself trips over files a full disk left empty (error.pkl): say the disk is full instead."""
    try:
        yield
    except Exception as exc:
        if is_disk_full(args, exc, per_checkpoint):
            raise disk_full_error(args, per_checkpoint) from None
        raise


def start_ray(args: SearchArgs) -> bool:
    """ensure_ray, with SIGTERM answered like Ctrl+C from its first moment: ray.init installs a SIGTERM handler of
    its own that exits at once (status 15, no --resume hint), replaced right after by ours."""
    try:
        started = ensure_ray(args)
    except SystemExit as exc:
        if exc.code != signal.SIGTERM:
            raise
        import ray

        if ray.is_initialized():
            ray.shutdown()
        raise KeyboardInterrupt from None
    sigterm_stops_like_ctrl_c()
    return started


def sigterm_stops_like_ctrl_c() -> None:
    """SIGTERM (`kill`, a job scheduler's preemption) ends the search like Ctrl+C: Tune stops the trials and
    saves its state, and the driver prints the --resume command. Installed after ray.init, whose own handler
    exits at once (Ray's core worker then dumps a C++ stack)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(os.getpid(), signal.SIGINT))


def fit_search(args: SearchArgs, trainable, base: dict[str, Any], param_columns: list[str]):
    if args.resume and can_resume(args.experiment_path):
        print(f"resuming {args.experiment_path}", flush=True)
        tuner = restore_tuner(args, trainable)
    else:
        if args.resume:
            print(f"resuming {args.experiment_path}: its driver stopped before Tune saved any state; the search "
                  f"starts again in place ({EXPERIMENT_STATE_GLOB} absent), and trials it had begun continue.",
                  flush=True)
        tuner = build_tuner(args, trainable, base_config=base, param_columns=param_columns)
    return tuner.fit()


def check_small_splits(corpus, base: dict[str, Any], args: SearchArgs) -> None:
    """Once, before Ray starts: the split every trial scores (and the test split, when an ensemble or a refit will
    score it) must hold enough motions to rank (DataError: exit 2); one this small cannot decide between trials;
    one smaller than the protocol's batch is an easier ranking than its results say."""
    scored = [base["eval_split"]] + (["test"] if args.ensemble_top_k or args.refit_top_k else [])
    corpus.training_split()
    for split in scored:
        corpus.scored_split(split)
    for split in ("val", "test"):
        n = len(corpus.splits.get(split, ()))
        note = small_split_note(split, n, base["eval_batch_size"]) if n else None
        if note:
            print(note, flush=True)
        if 0 < n < MIN_DECISIVE_SPLIT:
            half = 100 * 1.96 * (0.25 / n) ** 0.5
            print(f"WARNING: the {split} split has only {n} motions: one query moves R@1 by {100 / n:.1f} points and "
                  f"its 95 % CI is about +-{half:.0f} points, so differences between trials below that are noise. "
                  f"Use more data or a bigger split (e.g. --data SPEC:val=0.2,test=0.2).", flush=True)


def report(args: SearchArgs, outcome: SearchOutcome) -> None:
    stages = ", ".join(f"{stage} {seconds:.0f}s" for stage, seconds in outcome.seconds.items())
    print(f"\n=== search {args.name}: {outcome.num_trials} trials, {outcome.num_errors} errored; {stages} ===")
    if outcome.best_metrics:
        m = outcome.best_metrics
        print(f"best trial {outcome.best_trial_id}: {METRIC}={m.get(METRIC, float('nan')):.2f} "
              f"weighted_recall={m.get('weighted_recall', float('nan')):.2f} (epoch {m.get('epoch')})")
        print(f"best checkpoint: {outcome.best_checkpoint}")
    print(f"experiment: {outcome.experiment_path}")
    if outcome.interrupted:
        print(f"interrupted. Continue with:\n  python run_search.py --resume --name {args.name} "
              f"--storage {args.storage}")
