"""Weights & Biases: one run per trial (grouped by experiment) plus one summary run.

Without credentials (no WANDB_API_KEY, no netrc entry) everything runs offline: the runs are
written under ``<experiment>/wandb/`` and can be uploaded later with ``wandb sync``.
"""
from __future__ import annotations

import glob
import html
import netrc
import os
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

# Ray's own callback (one W&B run per trial, fed from a queue by a logging actor); this module
# is imported only once a search starts, so importing ray here costs nothing extra.
from ray.air.integrations.wandb import WandbLoggerCallback

from .args import SearchArgs
from .ray_internals import trials_with_logging_actors, wandb_logging_actor_base

WANDB_SUBDIR = "wandb"   # wandb.init(dir=D) writes D/wandb/<offline-run-...>


def has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_mode() -> str:
    """'online' with credentials, else 'offline'; an explicit WANDB_MODE wins.

    Sets WANDB_MODE in THIS (driver) process: Ray's callback checks it here before any trial
    starts, and would otherwise look for an API key and fail.
    """
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled", "online"):
        return mode
    mode = "online" if has_credentials() else "offline"
    os.environ["WANDB_MODE"] = mode
    return mode


def wandb_root(args: SearchArgs) -> str | None:
    """Local folder that receives the W&B run dirs (None for cloud storage: then each trial's
    run dir lands in its trial folder and is uploaded with it)."""
    return args.experiment_path if args.is_local_storage else None


class TeardownLoggingActor(wandb_logging_actor_base()):
    """Ray's per-trial W&B logging actor, plus an explicit shutdown of the W&B service.

    Without it the actor's exit races wandb's atexit hook and prints a "Connection lost"
    traceback for every trial (the run data is complete either way).
    """

    def run(self):
        try:
            super().run()
        finally:
            self._wandb.teardown()


class TrialWandbCallback(WandbLoggerCallback):
    _logger_actor_cls = TeardownLoggingActor

    def on_experiment_end(self, trials, **info):
        # After Ctrl+C, trials still running never get log_trial_end, so their logging actors
        # never see END and Ray would wait upload_timeout (30 min) for them: end them first.
        for trial in trials_with_logging_actors(self):
            self._signal_logging_actor_stop(trial)
        super().on_experiment_end(trials, **info)


def make_callback(args: SearchArgs, job_type: str = "trial") -> Any:
    """Ray's per-trial W&B callback: one run per trial in the experiment's group (job type "trial", or
    "refit" for the refit stage's runs)."""
    import wandb

    mode = resolve_mode()
    # Passed to wandb.init in each trial's logging actor (whose env may predate our WANDB_MODE).
    # reinit="finish_previous" is what Ray's deprecated reinit=True means; NOT "create_new": the
    # actor logs through the global `wandb.run`, which that leaves unset (every log then fails
    # and Ray restarts the actor, splitting a trial over several runs).
    kwargs: dict[str, Any] = {"mode": mode, "reinit": "finish_previous",
                              "settings": wandb.Settings(silent=True)}
    root = wandb_root(args)
    if root is not None:
        Path(root).mkdir(parents=True, exist_ok=True)
        kwargs["dir"] = root
    # Offline runs only write local files: finishing never takes long, so do not wait 30 min.
    timeout = 1800 if mode == "online" else 120
    return TrialWandbCallback(project=args.wandb_project, group=args.name, job_type=job_type,
                              log_config=False, upload_timeout=timeout, **kwargs)


def offline_run_dirs(args: SearchArgs) -> list[str]:
    root = wandb_root(args)
    if root is None:
        return []
    return sorted(glob.glob(os.path.join(root, WANDB_SUBDIR, "offline-run-*")))


def sync_hint(args: SearchArgs) -> str | None:
    if os.environ.get("WANDB_MODE") != "offline":
        return None
    root = wandb_root(args)
    if root is None:
        where = f"{args.experiment_path}/*/wandb/offline-run-*"
        return f"W&B ran offline (no API key). Upload later with:\n  wandb login && wandb sync {where}"
    runs = offline_run_dirs(args)
    where = os.path.join(root, WANDB_SUBDIR, "offline-run-*")
    return (f"W&B ran offline (no API key): {len(runs)} runs in {os.path.join(root, WANDB_SUBDIR)}. "
            f"Upload later with:\n  wandb login && wandb sync {where}")


def log_summary(args: SearchArgs, *, best_config: Mapping[str, Any] | None,
                best_metrics: Mapping[str, Any] | None, leaderboard: str | None,
                similarity_png: Path | None, refit_text: str | None = None,
                ensemble_text: str | None = None) -> str | None:
    """One extra run in the experiment's group holding the best config, its metrics, the
    leaderboard, the refit ranking, the ensemble verdict and the best trial's similarity heatmap.
    Returns the run dir (or None)."""
    import wandb

    mode = os.environ.get("WANDB_MODE", resolve_mode())
    if mode == "disabled":
        return None
    root = wandb_root(args)
    run = wandb.init(project=args.wandb_project, group=args.name, job_type="summary",
                     name=f"{args.name}-summary", dir=root, mode=mode,
                     config=dict(best_config or {}), reinit="create_new",
                     settings=wandb.Settings(silent=True))
    try:
        payload: dict[str, Any] = {}
        if similarity_png is not None and Path(similarity_png).is_file():
            payload["best_similarity"] = wandb.Image(str(similarity_png),
                                                     caption="best trial: val text x motion similarity")
        for key, text in (("leaderboard", leaderboard), ("refit_ranking", refit_text), ("ensemble", ensemble_text)):
            if text:
                payload[key] = wandb.Html(f"<pre>{html.escape(text)}</pre>")
        if payload:
            run.log(payload)
        for key, value in (best_metrics or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                run.summary[f"best/{key}"] = value
        return run.dir
    finally:
        run.finish()
