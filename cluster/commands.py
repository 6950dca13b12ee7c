"""The shell commands behind `python -m cluster up|submit|down|status` (pure: built here, run by cli.py).

Launcher configs wrap the Ray CLI; a KubeRay RayJob wraps kubectl (the RayJob carries its own
entrypoint, so it is started with `up`, not `submit`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from .configs import LAUNCHER, ClusterConfig

DASHBOARD_PORT = 8265
# W&B settings the search's driver on the head needs (sent with the job; the Ray auth token is not:
# the nodes have their own, and the local one only authenticates `ray job submit` itself).
JOB_ENV_VARS = ("WANDB_MODE", "WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_BASE_URL")
SECRET_ENV_VARS = frozenset({"WANDB_API_KEY"})


def up_command(cfg: ClusterConfig) -> list[str]:
    if cfg.kind == LAUNCHER:
        return ["ray", "up", "-y", str(cfg.path)]
    return ["kubectl", "apply", "-f", str(cfg.path)]


def down_command(cfg: ClusterConfig) -> list[str]:
    if cfg.kind == LAUNCHER:
        return ["ray", "down", "-y", str(cfg.path)]
    return ["kubectl", "delete", "-f", str(cfg.path)]


def status_command(cfg: ClusterConfig) -> list[str]:
    if cfg.kind == LAUNCHER:
        return ["ray", "exec", str(cfg.path), "ray status"]
    return ["kubectl", "get", "rayjob", cfg.name, "-o", "wide"]


def dashboard_command(cfg: ClusterConfig, port: int = DASHBOARD_PORT) -> list[str]:
    """SSH port-forward of the head's dashboard (the Jobs API) to localhost:port; it stays on the head's
    localhost otherwise, so no job API is exposed to the network."""
    return ["ray", "dashboard", "--port", str(port), str(cfg.path)]


def with_cluster_address(search_args: Sequence[str]) -> list[str]:
    """The driver runs ON the cluster (the job's entrypoint): it joins it with --address auto."""
    args = list(search_args)
    if any(a == "--address" or a.startswith("--address=") for a in args):
        return args
    return ["--address", "auto", *args]


def job_env_vars(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: environ[k] for k in JOB_ENV_VARS if environ.get(k)}


def submit_command(search_args: Sequence[str], *, port: int = DASHBOARD_PORT,
                   runtime_env_file: str | None = None, wait: bool = True) -> list[str]:
    """`ray job submit` of run_search.py with this checkout as the job's working_dir (run from the repo root)."""
    cmd = ["ray", "job", "submit", "--address", f"http://127.0.0.1:{port}", "--working-dir", "."]
    if runtime_env_file:
        cmd += ["--runtime-env", runtime_env_file]
    if not wait:
        cmd.append("--no-wait")
    return [*cmd, "--", "python", "run_search.py", *with_cluster_address(search_args)]


def describe_env(env_vars: Mapping[str, str]) -> str:
    return ", ".join(f"{k}=<set>" if k in SECRET_ENV_VARS else f"{k}={v}" for k, v in sorted(env_vars.items()))
