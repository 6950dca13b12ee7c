"""Command-line flags -> one frozen ``SearchArgs``, validated before Ray starts.

Every flag defaults to ``None`` in argparse so we can tell "given" from "default": ``--smoke-test``
swaps in its own defaults, and ``--resume`` refuses flags that would change a running search.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from core.config import SMOKE_DATA, SMOKE_MODEL, ConfigError, TrainConfig, default_flat, parse_set_pairs
from core.crossdata import EvalData, add_eval_data_flags
from core.data.errors import DataError
from core.data.spec import parse_spec
from spaces import SpaceError, get_space

from .errors import ArgsError
from .reach import available_cpus, check_address_reachable, sqlite_folder, visible_gpus
from .storage import ARGS_FILE, StorageError, is_uri, join, resolve_storage

DEFAULTS: dict[str, Any] = dict(
    space="aligned_loss", data=None, format=None, num_samples=6, max_epochs=3, grace_period=1,
    reduction_factor=2.0, scheduler="asha", sampler="tpe", cpus_per_trial=1.0, gpus_per_trial=0.0, max_concurrent=2, max_failures=1,
    address="local", storage="./experiments", name=None, resume=False, seed=0,
    wandb_project="motion-retrieval-search", wandb=True, ensemble_top_k=5, smoke_test=False,
    refit_top_k=2, refit_seeds=2, refit_epochs=None, eval_data=None, eval_format=None, eval_data_split=None,
    optuna_storage=None,
)
# --smoke-test: a whole search (ASHA, checkpoints, W&B, results) in well under a minute on CPU.
SMOKE_DEFAULTS: dict[str, Any] = dict(
    data=SMOKE_DATA, num_samples=4, max_epochs=2, grace_period=1, reduction_factor=2.0,
    max_concurrent=2, cpus_per_trial=1.0, ensemble_top_k=3,
)
SMOKE_OVERRIDES: dict[str, Any] = dict(SMOKE_MODEL)
SCHEDULERS = {"asha": "ASHA early stopping (default)", "fifo": "no early stopping: every trial trains --max-epochs",
              "hyperband": "Ray's synchronous HyperBand (brackets of successive halving; trials pause at each rung, "
                           "so it runs without --max-concurrent: the trial resources bound concurrency)"}
SAMPLERS = {"tpe": "Optuna TPE, multivariate (default)", "random": "Optuna random sampling (a baseline)"}
# Config keys that have their own flag: setting them via --set would silently fight the flag.
MAX_NAME_BYTES = 200   # a folder name: filesystems allow 255 bytes, and Tune and W&B add their own suffixes
FLAG_OWNED_KEYS = {"epochs": "--max-epochs", "data": "--data", "format": "--format", "seed": "--seed"}
# Flags that may differ on --resume (they do not change what the stored experiment computes).
RESUME_FREE_FLAGS = {"resume", "name", "storage", "address", "ensemble_top_k", "storage_shared"}
@dataclass(frozen=True)
class SearchArgs:
    space: str
    data: str | None
    format: str | None
    num_samples: int
    max_epochs: int
    grace_period: int
    reduction_factor: float
    cpus_per_trial: float
    gpus_per_trial: float
    max_concurrent: int
    max_failures: int
    address: str
    storage: str                   # absolute local path or a URI (s3://, gs://, ...)
    name: str
    resume: bool
    seed: int
    wandb_project: str
    wandb: bool
    ensemble_top_k: int
    smoke_test: bool
    overrides: tuple[tuple[str, Any], ...] = field(default=())  # typed fixed config values
    storage_shared: bool = False   # the user confirms a local --storage is shared by every node
    scheduler: str = "asha"        # defaults here too: search_args.json written before these flags existed
    sampler: str = "tpe"
    refit_top_k: int = 0           # refit stage (search/refit.py): distinct configs retrained, 0 = off
    refit_seeds: int = 2           # full-length runs per config (the search's own run counts as one)
    refit_epochs: int | None = None   # None = --max-epochs
    eval_data: str | None = None      # cross-dataset evaluation after the search (core/crossdata.py); trials never see it
    eval_format: str | None = None
    eval_data_split: str | None = None   # None = test
    optuna_storage: str | None = None    # the study's database URL; None = SQLite <experiment>/optuna.db

    @property
    def refit_length(self) -> int:
        return self.refit_epochs or self.max_epochs

    @property
    def eval(self) -> EvalData | None:
        """The other dataset the search's best model and ensemble are also tested on (None = none).  Its spec is
        parsed when the driver loads it (as --data's), before Ray starts: it may exist only where the search runs."""
        return EvalData.from_flags(self.eval_data, self.eval_format, self.eval_data_split, check_spec=False)

    @property
    def experiment_path(self) -> str:
        return join(self.storage, self.name)

    @property
    def is_local_storage(self) -> bool:
        return not is_uri(self.storage)

    @property
    def fixed_overrides(self) -> dict[str, Any]:
        return dict(self.overrides)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["overrides"] = [list(kv) for kv in self.overrides]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = ARGS_FILE) -> "SearchArgs":
        """The stored search; ArgsError naming ``where`` when it is not what this version writes."""
        if not isinstance(data, Mapping):
            raise ArgsError(f"--resume: {where} holds {type(data).__name__}, not the search's flags. Fix: start a "
                            "new --name (the experiment's trials stay readable with python -m results).")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = sorted(set(data) - known), sorted(f.name for f in dataclasses.fields(cls)
                                                             if f.name not in data and f.default is dataclasses.MISSING)
        if unknown or missing:
            raise ArgsError(f"--resume: {where} was not written by this version (unknown keys {unknown}, missing "
                            f"{missing}). Fix: resume it with the version that started it, or start a new --name.")
        data = dict(data)
        for f in dataclasses.fields(cls):
            if f.name in data and not _fits(data[f.name], str(f.type)):
                raise ArgsError(f"--resume: {where} is damaged: {f.name} = {data[f.name]!r} is not {f.type}. Fix: "
                                "restore the file (it is what the search was started with), or start a new --name "
                                "(the trials stay readable with python -m results).")
        data["overrides"] = tuple(tuple(kv) for kv in data.get("overrides", ()))
        args = cls(**data)
        try:
            validate_ranges(args)
        except ArgsError as e:
            raise ArgsError(f"--resume: {where} is damaged: {e} Fix: restore the file, or start a new --name.") \
                from None
        return args


