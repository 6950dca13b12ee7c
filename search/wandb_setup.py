"""Weights & Biases: one run per trial (grouped by experiment), logged from inside the trial, plus one summary run.

Each trial opens its own run in its worker process (``TrialWandb.start``) and logs every epoch's full metrics
there, so the driver never waits on W&B: no logging actor per trial, no per-result round trip through Tune's
callback loop (which made a search several times slower). A trial's run id is its trial id (``resume="allow"``:
a restored trial continues the same run). W&B is optional: a run that cannot start or log prints one warning
and the trial trains on without it.

Without credentials (no WANDB_API_KEY, no netrc entry) everything runs offline: the runs are
written under ``<experiment>/wandb/`` and can be uploaded later with ``wandb sync``.
"""
from __future__ import annotations

import glob
import html
import http.client
import netrc
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

from ray import tune

from .args import SearchArgs
from .reach import TIMED_OUT, connect_problem

WANDB_SUBDIR = "wandb"   # wandb.init(dir=D) writes D/wandb/<offline-run-...>


def has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


# Seconds the driver waits, once before Ray starts, for the W&B server to accept a connection and answer.
WANDB_CONNECT_TIMEOUT_S = float(os.environ.get("MOTION_SEARCH_WANDB_TIMEOUT_S", "10"))
# Seconds a trial's online wandb.init may take before the trial logs offline instead (wandb's own default: 90).
WANDB_INIT_TIMEOUT_S = 30.0


def resolve_mode(timeout: float | None = None) -> str:
    """'online' when it can be (credentials, and the server accepts a connection within ``timeout`` s), else
    'offline' with one warning saying why (W&B is optional: the search never waits on it or ends over it);
    an explicit WANDB_MODE=offline/disabled wins. Sets WANDB_MODE in this process (the driver's summary run and
    the sync hint read it, the trials get it through ``TrialWandb``)."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled"):
        return mode
    if _DECIDED and mode == _DECIDED[-1]:   # decided once per driver (before Ray starts); not asked again
        return mode
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    problem = None
    credentials = has_credentials()
    if not credentials:
        if mode == "online":   # asked for, but it would fail in wandb.init: say so once, log offline
            problem = "WANDB_MODE=online but there is no W&B API key (WANDB_API_KEY, or `wandb login`)"
    else:
        problem = unreachable(base, WANDB_CONNECT_TIMEOUT_S if timeout is None else timeout)
    if problem:
        _warn(f"{problem}: W&B logs offline instead, and the search goes on. Upload the runs later with "
              "`wandb sync` (the command is printed at the end).")
    mode = "online" if credentials and not problem else "offline"
    os.environ["WANDB_MODE"] = mode
    _DECIDED.append(mode)
    return mode


_DECIDED: list[str] = []


def unreachable(url: str, timeout: float) -> str | None:
    """Why the server at ``url`` cannot be reached (None: it answered an HTTP request within ``timeout`` s, with
    any status). A TCP connect alone is not enough: a proxy or a hung server that accepts and never answers would
    make every trial's wandb.init wait for its own timeout and then log nothing."""
    parsed = urlparse(url)
    host = parsed.hostname
    if not host or parsed.scheme not in ("http", "https"):
        return f"WANDB_BASE_URL={url!r} is not an http(s) URL"
    reason = connect_problem(host, parsed.port or (80 if parsed.scheme == "http" else 443), timeout)
    if reason == TIMED_OUT:
        return f"the W&B server {url} did not answer within {timeout:g} s (MOTION_SEARCH_WANDB_TIMEOUT_S)"
    if reason is not None:
        return f"the W&B server {url} cannot be reached ({reason})"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return None
    except urllib.error.HTTPError:     # an answer (404, 401, ...): the server is there
        return None
    except (OSError, http.client.HTTPException) as exc:   # URLError is an OSError; it wraps a connect's timeout
        why = getattr(exc, "reason", None) or exc
        if isinstance(why, TimeoutError):
            return (f"the W&B server {url} accepted a connection but did not answer an HTTP request within "
                    f"{timeout:g} s (MOTION_SEARCH_WANDB_TIMEOUT_S)")
        return f"the W&B server {url} did not answer as an HTTP server ({type(exc).__name__}: {str(why)[:120]})"


