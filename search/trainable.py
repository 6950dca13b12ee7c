"""The Tune function trainable: one trial = one ``core.train.train_retrieval`` call.

``core`` knows nothing about Ray: the adapter hands it a reporter that turns each epoch's
(metrics, checkpoint_dir) into ``tune.report`` and resumes from ``tune.get_checkpoint()`` so a
restored or retried trial continues at its next epoch instead of epoch 1.

What goes where, per epoch:
- Tune gets only ``LEAN_KEYS`` (what the scheduler, the searcher and the progress table read): Tune keeps every
  reported key in its experiment state (last result, min/max/avg and last-5/10 windows per number, the metrics
  of each kept checkpoint), rewritten after every checkpoint, so a full report cost ~65 KB per trial.
- The full metrics (CIs, both directions, timings, placement) go into the checkpoint folder as ``report.json``,
  which the driver's ``search.records.TrialRecords`` merges into the trial's own record (trial.json).
- W&B gets the full metrics from here, in the worker (search/wandb_setup.py): the driver never waits on it.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ray import tune

from core.atomic import atomic_write_text
from results.trial_record import RECORD_FILE, REPORT_FILE, last_of_chain

from . import storage
from .args import SearchArgs
from .cluster import trial_placement
from .ray_internals import continue_checkpoint_numbering
from .continuation import CONTINUES_KEY, STOPPED_KEY

# What Tune's scheduler (recall_at_1), our searcher (recall_at_1, finished, diverged) and the progress table
# (epoch, R@1, wR) read; everything else stays out of Tune's state.
LEAN_KEYS = ("epoch", "recall_at_1", "weighted_recall", "finished", "diverged")


def lean(report: dict[str, Any]) -> dict[str, Any]:
    """What Tune gets of a report. ``training_iteration`` is the epoch: Tune counts reports from the result its
    saved state restored, which is one short when the trial continued from a newer checkpoint than that state knew
    (a driver killed between the two; see ``usable_checkpoint``), and an explicit value is what Tune records."""
    out = {k: report[k] for k in LEAN_KEYS if k in report}
    if "epoch" in out:
        out["training_iteration"] = int(out["epoch"])
    return out


class TuneReporter:
    """``reporter(metrics, checkpoint_dir)`` for train_retrieval; remembers the last epoch."""

    def __init__(self, wandb_run: Any = None) -> None:
        self.last_epoch = 0
        self.reported = 0   # results given to Tune by this call
        self.wandb_run = wandb_run   # search.wandb_setup.TrialRun or None

    def __call__(self, metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        self.last_epoch = int(metrics.get("epoch", self.last_epoch + 1))
        report = {**metrics, **trial_placement()}   # + node id, GPU ids
        if self.wandb_run is not None:
            self.wandb_run.log(report, self.last_epoch)
            if report.get("finished"):
                # before the last tune.report: once Tune has it, it may end this worker at any moment
                self.wandb_run.finish()
        checkpoint = None
        if checkpoint_dir:
            # Written before tune.report, which copies the directory into the trial's storage before returning
            # (so the trainer may delete it right after, and the driver finds report.json when the result arrives).
            atomic_write_text(Path(checkpoint_dir) / REPORT_FILE, json.dumps(report, default=_plain))
            checkpoint = tune.Checkpoint.from_directory(str(checkpoint_dir))
        tune.report(lean(report), checkpoint=checkpoint)
        self.reported += 1

    def report_divergence(self, error: BaseException) -> None:
        """A NaN/inf loss is a property of the config: report it as a useless model (R@1 = 0) so
        TPE learns to avoid the region, instead of an error that FailureConfig would retry.
        ``diverged_reason`` carries the message into trial.json, so results/ can show why the
        trial ended (trials.parquet: diverged=True, error=<this text>)."""
        reason = f"{type(error).__name__}: {error}"
        print(f"trial diverged after epoch {self.last_epoch}: {reason}", flush=True)
        report = {"epoch": self.last_epoch + 1, "recall_at_1": 0.0, "weighted_recall": 0.0, "diverged": 1.0}
        if self.wandb_run is not None:
            self.wandb_run.log({**report, "diverged_reason": reason}, self.last_epoch + 1)
        tune.report({**lean(report), "diverged_reason": reason})
        self.reported += 1


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


@dataclass(frozen=True)
class SearchPlace:
    """Where the search's trial folders are (the trainable's own view: Tune's trial dir is a staging folder)."""
    experiment_path: str
    search_name: str

    def experiment(self) -> Path | None:
        """This trial's experiment folder (the search's, or its refit's), when it is a local or mounted path."""
        if storage.is_uri(self.experiment_path):
            return None
        name = tune.get_context().get_experiment_name()
        return Path(self.experiment_path) if name == self.search_name else Path(self.experiment_path) / name


