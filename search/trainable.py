"""The Tune function trainable: one trial = one ``core.train.train_retrieval`` call.

``core`` knows nothing about Ray: the adapter hands it a reporter that turns each epoch's
(metrics, checkpoint_dir) into ``tune.report`` and resumes from ``tune.get_checkpoint()`` so a
restored or retried trial continues at its next epoch instead of epoch 1.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ray import tune

from .args import SearchArgs
from .cluster import trial_placement


class TuneReporter:
    """``reporter(metrics, checkpoint_dir)`` for train_retrieval; remembers the last epoch."""

    def __init__(self) -> None:
        self.last_epoch = 0

    def __call__(self, metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        self.last_epoch = int(metrics.get("epoch", self.last_epoch + 1))
        # tune.report copies the directory into the trial's storage before returning, so the
        # trainer may delete it right after.
        checkpoint = tune.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        tune.report({**metrics, **trial_placement()}, checkpoint=checkpoint)  # + node id, GPU ids

    def report_divergence(self, error: BaseException) -> None:
        """A NaN/inf loss is a property of the config: report it as a useless model (R@1 = 0) so
        TPE learns to avoid the region, instead of an error that FailureConfig would retry.
        ``diverged_reason`` carries the message into result.json, so results/ can show why the
        trial ended (trials.parquet: diverged=True, error=<this text>)."""
        reason = f"{type(error).__name__}: {error}"
        print(f"trial diverged after epoch {self.last_epoch}: {reason}", flush=True)
        tune.report({"epoch": self.last_epoch + 1, "recall_at_1": 0.0, "weighted_recall": 0.0,
                     "diverged": 1.0, "diverged_reason": reason})


def train_trial(config: dict[str, Any], shared: Any = None) -> None:
    """Tune entry point; ``shared`` is the corpus + frozen text features from the object store."""
    from core import train as core_train  # the worker imports torch here, not at unpickling

    reporter = TuneReporter()
    nonfinite = getattr(core_train, "NonFiniteLossError", None)
    checkpoint = tune.get_checkpoint()
    try:
        if checkpoint is None:
            core_train.train_retrieval(dict(config), reporter, shared=shared)
        else:
            # Local storage: the stored folder itself; cloud: a temp download kept for the call.
            with checkpoint.as_directory() as checkpoint_dir:
                core_train.train_retrieval(dict(config), reporter, shared=shared,
                                           resume_from=usable_checkpoint(checkpoint_dir))
    except Exception as e:
        if nonfinite is not None and isinstance(e, nonfinite):
            reporter.report_divergence(e)
            return
        raise


def usable_checkpoint(directory: str) -> str:
    """The checkpoint Tune restores from or, when it is cut off (a full disk) or gone (Tune deleted it after the
    state that still names it was saved), the trial's newest whole one beside it. The trial then repeats the
    epochs in between; results/ keeps the later report of a repeated epoch."""
    from core.checkpoint import CheckpointError, is_intact

    if is_intact(directory):
        return directory
    wanted = Path(directory)
    for sibling in sorted(wanted.parent.glob("checkpoint_*"), reverse=True):
        if sibling != wanted and is_intact(sibling):
            print(f"checkpoint {wanted.name} is cut off or missing; continuing from {sibling.name}", flush=True)
            return str(sibling)
    raise CheckpointError(f"{wanted} is cut off or missing and the trial has no other whole checkpoint.",
                          where=wanted.parent, fix="the trial cannot continue; start a new search (--name) "
                          "or read its finished epochs with python -m results.")


def trial_resources(args: SearchArgs) -> dict[str, float]:
    return {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial}


def build_trainable(args: SearchArgs, shared: Any) -> Callable:
    """with_parameters puts ``shared`` into the object store ONCE; every trial gets a reference."""
    trainable = tune.with_parameters(train_trial, shared=shared)
    return tune.with_resources(trainable, trial_resources(args))