def wandb_root(args: SearchArgs) -> str | None:
    """Local folder that receives the W&B run dirs (None for cloud storage: then each trial's
    run dir lands in its trial folder and is uploaded with it)."""
    return args.experiment_path if args.is_local_storage else None


@dataclass(frozen=True)
class TrialWandb:
    """What a trial needs to open its W&B run; travels to the workers with the trainable (plain values only)."""
    project: str
    group: str                 # the search's name: every run of one search in one group
    mode: str                  # online / offline / disabled, resolved on the driver (workers may lack the env)
    root: str | None           # wandb.init(dir=...); None: the trial's working directory
    search_experiment: str     # Tune's experiment name of the search; any other (the refit's) logs job type "refit"

    def job_type(self) -> str:
        return "trial" if tune.get_context().get_experiment_name() == self.search_experiment else "refit"

    def start(self, config: Mapping[str, Any]) -> "TrialRun | None":
        """This trial's run, or None (disabled, or W&B failed: one warning, the trial goes on)."""
        if self.mode == "disabled":
            return None
        context = tune.get_context()
        trial_id, trial_name = context.get_trial_id(), context.get_trial_name()
        # wandb's own console lines (sync hints, "Problem finishing run" when Ray ends a stopped trial's worker
        # mid-finish) would repeat for every trial: our one-line warnings say what matters
        os.environ.setdefault("WANDB_SILENT", "true")
        try:
            import wandb

            def init(mode: str):
                # x_save_requirements: wandb otherwise reads the metadata of every installed package for every run
                # (90 % of a run's start-up CPU, ~0.13 s); the search's summary run records them once
                return wandb.init(project=self.project, group=self.group, job_type=self.job_type(), name=trial_name,
                                  id=trial_id, resume="allow", dir=self.root, mode=mode, config=dict(config),
                                  reinit="create_new",
                                  settings=wandb.Settings(silent=True, console="off", x_save_requirements=False,
                                                          init_timeout=WANDB_INIT_TIMEOUT_S))
            try:
                run = init(self.mode)
            except Exception as exc:
                if self.mode != "online":
                    raise
                # the server answered the driver's question but not this run: keep the epochs in an offline run
                _warn(f"trial {trial_id}: W&B could not start online ({type(exc).__name__}: {str(exc)[:160]}); "
                      "this trial logs offline (`wandb sync` uploads it later).")
                run = init("offline")
        except Exception as exc:   # W&B is optional: never end a trial over it
            _warn(f"trial {trial_id}: W&B run could not start ({type(exc).__name__}: {str(exc)[:200]}); "
                  "training goes on without it.")
            return None
        _teardown_quietly_at_exit()
        return TrialRun(run, trial_id)


_TEARDOWN_REGISTERED: list[bool] = []


def _teardown_quietly_at_exit() -> None:
    """A trial worker keeps one W&B service for all the trials it runs (starting one costs ~0.3 s). When Ray ends
    the worker it also kills the service, and wandb's own exit hook then prints a "Connection lost" traceback.
    Registered after that hook, this one runs first (atexit is last-in first-out): it tears W&B down, which
    unregisters wandb's hook, and swallows the error of a service that is already gone. Every run was finished
    (or its records written) before, so nothing is lost."""
    if _TEARDOWN_REGISTERED:
        return
    import atexit

    def teardown() -> None:
        try:
            import wandb

            wandb.teardown()
        except Exception:
            pass

    atexit.register(teardown)
    _TEARDOWN_REGISTERED.append(True)