def train_trial(config: dict[str, Any], shared: Any = None, wandb: Any = None,
                base: dict[str, Any] | None = None, place: SearchPlace | None = None) -> None:
    """Tune entry point; ``shared`` is the corpus + frozen text features from the object store, ``wandb`` the
    search's ``TrialWandb`` (None: no W&B), ``base`` the config constants the sampled ``config`` goes over (Tune's
    trial config holds the sampled keys only, so its state does not repeat ~45 constants per trial), ``place``
    where the trial folders are (to continue a trial a killed driver left, and to see whether it had ended)."""
    from core import train as core_train  # the worker imports torch here, not at unpickling

    continues, stopped = config.get(CONTINUES_KEY), bool(config.get(STOPPED_KEY))
    config = {k: v for k, v in {**(base or {}), **config}.items() if k not in (CONTINUES_KEY, STOPPED_KEY)}
    if shared is not None and hasattr(shared, "resolved"):   # the blocks published in Ray's object store
        import ray

        shared = shared.resolved(ray.get)
    experiment = place.experiment() if place is not None else None
    checkpoint = tune.get_checkpoint()
    own = experiment / f"trial_{tune.get_context().get_trial_id()}" if experiment is not None else None
    if own is not None and _ended(own):
        # It had ended (finished, or stopped by the scheduler) before a killed driver's saved state knew: Tune
        # starts it again (from its last registered checkpoint, or anew). Report where it ended, train nothing.
        # Without a checkpoint: Tune numbers a restarted trial's checkpoints from its last registered one, so
        # a copy could overwrite a folder of its own; the record keeps naming its checkpoints (search/records.py).
        _report_ended(own, with_checkpoint=False)
        return
    resume_dir = None
    if checkpoint is None and continues and experiment is not None:
        me = tune.get_context().get_trial_id()
        earlier = experiment / f"trial_{last_of_chain(continues, lambda t: _record(experiment / f'trial_{t}'), me)}"
        if stopped or _ended(earlier):
            _report_ended(earlier)   # the study had finished it: report where it ended, train nothing
            return
        resume_dir = _newest_resumable(earlier)   # None: it had not finished an epoch; train from scratch
    # A trial Tune's saved state knows no checkpoint of trains from scratch in its own folder, even when it stored
    # some before the driver was killed: their results never reached the driver (no record of them, no
    # result.json rows), and training again numbers its checkpoints from checkpoint_000000 as before, so each
    # folder keeps holding the epoch its number says.

    run = wandb.start(config) if wandb is not None else None
    reporter = TuneReporter(run)
    nonfinite = getattr(core_train, "NonFiniteLossError", None)
    try:
        if checkpoint is None:
            core_train.train_retrieval(dict(config), reporter, shared=shared, resume_from=resume_dir)
            _report_if_nothing_left(reporter, resume_dir)
        else:
            # Local storage: the stored folder itself; cloud: a temp download kept for the call.
            with checkpoint.as_directory() as checkpoint_dir:
                resume_dir = usable_checkpoint(checkpoint_dir)
                continue_checkpoint_numbering(resume_dir)   # a newer one than Tune's: number on from it
                core_train.train_retrieval(dict(config), reporter, shared=shared, resume_from=resume_dir)
                _report_if_nothing_left(reporter, resume_dir)
    except Exception as e:
        if nonfinite is not None and isinstance(e, nonfinite):
            reporter.report_divergence(e)
            return
        raise
    finally:
        if run is not None:
            run.finish(stopping=sys.exc_info()[0] is SystemExit)   # Tune stopping the trial (ASHA, the end)


