"""``python -m cluster up|submit|down|status CONFIG [--dry-run] [-- run_search.py flags...]``.

    python -m cluster up cluster/configs/aws.yaml                  # ray up -y
    python -m cluster submit cluster/configs/aws.yaml -- --space architecture --gpus-per-trial 0.25 \
        --storage s3://BUCKET/motion-search                       # ray dashboard + ray job submit
    python -m cluster status cluster/configs/aws.yaml              # ray exec ... "ray status"
    python -m cluster down cluster/configs/aws.yaml                # ray down -y
    python -m cluster up cluster/configs/kuberay-rayjob.yaml       # kubectl apply -f

Every command checks the config first (Ray's own launcher validation, or the RayJob's required
fields); --dry-run prints the commands without running anything.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Sequence

import yaml

from . import commands
from .configs import LAUNCHER, REPO_ROOT, ClusterConfig, ClusterConfigError, load_config

PORT_FORWARD_TIMEOUT_S = 60
INSTALL_HINT = {"ray": "pip install -e . (it installs ray[tune]; `ray up` on AWS also needs boto3, on GCP "
                       "google-api-python-client)",
                "kubectl": "install kubectl and point it at your cluster (kubectl config current-context)"}


class ClusterCliError(RuntimeError):
    """A command that cannot run; the message says why and how to fix it."""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m cluster",
        description="Start, use and stop a Ray cluster for run_search.py (Ray cluster launcher or KubeRay).")
    ap.add_argument("action", choices=["up", "submit", "down", "status"])
    ap.add_argument("config", help="a launcher YAML (cluster/configs/aws.yaml, gcp.yaml, onprem.yaml) or a "
                                   "KubeRay RayJob manifest (cluster/configs/kuberay-rayjob.yaml)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("--port", type=int, default=commands.DASHBOARD_PORT,
                    help=f"submit: local port of the dashboard port-forward (default {commands.DASHBOARD_PORT})")
    ap.add_argument("--no-wait", action="store_true", help="submit: return once the job is submitted")
    return ap


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Our flags | the run_search.py flags after `--`."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def require_tool(name: str) -> None:
    if shutil.which(name) is None:
        raise ClusterCliError(f"the `{name}` command is not on PATH. {INSTALL_HINT[name]}.")


def check_ready(cfg: ClusterConfig, *, dry_run: bool) -> None:
    """Refuse to act on a config whose `edit-me` values were not replaced (a dry run only warns)."""
    markers = cfg.edit_markers()
    if not markers:
        return
    shown = "\n".join(f"  line {n}: {line}" for n, line in markers)
    message = f"{cfg.path} still has values to replace (`edit-me`):\n{shown}"
    if not dry_run:
        raise ClusterCliError(message + "\nEdit them (project, hosts, bucket, image) and run again.")
    print(f"warning: {message}", file=sys.stderr)


def check_search_args(search_args: Sequence[str]) -> None:
    """Catch flag typos here instead of in the job's log, and the two mistakes that lose results."""
    from search.args import build_parser as search_parser

    try:
        ns = search_parser().parse_args(list(search_args))
    except SystemExit:
        raise ClusterCliError("the run_search.py flags after `--` do not parse (see the message above); "
                              "`python run_search.py --help` lists them.") from None
    if ns.address == "local":
        raise ClusterCliError("--address local would start a separate Ray inside the job; leave --address "
                              "out (the job joins its cluster with --address auto).")
    if ns.storage is None:
        raise ClusterCliError("submit needs --storage: s3://BUCKET/DIR, gs://BUCKET/DIR, or a shared path "
                              "mounted on every node plus --storage-shared. The default ./experiments would "
                              "land in the job's temporary working directory on the head.")
    from search.args import ArgsError, given_flags, resolve_args

    given = given_flags(ns)
    if "://" not in given["storage"]:  # a cluster path (e.g. an NFS mount) need not exist here
        given["storage"] = "s3://validation-only/unused"
    given.setdefault("name", "validation-only")
    try:  # the same checks run_search.py makes before starting (space, ASHA, resources, --set)
        resolve_args({**given, "address": "auto"}, check_storage=False)   # the cluster reaches it, not this machine
    except ArgsError as e:
        raise ClusterCliError(f"run_search.py flags: {e}") from None


