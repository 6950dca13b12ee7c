"""Tuner construction: our Optuna searcher (define-by-run space, study in a database) + ConcurrencyLimiter +
ASHA + RunConfig.

metric/mode are given to the searcher and the scheduler themselves, NOT to TuneConfig: Tune
refuses a metric in TuneConfig when the scheduler already has one, and the define-by-run
OptunaSearch must know it at construction (it creates its study then).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ray import tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter

from spaces import get_space

from .args import SearchArgs
from .interrupt import InterruptWatch
from .records import TrialRecords
from .study import StudySearcher, search_study_storage
from .trial_config import METRIC, MODE, make_sampler

PROGRESS_METRICS = {"epoch": "epoch", "recall_at_1": "R@1", "weighted_recall": "wR",
                    "recall_at_5": "R@5", "medr": "MedR"}


def trial_name(trial: Trial) -> str:
    """Both the trial's name and its folder: Tune's default folder name embeds the whole config, and with ~45
    flat keys it exceeds filesystem limits."""
    return f"trial_{trial.trial_id}"


def build_search_alg(args: SearchArgs) -> ConcurrencyLimiter | StudySearcher:
    get_space(args.space)   # an unknown name fails here, before Tune starts
    searcher = StudySearcher(args.space, search_study_storage(args), args.name, make_sampler(args),
                             metric=METRIC, mode=MODE)
    if args.scheduler == "hyperband":
        # Synchronous HyperBand PAUSES trials at each rung until its bracket is full; a concurrency limit
        # counts paused trials as live, so the bracket would never fill. Trial resources bound what runs.
        return searcher
    return ConcurrencyLimiter(searcher, max_concurrent=args.max_concurrent)


def build_scheduler(args: SearchArgs) -> TrialScheduler:
    if args.scheduler == "fifo":   # the no-early-stopping baseline: every trial runs --max-epochs
        return FIFOScheduler()
    if args.scheduler == "hyperband":
        return HyperBandScheduler(time_attr="epoch", metric=METRIC, mode=MODE, max_t=args.max_epochs,
                                  reduction_factor=args.reduction_factor)
    # The epoch each report carries: the trainer reports once per epoch, and search.trainable.lean reports the same
    # number as training_iteration (Tune's own count starts one short for a trial that continues from a newer
    # checkpoint than Tune's saved state names).
    return ASHAScheduler(time_attr="epoch", metric=METRIC, mode=MODE,
                         max_t=args.max_epochs, grace_period=args.grace_period,
                         reduction_factor=args.reduction_factor)


def build_progress_reporter(args: SearchArgs, param_columns: Sequence[str], total: int | None = None) -> tune.CLIReporter:
    return tune.CLIReporter(
        metric_columns=dict(PROGRESS_METRICS),
        parameter_columns=list(param_columns)[:8],
        metric=METRIC, mode=MODE, sort_by_metric=True, total_samples=total or args.num_samples,
        max_report_frequency=10 if args.smoke_test else 30, max_column_length=12)


def build_run_config(args: SearchArgs, *, callbacks: list, param_columns: Sequence[str],
                     base_config: dict[str, Any] | None = None) -> tune.RunConfig:
    return tune.RunConfig(
        name=args.name,
        storage_path=args.storage,
        # Tune deletes no checkpoint and so never forces a state save per checkpoint: TrialRecords keeps each
        # trial's latest (resumable) and best (model only) and empties the rest in place (search/retention.py).
        checkpoint_config=tune.CheckpointConfig(checkpoint_score_attribute=METRIC, checkpoint_score_order=MODE),
        failure_config=tune.FailureConfig(max_failures=args.max_failures),
        # each trial's own trial.json; whether Ctrl+C/SIGTERM interrupted the run
        callbacks=[TrialRecords(args.experiment_path, base_config), InterruptWatch(), *callbacks],
        progress_reporter=build_progress_reporter(args, param_columns),
        verbose=1,
    )


def build_tuner(args: SearchArgs, trainable: Callable, *, base_config: dict[str, Any],
                param_columns: Sequence[str], callbacks: Sequence = ()) -> tune.Tuner:
    return tune.Tuner(
        trainable,
        # No constants: Tune keeps a trial's config several times in its state (~1.2 KB each), so it holds only
        # what the searcher sampled; the trainable and the trial records put the constants back under it.
        param_space={},
        tune_config=tune.TuneConfig(
            search_alg=build_search_alg(args),
            scheduler=build_scheduler(args),
            num_samples=args.num_samples,
            # A finished trial's worker (torch + core already imported) runs the next trial.
            reuse_actors=True,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=build_run_config(args, callbacks=list(callbacks), param_columns=param_columns,
                                    base_config=base_config),
    )


def restore_tuner(args: SearchArgs, trainable: Callable) -> tune.Tuner:
    """Continue a stored experiment: unfinished trials resume from their last checkpoint, errored
    ones are retried from theirs, and the Optuna searcher continues from its saved study."""
    return tune.Tuner.restore(args.experiment_path, trainable=trainable,
                              resume_unfinished=True, resume_errored=True)