class TrialRun:
    """One trial's W&B run: ``log`` every epoch, ``finish`` at the end; a failure turns it off with one warning."""

    def __init__(self, run: Any, trial_id: str) -> None:
        self.run, self.trial_id = run, trial_id

    def log(self, metrics: Mapping[str, Any], epoch: int) -> None:
        if self.run is None:
            return
        try:
            self.run.log({k: v for k, v in metrics.items() if _loggable(v)}, step=int(epoch))
        except Exception as exc:
            _warn(f"trial {self.trial_id}: W&B logging stopped ({type(exc).__name__}: {str(exc)[:200]}); "
                  "training goes on.")
            self.run = None

    def finish(self, stopping: bool = False) -> None:
        """``stopping``: Tune is stopping the trial (SystemExit from tune.report); it does not wait for this
        thread, so the worker may end mid-finish. Every epoch was logged before, so a failure then is silent."""
        if self.run is None:
            return
        try:
            self.run.finish()
        except Exception as exc:
            if not stopping:
                _warn(f"trial {self.trial_id}: W&B run did not finish cleanly ({type(exc).__name__}); its epochs "
                      "are in the run files.")
        self.run = None


def _loggable(value: Any) -> bool:
    return isinstance(value, (int, float, str)) or value is None


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def trial_wandb(args: SearchArgs) -> TrialWandb | None:
    """The W&B settings every trial of this search logs with; None with --no-wandb."""
    if not args.wandb:
        return None
    mode = resolve_mode()
    root = wandb_root(args)
    if root is not None:
        Path(root).mkdir(parents=True, exist_ok=True)
    return TrialWandb(project=args.wandb_project, group=args.name, mode=mode, root=root,
                      search_experiment=args.name)


class RetiredWandbCallback(tune.Callback):
    """What the ``tuner.pkl`` of a search started before W&B moved into the trials unpickles its W&B callback as:
    it does nothing (the trials log to W&B themselves now), so such a search still resumes."""

    def __setstate__(self, state: dict) -> None:   # Ray's WandbLoggerCallback state: nothing of it is needed
        pass


TrialWandbCallback = RetiredWandbCallback   # the name older tuner.pkl files refer to


def offline_run_dirs(args: SearchArgs) -> list[str]:
    root = wandb_root(args)
    if root is None:
        return []
    return sorted(glob.glob(os.path.join(root, WANDB_SUBDIR, "offline-run-*")))


def sync_hint(args: SearchArgs) -> str | None:
    root = wandb_root(args)
    if os.environ.get("WANDB_MODE") != "offline":
        fell_back = offline_run_dirs(args)   # online search, trials whose run could not start online
        if not fell_back:
            return None
        where = os.path.join(root, WANDB_SUBDIR, "offline-run-*")   # type: ignore[arg-type]
        return (f"W&B: {len(fell_back)} run(s) logged offline when W&B could not start online. Upload them with:\n"
                f"  wandb sync {where}")
    if root is None:
        where = f"{args.experiment_path}/*/wandb/offline-run-*"
        return f"W&B ran offline. Upload later with:\n  wandb login && wandb sync {where}"
    runs = offline_run_dirs(args)
    where = os.path.join(root, WANDB_SUBDIR, "offline-run-*")
    return (f"W&B ran offline: {len(runs)} runs in {os.path.join(root, WANDB_SUBDIR)}. "
            f"Upload later with:\n  wandb login && wandb sync {where}")


def log_summary(args: SearchArgs, *, best_config: Mapping[str, Any] | None,
                best_metrics: Mapping[str, Any] | None, leaderboard: str | None,
                similarity_png: Path | None, refit_text: str | None = None,
                ensemble_text: str | None = None) -> str | None:
    """One extra run in the experiment's group holding the best config, its metrics, the
    leaderboard, the refit ranking, the ensemble verdict and the best trial's similarity heatmap.
    Returns the run dir (or None)."""
    import wandb

    mode = os.environ.get("WANDB_MODE") or resolve_mode()
    if mode == "disabled":
        return None
    root = wandb_root(args)
    try:
        run = wandb.init(project=args.wandb_project, group=args.name, job_type="summary",
                         name=f"{args.name}-summary", dir=root, mode=mode,
                         config=dict(best_config or {}), reinit="create_new",
                         settings=wandb.Settings(silent=True))
    except Exception as exc:   # W&B is optional: the search's results are written already
        _warn(f"the W&B summary run could not start ({type(exc).__name__}: {str(exc)[:200]}); every result is in "
              f"{args.experiment_path}.")
        return None
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