def command_env(cfg: ClusterConfig) -> dict[str, str]:
    env = dict(os.environ)
    if cfg.uses_token_auth and not env.get("RAY_AUTH_MODE"):
        # The cluster was started with the token from ~/.ray/auth_token (file_mounts): use it here too.
        env["RAY_AUTH_MODE"] = "token"
    return env


def show(cmd: Sequence[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)


def run_command(cmd: Sequence[str], env: dict[str, str]) -> int:
    print(f"$ {show(cmd)}", flush=True)
    return subprocess.run(list(cmd), cwd=REPO_ROOT, env=env).returncode


def wait_for_port(port: int, forward: subprocess.Popen, timeout: float = PORT_FORWARD_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if forward.poll() is not None:
            raise ClusterCliError(f"`ray dashboard` exited with {forward.returncode} before the port-forward "
                                  "was up: is the cluster running (`python -m cluster status CONFIG`)?")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise ClusterCliError(f"no dashboard on localhost:{port} after {timeout}s of `ray dashboard`; "
                          "pass another --port if that one is taken.")


def submit(cfg: ClusterConfig, search_args: Sequence[str], *, port: int, wait: bool, dry_run: bool) -> int:
    if cfg.kind != LAUNCHER:
        raise ClusterCliError(f"{cfg.path} is a RayJob: it runs its own spec.entrypoint when applied. Put "
                              f"the run_search.py flags there and run `python -m cluster up {cfg.path}`.")
    check_search_args(search_args)
    env = command_env(cfg)
    env_vars = commands.job_env_vars(env)
    forward_cmd = commands.dashboard_command(cfg, port)
    if dry_run:
        runtime_env = "<runtime-env.yaml>" if env_vars else None
        print(show(forward_cmd) + "   # in the background, stopped after the submission")
        if env_vars:
            print(f"# {runtime_env}: env_vars {commands.describe_env(env_vars)}")
        print(show(commands.submit_command(search_args, port=port, runtime_env_file=runtime_env, wait=wait)))
        return 0
    require_tool("ray")
    with tempfile.TemporaryDirectory(prefix="mrs-submit-") as tmp:
        runtime_env = None
        if env_vars:  # a 0600 file: the API key never appears on a command line
            runtime_env = os.path.join(tmp, "runtime-env.yaml")
            fd = os.open(runtime_env, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                yaml.safe_dump({"env_vars": env_vars}, f)
            print(f"job env_vars: {commands.describe_env(env_vars)}")
        print(f"$ {show(forward_cmd)} &", flush=True)
        forward = subprocess.Popen(forward_cmd, cwd=REPO_ROOT, env=env, start_new_session=True)
        try:
            wait_for_port(port, forward)
            return run_command(commands.submit_command(search_args, port=port, runtime_env_file=runtime_env,
                                                       wait=wait), env)
        finally:
            if forward.poll() is None:  # its own session: the ssh it started goes with it
                os.killpg(forward.pid, signal.SIGTERM)
                forward.wait(timeout=30)


def main(argv: Sequence[str] | None = None) -> int:
    ours, search_args = split_argv(sys.argv[1:] if argv is None else argv)
    ns = build_parser().parse_args(ours)
    try:
        cfg = load_config(ns.config)
        check_ready(cfg, dry_run=ns.dry_run)
        if ns.action == "submit":
            return submit(cfg, search_args, port=ns.port, wait=not ns.no_wait, dry_run=ns.dry_run)
        if search_args:
            raise ClusterCliError(f"`{ns.action}` takes no run_search.py flags (only `submit` does).")
        cmd = {"up": commands.up_command, "down": commands.down_command,
               "status": commands.status_command}[ns.action](cfg)
        if ns.dry_run:
            print(show(cmd))
            return 0
        require_tool(cmd[0])
        return run_command(cmd, command_env(cfg))
    except (ClusterConfigError, ClusterCliError) as e:
        print(f"python -m cluster: error: {e}", file=sys.stderr)
        return 2
