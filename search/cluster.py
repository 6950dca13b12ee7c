"""Running the same search on a Ray cluster: joining it, what every worker gets, and the checks that
must pass before any trial starts.

    ensure_ray(args)      start Ray here (--address local) or join a cluster with the repository as
                          the job's working_dir and the W&B / Ray-auth env vars forwarded to workers
    check_cluster(args)   one trial fits on some node (asking an autoscaler and waiting if needed), and a
                          local --storage path is refused on a multi-node cluster unless --storage-shared
    trial_placement()     {ray_node_id, ray_gpu_ids, cuda_available}: added to every report by the
                          trainable, so epochs.parquet shows where each trial ran and on what device

Nothing here changes what a trial computes: a search on a cluster differs from a local one only in
--address and --storage.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Mapping

from .args import ArgsError, SearchArgs

REPO_ROOT = Path(__file__).resolve().parents[1]
# Never ship these to cluster workers with the code.
RUNTIME_EXCLUDES = [".git", "experiments", "**/__pycache__", ".venv", ".pytest_cache", "*.parquet",
                    "*.ckpt", "*.pt"]
# Forwarded from the driver's environment to every worker of the job when set. The W&B logging actors
# are Ray workers too: without WANDB_MODE they would look for an API key the driver decided not to use.
WANDB_ENV_VARS = ("WANDB_MODE", "WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_BASE_URL")
RAY_AUTH_ENV_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
# Trials write checkpoints to s3:// / gs:// storage themselves: they need the driver's storage settings.
STORAGE_ENV_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
                    "AWS_REGION", "AWS_ENDPOINT_URL", "GOOGLE_APPLICATION_CREDENTIALS")
SECRET_ENV_VARS = frozenset({"WANDB_API_KEY", "RAY_AUTH_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})
# (never printed, only named)
# How long to wait for an autoscaler to add a node that fits one trial (0 = fail at once).
RESOURCE_WAIT_ENV = "MOTION_SEARCH_RESOURCE_WAIT_S"
DEFAULT_RESOURCE_WAIT_S = 600.0
# Set by Ray's job manager in the driver of a `ray job submit` job (ray._private.runtime_env.constants).
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


# ---------------------------------------------------------------- runtime env

def forwarded_env_vars(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The W&B, Ray token-auth and cloud-storage variables set (non-empty) in the driver's environment."""
    environ = os.environ if environ is None else environ
    out = {k: environ[k] for k in WANDB_ENV_VARS + RAY_AUTH_ENV_VARS + STORAGE_ENV_VARS if environ.get(k)}
    if "RAY_AUTH_TOKEN" in out:
        # The token itself wins over a path in Ray's lookup order; a driver-side path may not exist on
        # the workers, and a token path Ray cannot read aborts the process instead of falling back.
        out.pop("RAY_AUTH_TOKEN_PATH", None)
    return out


def job_runtime_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The runtime env of the `ray job submit` job this driver runs in ({} outside a job)."""
    environ = os.environ if environ is None else environ
    raw = environ.get(JOB_CONFIG_ENV)
    if not raw:
        return {}
    try:
        return dict(json.loads(raw).get("runtime_env") or {})
    except (ValueError, AttributeError):
        return {}


def cluster_runtime_env(repo: Path = REPO_ROOT, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What ray.init(address=...) passes to every worker of the search.

    Inside a submitted job Ray refuses a ray.init runtime env that repeats a field or env var the job
    already sets, so those are left to the job: `ray job submit --working-dir .` already ships the code.
    """
    job = job_runtime_env(environ)
    env: dict[str, Any] = {}
    if not (job.get("working_dir") or job.get("py_modules")):
        env["working_dir"] = str(repo)
        env["excludes"] = list(RUNTIME_EXCLUDES)
    job_vars = job.get("env_vars") or {}
    env_vars = {k: v for k, v in forwarded_env_vars(environ).items() if k not in job_vars}
    if env_vars:
        env["env_vars"] = env_vars
    return env