def _report_if_nothing_left(reporter: "TuneReporter", resume_dir: str | None) -> None:
    """A trial resumed from a checkpoint of its last epoch (its final or early-stopped one: a driver killed after
    the trial's last checkpoint was stored, before its end was recorded) trains nothing more: report that epoch
    again (no checkpoint: the record keeps naming its own), or Tune ends the trial on a result without R@1 and
    the search with it."""
    if reporter.reported or resume_dir is None:
        return
    try:
        report = json.loads((Path(resume_dir) / REPORT_FILE).read_text())
    except (OSError, ValueError):
        report = None
    if not isinstance(report, dict) or "epoch" not in report:   # a folder written before report.json existed
        epochs = (_record(Path(resume_dir).parent) or {}).get("epochs") or [{}]
        report = epochs[-1]
    tune.report(lean(report))


def _record(trial_dir: Path) -> dict | None:
    try:
        record = json.loads((trial_dir / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _ended(trial_dir: Path) -> bool:
    """Its own record says the trial ended well (search/records.py writes TERMINATED when Tune ends it: finished
    or stopped by the scheduler). An ERROR is retried, as --resume promises."""
    return (_record(trial_dir) or {}).get("status") == "TERMINATED"


def _newest_resumable(trial_dir: Path) -> str | None:
    from core.checkpoint import is_intact

    for checkpoint in sorted(trial_dir.glob("checkpoint_*"), reverse=True):
        if is_intact(checkpoint, resumable=True):
            return str(checkpoint)
    return None


def _report_ended(trial_dir: Path, with_checkpoint: bool = True) -> None:
    """Report an ended trial's last epoch again (lean keys), so the trial that continues it (or Tune's fresh start
    of it) has a result where it stopped. ``with_checkpoint``: with its newest checkpoint that holds a model (a
    trial continuing another one's folder); without, its own folder keeps its checkpoints as they are and the
    record keeps naming them (search/records.py)."""
    from core.checkpoint import is_intact

    epochs = (_record(trial_dir) or {}).get("epochs") or []
    if not epochs:
        return
    models = [c for c in sorted(trial_dir.glob("checkpoint_*"), reverse=True) if with_checkpoint and is_intact(c)]
    tune.report(lean(epochs[-1]), checkpoint=tune.Checkpoint.from_directory(str(models[0])) if models else None)


def usable_checkpoint(directory: str) -> str:
    """The checkpoint Tune restores from or, when it is cut off (a full disk), emptied or stripped of its training
    state once a newer one was stored (search/retention.py: the experiment state that names it was saved before),
    the trial's newest whole resumable checkpoint beside it. From an older one the trial repeats the epochs in
    between (results/ keeps the later report of a repeated epoch); from a newer one it loses nothing."""
    from core.checkpoint import CheckpointError, is_intact

    if is_intact(directory, resumable=True):
        return directory
    wanted = Path(directory)
    sibling = _newest_resumable(wanted.parent)   # not ``wanted``: it is not whole
    if sibling is not None:
        print(f"checkpoint {wanted.name} is cut off or missing; continuing from {Path(sibling).name}", flush=True)
        return sibling
    raise CheckpointError(f"{wanted} is cut off or missing and the trial has no other whole checkpoint.",
                          where=wanted.parent, fix="the trial cannot continue; start a new search (--name) "
                          "or read its finished epochs with python -m results.")


def trial_resources(args: SearchArgs) -> dict[str, float]:
    return {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial}


def build_trainable(args: SearchArgs, shared: Any, base: dict[str, Any] | None = None) -> Callable:
    """with_parameters puts ``shared`` into the object store ONCE; every trial gets a reference (and reads the
    corpus from shared memory, zero-copy). The search and its refit use this one trainable; ``base``: the config
    constants (search/tuner.py gives Tune only the sampled keys)."""
    from .wandb_setup import trial_wandb

    trainable = tune.with_parameters(train_trial, shared=shared, wandb=trial_wandb(args), base=dict(base or {}),
                                     place=SearchPlace(args.experiment_path, args.name))
    return tune.with_resources(trainable, trial_resources(args))