# search_args.json's field types as written (JSON has no tuples: overrides are [key, value] pairs)
_JSON_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _fits(value: Any, annotation: str) -> bool:
    """Whether a stored value has its field's type (``annotation`` as written in SearchArgs, e.g. 'int | None')."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None:
        return "None" in kinds
    if annotation.startswith("tuple"):
        return isinstance(value, (list, tuple)) and all(
            isinstance(kv, (list, tuple)) and len(kv) == 2 and isinstance(kv[0], str) for kv in value)
    return any(isinstance(value, _JSON_TYPES.get(kind, ())) and (kind == "bool" or not isinstance(value, bool))
               for kind in kinds)


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    ap = argparse.ArgumentParser(
        prog="run_search.py",
        description="Distributed hyper-parameter search for text-to-motion retrieval "
                    "(Ray Tune + Optuna TPE + ASHA, optional W&B).")
    ap.add_argument("--space", help=f"search space name (default {d['space']}); see --list-spaces")
    ap.add_argument("--list-spaces", action="store_true", help="print the search spaces and exit")
    ap.add_argument("--data", help="dataset spec: 'synthetic[:k=v,...]' or a path (default: the trainer's)")
    ap.add_argument("--format", help="dataset loader name (default: auto-detect)")
    ap.add_argument("--num-samples", type=int, help=f"trials to run (default {d['num_samples']})")
    ap.add_argument("--max-epochs", type=int, help=f"epochs of a trial ASHA lets finish (default {d['max_epochs']})")
    ap.add_argument("--grace-period", type=int, help=f"epochs before ASHA may stop a trial (default {d['grace_period']})")
    ap.add_argument("--reduction-factor", type=float,
                    help=f"ASHA keeps 1/factor of trials per rung (default {d['reduction_factor']:g})")
    ap.add_argument("--scheduler", help="trial scheduler: " + "; ".join(f"{k} = {v}" for k, v in SCHEDULERS.items()))
    ap.add_argument("--sampler", help="Optuna sampler: " + "; ".join(f"{k} = {v}" for k, v in SAMPLERS.items()))
    ap.add_argument("--cpus-per-trial", type=float, help=f"CPUs per trial (default {d['cpus_per_trial']:g})")
    ap.add_argument("--gpus-per-trial", type=float,
                    help="GPUs per trial; fractions share a GPU, e.g. 0.5 (default 0)")
    ap.add_argument("--max-concurrent", type=int, help=f"trials running at once (default {d['max_concurrent']})")
    ap.add_argument("--max-failures", type=int,
                    help=f"retries of a crashed trial from its last checkpoint (default {d['max_failures']})")
    ap.add_argument("--address", help="'local' (default: start Ray here), 'auto' or host:port of a cluster")
    ap.add_argument("--storage", help="experiment root: a path, s3://bucket/dir or gs://bucket/dir "
                                      f"(default {d['storage']})")
    ap.add_argument("--storage-shared", action="store_true", default=None,
                    help="a local --storage path is on a filesystem mounted at the same path on every "
                         "node (NFS, ...): allow it on a multi-node cluster")
    ap.add_argument("--name", help="experiment name (default '<space>-<timestamp>'); with --resume: which one")
    ap.add_argument("--resume", action="store_true", help="continue the experiment --name in --storage")
    ap.add_argument("--seed", type=int, help="seed of the sampler and of every trial (default 0)")
    ap.add_argument("--wandb-project", help=f"W&B project (default {d['wandb_project']})")
    ap.add_argument("--no-wandb", dest="wandb", action="store_false", default=None, help="turn W&B logging off")
    ap.add_argument("--refit-top-k", type=int,
                    help=f"after the search, retrain the top k distinct configs to full length with "
                         f"--refit-seeds seeds each and rank them by the seed mean; 0 = off (default {d['refit_top_k']})")
    ap.add_argument("--refit-seeds", type=int,
                    help=f"full-length runs per refit config; the search's own full-length run counts as one "
                         f"(default {d['refit_seeds']})")
    ap.add_argument("--refit-epochs", type=int, help="epochs of every refit run (default: --max-epochs)")
    ap.add_argument("--ensemble-top-k", type=int,
                    help=f"ensemble after the search: members are the refit runs (or, with --refit-top-k 0, the "
                         f"top k trials); 0 = off (default {d['ensemble_top_k']})")
    add_eval_data_flags(ap, "after the search, also report the best model's and the "
                         "ensemble's test metrics on this dataset (same feature layout; never used to choose)")
    ap.add_argument("--optuna-storage", metavar="URL",
                    help="database of the Optuna study (default: SQLite <experiment>/optuna.db), e.g. "
                         "postgresql+psycopg2://user@host/db to keep many searches' studies in one database; the study is "
                         "named after --name. Open it with optuna-dashboard URL")
    ap.add_argument("--smoke-test", action="store_true", default=None,
                    help="tiny CPU search in seconds: synthetic:n=200, 4 trials, 2 epochs, tiny model")
    ap.add_argument("--set", dest="overrides", action="append", default=None, metavar="KEY=VALUE",
                    help="fix a config key for every trial (repeatable), e.g. --set max_frames=120")
    return ap


def given_flags(ns: argparse.Namespace) -> dict[str, Any]:
    """The flags the user actually typed (argparse leaves the others at None/False)."""
    out = {k: v for k, v in vars(ns).items() if v is not None and k != "list_spaces"}
    if not out.get("resume"):
        out.pop("resume", None)
    return out


def parse_overrides(items: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    """['k=v', ...] -> typed (key, value) pairs, each checked against TrainConfig."""
    try:
        raw = parse_set_pairs(items)
    except ConfigError as e:
        raise ArgsError(str(e)) from None
    for key in raw:
        if key in FLAG_OWNED_KEYS:
            raise ArgsError(f"--set {key}=...: '{key}' has its own flag; use {FLAG_OWNED_KEYS[key]} instead.")
    if not raw:
        return ()
    try:  # from_flat checks names (with did-you-mean) and coerces '0.05' -> 0.05, 'true' -> True
        typed = TrainConfig.from_flat({**default_flat(), **raw}).to_flat()
    except ConfigError as e:
        raise ArgsError(f"--set: {e}") from None
    return tuple((k, typed[k]) for k in raw)


def resolve_args(given: Mapping[str, Any], *, now: float | None = None, check_storage: bool = True) -> SearchArgs:
    """Defaults (smoke-test ones if asked) + given flags -> validated SearchArgs. ``check_storage=False``: the
    flags are for a search that runs elsewhere (``python -m cluster submit``), whose storage this machine need
    not reach or write."""
    smoke = bool(given.get("smoke_test"))
    values = {**DEFAULTS, **(SMOKE_DEFAULTS if smoke else {}),
              **{k: v for k, v in given.items() if k != "overrides"}}
    overrides = dict(parse_overrides(given.get("overrides") or ()))
    if smoke:  # the user's --set wins over the tiny-model defaults
        overrides = {**SMOKE_OVERRIDES, **overrides}
    values["overrides"] = tuple(overrides.items())
    try:
        get_space(values["space"])
    except SpaceError as e:
        raise ArgsError(f"--space: {e}") from None
    if values.get("name") is None:
        if values.get("resume"):
            raise ArgsError("--resume needs --name: the experiment to continue (a folder in --storage).")
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        values["name"] = f"{'smoke-' if smoke else ''}{values['space']}-{stamp}"
    args = SearchArgs(**values)
    validate(args)
    check_address_reachable(args.address)
    try:  # last: it creates the folder, which only a valid command should do
        storage = resolve_storage(args.storage, check_writable=check_storage)
    except StorageError as e:
        raise ArgsError(str(e)) from None
    return dataclasses.replace(args, storage=storage)


def _need(cond: bool, flag: str, problem: str) -> None:
    if not cond:
        raise ArgsError(f"{flag}: {problem}")


def validate_ranges(args: SearchArgs) -> None:
    """The flags' values on their own: what a command's flags and a stored search_args.json must satisfy."""
    need = _need
    need(args.num_samples >= 1, "--num-samples", f"{args.num_samples} must be >= 1.")
    need(args.max_epochs >= 1, "--max-epochs", f"{args.max_epochs} must be >= 1.")
    need(1 <= args.grace_period <= args.max_epochs, "--grace-period",
         f"{args.grace_period} must be in [1, --max-epochs={args.max_epochs}] (ASHA cannot wait longer "
         "than a trial lasts); lower it or raise --max-epochs.")
    need(math.isfinite(args.reduction_factor) and args.reduction_factor > 1, "--reduction-factor",
         f"{args.reduction_factor:g} must be a finite number > 1 (ASHA keeps 1/factor of the trials at each rung).")
    need(0 <= args.seed < 2**32, "--seed", f"{args.seed} must be in [0, 2**32).")
    need(args.scheduler in SCHEDULERS, "--scheduler", f"{args.scheduler!r}: expected one of {', '.join(SCHEDULERS)}.")
    need(args.sampler in SAMPLERS, "--sampler", f"{args.sampler!r}: expected one of {', '.join(SAMPLERS)}.")
    need(args.max_concurrent >= 1, "--max-concurrent", f"{args.max_concurrent} must be >= 1.")
    need(args.max_failures >= 0, "--max-failures", f"{args.max_failures} must be >= 0.")
    need(args.ensemble_top_k >= 0, "--ensemble-top-k", f"{args.ensemble_top_k} must be >= 0 (0 = off).")
    need(args.refit_top_k >= 0, "--refit-top-k", f"{args.refit_top_k} must be >= 0 (0 = off).")
    need(args.refit_seeds >= 1, "--refit-seeds", f"{args.refit_seeds} must be >= 1.")
    need(args.refit_epochs is None or args.refit_epochs >= 1, "--refit-epochs", f"{args.refit_epochs} must be >= 1.")
    need(args.cpus_per_trial > 0, "--cpus-per-trial", f"{args.cpus_per_trial:g} must be > 0.")
    need(args.gpus_per_trial >= 0, "--gpus-per-trial", f"{args.gpus_per_trial:g} must be >= 0.")
    need(args.gpus_per_trial <= 1 or float(args.gpus_per_trial).is_integer(), "--gpus-per-trial",
         f"{args.gpus_per_trial:g}: fractions are allowed only below 1 (several trials share one GPU).")
    need(args.name not in ("", ".", "..") and "/" not in args.name and "\\" not in args.name, "--name",
         f"{args.name!r} must be a plain folder name (no '/').")
    need(len(args.name.encode()) <= MAX_NAME_BYTES, "--name",
         f"{len(args.name.encode())} bytes is too long for a folder name; use at most {MAX_NAME_BYTES}.")
    need(bool(args.wandb_project.strip()), "--wandb-project", "must not be empty.")
    need(args.optuna_storage is None or "://" in args.optuna_storage, "--optuna-storage",
         f"{args.optuna_storage!r}: expected a database URL, e.g. sqlite:////abs/path/study.db or "
         "postgresql+psycopg2://user@host/db.")


def validate(args: SearchArgs) -> None:
    """A command's flags: their values, then against this machine, the filesystem and the data spec."""
    need = _need
    validate_ranges(args)
    folder = sqlite_folder(args.optuna_storage)
    need(folder is None or folder.is_dir(), "--optuna-storage",
         f"{args.optuna_storage}: the folder {folder} does not exist, so SQLite cannot create the database there. "
         "Fix: create the folder, or point the URL at an existing one (sqlite:////abs/path/study.db).")
    device = str(args.fixed_overrides.get("device", "auto"))
    need(not device.startswith("cuda") or args.gpus_per_trial > 0, "--set device",
         f"{device!r} with --gpus-per-trial 0: Ray hides every GPU from a trial that asks for none, so each trial "
         "would fail. Add --gpus-per-trial 1 (or a fraction such as 0.5), or use device=auto.")
    need(not args.is_local_storage or not os.path.exists(args.experiment_path)
         or os.path.isdir(args.experiment_path), "--name",
         f"{args.name!r}: {args.experiment_path} is a file, not an experiment folder. Choose another --name "
         "(or move the file away).")
    try:   # the flags' combination here; the spec, its path and layout when both datasets load (search/run.py)
        args.eval
        if args.data is not None:   # its spec and path now, in a second (the loaders need torch: seconds more)
            parse_spec(args.data, args.format)
    except DataError as e:
        raise ArgsError(str(e)) from None
    need(args.address == "local" or args.address == "auto" or ":" in args.address, "--address",
         f"{args.address!r}: expected 'local', 'auto', host:port or ray://host:port.")
    need(not args.address.startswith("ray://") or importlib.util.find_spec("grpc") is not None, "--address",
         f"{args.address}: a ray:// address connects through Ray Client, which needs the package ray[client] "
         "(grpcio); it is not installed. Fix: pip install \"ray[client]\" (the same Ray version), or run the search "
         "on a machine of the cluster with --address auto or host:6379 (the head's GCS port).")
    if args.address == "local":
        cpus = available_cpus()
        need(args.cpus_per_trial <= cpus, "--cpus-per-trial",
             f"{args.cpus_per_trial:g} > the {cpus} CPU(s) of this machine; no trial could ever start. "
             f"Use at most {cpus}, or --address to join a bigger cluster.")
        if args.gpus_per_trial > 0:
            gpus = visible_gpus()
            need(gpus > 0 and args.gpus_per_trial <= gpus, "--gpus-per-trial",
                 f"{args.gpus_per_trial:g} but this machine has {gpus} visible GPU(s); use 0 or --address.")
    if args.is_local_storage and args.address != "local" and not args.storage_shared:
        print(f"note: --storage {args.storage} is a local path; on a multi-node cluster every node must "
              "see it (NFS: then add --storage-shared), otherwise use s3:// or gs://.")