def describe_runtime_env(env: Mapping[str, Any]) -> str:
    """One line for the log: the working dir and the NAMES of forwarded variables (values of secrets
    are never printed)."""
    parts = []
    if "working_dir" in env:
        parts.append(f"working_dir={env['working_dir']}")
    for key, value in sorted((env.get("env_vars") or {}).items()):
        parts.append(f"{key}=<set>" if key in SECRET_ENV_VARS else f"{key}={value}")
    return ", ".join(parts) or "nothing (the job's own runtime env applies)"


# ---------------------------------------------------------------- joining

def ensure_ray(args: SearchArgs) -> bool:
    """ray.init unless Ray is already up (tests, notebooks). Returns True if we started it."""
    import ray

    from .reach import available_cpus

    if ray.is_initialized():
        return False
    if args.address == "local":
        ray.init(address="local", num_cpus=available_cpus(), include_dashboard=False,
                 log_to_driver=True)
        return True
    # A cluster's workers need this code: ship the repository as the job's working dir.
    runtime_env = cluster_runtime_env()
    try:
        ray.init(address=args.address, runtime_env=runtime_env)
    except ConnectionError as e:
        raise ArgsError(
            f"--address {args.address}: cannot connect to the Ray cluster ({e}). Check that it is "
            "running (`ray status` on the head). Clusters with token authentication (Ray's default "
            "for local clusters since 2.59) also need RAY_AUTH_MODE=token here, with the token "
            "in RAY_AUTH_TOKEN or ~/.ray/auth_token (`ray get-auth-token`).") from None
    print(f"joined the Ray cluster at {args.address}; workers get {describe_runtime_env(runtime_env)}",
          flush=True)
    return True


# ---------------------------------------------------------------- checks before any trial

def alive_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def trial_fits(resources: Mapping[str, float], args: SearchArgs) -> bool:
    """One trial needs all of its CPUs and GPUs on ONE node (a Ray actor never spans nodes)."""
    return (resources.get("CPU", 0.0) >= args.cpus_per_trial
            and resources.get("GPU", 0.0) >= args.gpus_per_trial)


def trial_demand(args: SearchArgs) -> str:
    gpus = f" and {args.gpus_per_trial:g} GPU" if args.gpus_per_trial else ""
    return f"{args.cpus_per_trial:g} CPU{gpus}"


def why_storage_must_be_shared(nodes: list[Mapping[str, Any]], args: SearchArgs) -> str | None:
    """Why trials may run on a machine other than the driver's (None: they cannot)."""
    if len(nodes) > 1:
        return f"this Ray cluster has {len(nodes)} nodes"
    if not any(trial_fits(n.get("Resources", {}), args) for n in nodes):
        # e.g. our cloud configs: a head with CPU 0 alone, until the autoscaler adds a GPU worker.
        return (f"no node fits a trial ({trial_demand(args)}) yet, so trials will run on the nodes an "
                "autoscaler adds")
    return None


def check_shared_storage(args: SearchArgs, nodes: list[Mapping[str, Any]]) -> None:
    if not args.is_local_storage or args.storage_shared:
        return
    reason = why_storage_must_be_shared(nodes, args)
    if reason is None:
        return
    raise ArgsError(
        f"--storage {args.storage} is a local path, but {reason}: each trial would write its results and "
        "checkpoints to the disk of the machine it runs on, where the driver (results, ensemble, "
        "--resume) cannot see them. Use --storage s3://BUCKET/DIR or gs://BUCKET/DIR, or a folder on a "
        "shared filesystem (NFS, EFS, Filestore, ...) mounted at this same path on every node and add "
        "--storage-shared to confirm that it is shared.")


def resource_wait_s(environ: Mapping[str, str] | None = None) -> float:
    environ = os.environ if environ is None else environ
    raw = environ.get(RESOURCE_WAIT_ENV, "")
    if not raw.strip():
        return DEFAULT_RESOURCE_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        raise ArgsError(f"{RESOURCE_WAIT_ENV}={raw!r}: expected seconds, e.g. 600 (0 = do not wait).") from None
    if value < 0:
        raise ArgsError(f"{RESOURCE_WAIT_ENV}={raw!r}: must be >= 0 (0 = do not wait).")
    return value


def no_fit_error(args: SearchArgs, nodes: list[Mapping[str, Any]], waited_s: float) -> ArgsError:
    biggest = max(nodes, key=lambda n: (n["Resources"].get("GPU", 0.0), n["Resources"].get("CPU", 0.0)),
                  default={"Resources": {}})
    cpus, gpus = biggest["Resources"].get("CPU", 0.0), biggest["Resources"].get("GPU", 0.0)
    waited = f" (waited {waited_s:.0f}s for an autoscaler to add one)" if waited_s > 0 else ""
    where = "this machine" if args.address == "local" else f"the Ray cluster at {args.address}"
    return ArgsError(
        f"--cpus-per-trial {args.cpus_per_trial:g} / --gpus-per-trial {args.gpus_per_trial:g}: no node of "
        f"{where} has {trial_demand(args)}{waited}; its largest node has {cpus:g} CPU(s) and {gpus:g} "
        "GPU(s), so no trial could ever start. Lower the per-trial resources, or join a cluster whose "
        "nodes are big enough (for an autoscaling cluster: check the worker type's resources and "
        f"max_workers, and `ray status`; {RESOURCE_WAIT_ENV} sets how long to wait).")


def wait_for_a_fitting_node(args: SearchArgs, wait_s: float, poll_s: float = 2.0) -> list[dict[str, Any]]:
    """Ask the autoscaler (if any) for one trial's bundle and wait until a node that fits it is alive."""
    from ray.autoscaler.sdk import request_resources

    bundle = {k: v for k, v in (("CPU", args.cpus_per_trial), ("GPU", args.gpus_per_trial)) if v > 0}
    print(f"no node can run a trial ({trial_demand(args)}) yet: asking the cluster's autoscaler for one "
          f"and waiting up to {wait_s:.0f}s ({RESOURCE_WAIT_ENV}=0 fails at once).", flush=True)
    request_resources(bundles=[bundle])
    deadline = time.monotonic() + wait_s
    try:
        while True:
            nodes = alive_nodes()
            if any(trial_fits(n["Resources"], args) for n in nodes) or time.monotonic() >= deadline:
                return nodes
            time.sleep(poll_s)
    finally:
        # A standing request would keep the node up after the search; Tune's own demand takes over.
        request_resources(bundles=[])


def check_cluster(args: SearchArgs) -> None:
    """Before any trial: a trial fits on some node (now, or after an autoscaler adds one), and a local
    --storage is only used where every trial's node sees it."""
    nodes = alive_nodes()
    fits = any(trial_fits(n["Resources"], args) for n in nodes)
    if args.address == "local":
        if not fits:
            raise no_fit_error(args, nodes, 0.0)
        return
    wait_s = resource_wait_s()
    if not fits and wait_s <= 0:
        raise no_fit_error(args, nodes, 0.0)
    check_shared_storage(args, nodes)  # before waiting: minutes for an autoscaler, then this error
    if not fits:
        nodes = wait_for_a_fitting_node(args, wait_s)
        if not any(trial_fits(n["Resources"], args) for n in nodes):
            raise no_fit_error(args, nodes, wait_s)


# ---------------------------------------------------------------- inside a trial

def trial_placement() -> dict[str, Any]:
    """Where this trial runs, added to each report: the Ray node id (node_ip and hostname are the same
    for every node of one machine), the GPU ids Ray assigned ('' = none; Ray also sets
    CUDA_VISIBLE_DEVICES to them), and whether CUDA is usable here: device "auto" trains on CUDA
    exactly when it is, so a trial given a GPU on a machine without one falls back to the CPU."""
    import ray

    if not ray.is_initialized():  # get_runtime_context() would start a local Ray instance
        return {}
    import torch

    context = ray.get_runtime_context()
    gpu_ids = context.get_accelerator_ids().get("GPU", [])
    return {"ray_node_id": context.get_node_id(), "ray_gpu_ids": ",".join(str(g) for g in gpu_ids),
            "cuda_available": bool(torch.cuda.is_available())}