def check_resume_compatible(stored: SearchArgs, given: Mapping[str, Any], *, storage: str) -> SearchArgs:
    """--resume keeps the stored search; flags that would change it are an error, not a surprise."""
    stored_json = stored.to_json()
    for key, value in given.items():
        if key in RESUME_FREE_FLAGS or key == "smoke_test":
            continue
        if key == "overrides":
            new = set(parse_overrides(value)) - set(stored.overrides)
            if new:
                raise ArgsError(f"--set {sorted(new)} cannot change on --resume: experiment {stored.name!r} "
                                f"runs with {list(stored.overrides)}. Start a new --name instead.")
            continue
        if stored_json.get(key) != value:
            flag = "--" + key.replace("_", "-")
            raise ArgsError(f"{flag} {value!r} cannot change on --resume: experiment {stored.name!r} was "
                            f"started with {stored_json.get(key)!r}. Drop the flag, or start a new --name.")
    free = {k: given[k] for k in ("address", "ensemble_top_k", "storage_shared") if k in given}
    # The folder the user points at, not the one stored: a moved or copied experiment resumes in place.
    name = given.get("name") or stored.name
    resumed = dataclasses.replace(stored, **free, storage=storage, name=name, resume=True)
    validate(resumed)
    check_address_reachable(resumed.address)
    return resumed
