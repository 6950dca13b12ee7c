"""cluster/: every shipped config passes Ray's own launcher validation (or the RayJob checks), has the
shape the docs promise (CPU head + autoscaling GPU workers, project installed, token auth), and
`python -m cluster` builds the right commands (dry runs) or fails with one clear error."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cluster import cli
from cluster.configs import (CONFIG_DIR, LAUNCHER, LAUNCHER_KEYS, RAYJOB, ClusterConfigError, check_launcher,
                             load_config, search_args)
from search.args import build_parser, given_flags, resolve_args

REPO = Path(__file__).resolve().parents[2]
LAUNCHER_CONFIGS = ["aws.yaml", "gcp.yaml", "onprem.yaml"]
CLOUD_CONFIGS = ["aws.yaml", "gcp.yaml"]
RAYJOB_CONFIG = "kuberay-rayjob.yaml"


def raw(name: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / name).read_text())


def test_every_shipped_config_is_covered():
    assert sorted(p.name for p in CONFIG_DIR.glob("*.yaml")) == sorted(LAUNCHER_CONFIGS + [RAYJOB_CONFIG])


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_configs_pass_rays_own_validation(name):
    cfg = load_config(CONFIG_DIR / name)
    assert cfg.kind == LAUNCHER and cfg.uses_token_auth
    data = cfg.data
    for key in LAUNCHER_KEYS:
        assert key in data, key
    prepared = check_launcher(copy.deepcopy(data), cfg.path)  # what `ray up` prepares and validates
    assert prepared["head_node_type"] in prepared["available_node_types"]
    # the project is installed from the rsynced checkout, and the token reaches every node
    assert data["file_mounts"]["~/motion-retrieval-search"] == "."
    assert data["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert any("pip install" in c and "-e ~/motion-retrieval-search" in c for c in data["setup_commands"])
    assert any("ray start --head" in c and "RAY_AUTH_MODE=token" in c for c in data["head_start_ray_commands"])
    assert any("ray start --address=$RAY_HEAD_IP" in c for c in data["worker_start_ray_commands"])


@pytest.mark.parametrize("name", CLOUD_CONFIGS)
def test_cloud_configs_have_a_cpu_head_and_an_autoscaling_gpu_group(name):
    data = raw(name)
    types = data["available_node_types"]
    head = types[data["head_node_type"]]
    assert head["resources"]["CPU"] == 0 and "GPU" not in head["resources"]  # trials never on the head
    workers = [t for k, t in types.items() if k != data["head_node_type"]]
    assert len(workers) == 1
    gpu = workers[0]
    assert gpu["resources"]["GPU"] >= 1 and gpu["resources"]["CPU"] >= 4
    assert gpu["min_workers"] == 0 < gpu["max_workers"] <= data["max_workers"]
    assert data["docker"]["worker_image"].endswith("-gpu") and "2.60.0" in data["docker"]["worker_image"]
    # the trials write to the bucket from the GPU workers: those need a cloud identity of their own
    identity = gpu["node_config"].get("IamInstanceProfile") or gpu["node_config"].get("serviceAccounts")
    assert identity, f"{name}: GPU workers have no instance profile / service account for --storage"


def test_onprem_uses_the_local_provider_and_checks_the_shared_mount():
    data = raw("onprem.yaml")
    assert data["provider"]["type"] == "local"
    assert data["provider"]["head_ip"] and len(data["provider"]["worker_ips"]) == data["max_workers"]
    assert "available_node_types" not in data  # the local provider refuses them (Ray derives one)
    assert any("mountpoint -q /mnt/shared" in c for c in data["setup_commands"])


def test_rayjob_manifest_shape_and_entrypoint_flags_are_valid_search_flags():
    cfg = load_config(CONFIG_DIR / RAYJOB_CONFIG)
    assert cfg.kind == RAYJOB and cfg.name == "motion-search" and cfg.uses_token_auth
    data = cfg.data
    assert data["apiVersion"] == "ray.io/v1" and data["kind"] == "RayJob"
    spec = data["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]["WANDB_PROJECT"]
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == "2.60.0" and cluster["enableInTreeAutoscaling"] is True
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    (group,) = cluster["workerGroupSpecs"]
    worker = group["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["image"] == head["template"]["spec"]["containers"][0]["image"]
    assert group["minReplicas"] == 0 < group["maxReplicas"]
    flags = search_args(data, cfg.path)
    ns = build_parser().parse_args(flags)  # the entrypoint's flags are run_search.py's own
    assert ns.address == "auto" and ns.storage.startswith("s3://") and ns.gpus_per_trial == 0.25
    # and pass its validation (space, resources, storage URI), as on the cluster (which reaches the bucket)
    args = resolve_args(given_flags(ns), check_storage=False)
    assert args.storage == ns.storage and args.space == "architecture"


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("head_start_ray_commands"), "head_start_ray_commands"),
    (lambda d: d.pop("available_node_types"), "available_node_types"),
    (lambda d: d["available_node_types"]["gpu_worker"].pop("resources"), "resources"),
    (lambda d: d.update(unknown_key=1), "unknown_key"),
    (lambda d: d["available_node_types"]["gpu_worker"].update(min_workers=9), "max_workers"),
])
def test_broken_launcher_configs_fail_with_the_problem_named(tmp_path, mutate, message):
    data = raw("aws.yaml")
    mutate(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ClusterConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_broken_rayjob_and_missing_files_fail_clearly(tmp_path):
    data = raw(RAYJOB_CONFIG)
    data["apiVersion"] = "ray.io/v1alpha1"
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ClusterConfigError, match="ray.io/v1"):
        load_config(path)
    data = raw(RAYJOB_CONFIG)
    data["spec"]["entrypoint"] = "python train.py"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ClusterConfigError, match="run_search.py"):
        load_config(path)
    with pytest.raises(ClusterConfigError, match="no such config file.*aws.yaml"):
        load_config(tmp_path / "nope.yaml")


# ---------------------------------------------------------------- python -m cluster

def cluster_cli(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cluster", *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=env)


def test_dry_runs_print_the_wrapped_commands():
    aws = str(CONFIG_DIR / "aws.yaml")
    for action, expected in [("up", f"ray up -y {aws}"), ("down", f"ray down -y {aws}"),
                             ("status", f"ray exec {aws} 'ray status'")]:
        r = cluster_cli(action, aws, "--dry-run")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == expected
    job = str(CONFIG_DIR / RAYJOB_CONFIG)
    r = cluster_cli("up", job, "--dry-run")
    assert r.returncode == 0 and r.stdout.strip() == f"kubectl apply -f {job}"
    assert "edit-me" in r.stderr  # a dry run only warns about values still to replace


def test_submit_dry_run_forwards_search_flags_and_names_secrets_only(monkeypatch):
    import os

    env = {**os.environ, "WANDB_API_KEY": "sk-not-a-real-key", "WANDB_MODE": "online"}
    r = cluster_cli("submit", str(CONFIG_DIR / "aws.yaml"), "--dry-run", "--port", "18265", "--",
                    "--space", "architecture", "--gpus-per-trial", "0.25", "--storage", "s3://bucket/dir",
                    env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith(f"ray dashboard --port 18265 {CONFIG_DIR / 'aws.yaml'}")
    assert lines[-1] == ("ray job submit --address http://127.0.0.1:18265 --working-dir . --runtime-env "
                         "'<runtime-env.yaml>' -- python run_search.py --address auto --space architecture "
                         "--gpus-per-trial 0.25 --storage s3://bucket/dir")
    assert "WANDB_API_KEY=<set>" in r.stdout and "WANDB_MODE=online" in r.stdout
    assert "sk-not-a-real-key" not in r.stdout + r.stderr


@pytest.mark.parametrize("argv, message", [
    (["up", "cluster/configs/missing.yaml"], "no such config file"),
    (["up", "cluster/configs/gcp.yaml"], "edit-me"),                        # not a dry run: refused
    (["submit", "cluster/configs/aws.yaml", "--dry-run", "--", "--num-samples", "4"], "needs --storage"),
    (["submit", "cluster/configs/aws.yaml", "--dry-run", "--", "--storage", "s3://b/d", "--address", "local"],
     "--address local"),
    (["submit", "cluster/configs/aws.yaml", "--dry-run", "--", "--storage", "s3://b/d", "--space", "nope"],
     "unknown search space"),
    (["submit", "cluster/configs/kuberay-rayjob.yaml", "--dry-run", "--", "--storage", "s3://b/d"],
     "spec.entrypoint"),
    (["down", "cluster/configs/aws.yaml", "--dry-run", "--", "--num-samples", "4"], "only `submit`"),
])
def test_cli_errors_are_one_clear_line(argv, message):
    r = cluster_cli(*argv)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "python -m cluster: error:" in r.stderr and message in r.stderr


def test_a_missing_ray_cli_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr(cli.shutil, "which", lambda name: None)
    monkeypatch.setattr(cli.subprocess, "run", lambda *a, **k: pytest.fail("nothing may run"))
    assert cli.main(["status", str(CONFIG_DIR / "aws.yaml")]) == 2
    err = capsys.readouterr().err
    assert "the `ray` command is not on PATH" in err and "pip install" in err


def test_token_auth_configs_make_the_local_ray_cli_use_the_token(monkeypatch):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert cli.command_env(load_config(CONFIG_DIR / "aws.yaml"))["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # an explicit choice is kept
    assert cli.command_env(load_config(CONFIG_DIR / "aws.yaml"))["RAY_AUTH_MODE"] == "disabled"


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].update(minReplicas="two"), "minReplicas two"),
    (lambda d: d["spec"].update(entrypoint="python run_search.py --name 'unclosed"), "cannot be split into words"),
    (lambda d: d["spec"].update(entrypoint=["python", "run_search.py"]), "must be one command string"),
    (lambda d: d["spec"]["rayClusterSpec"].update(
        workerGroupSpecs=d["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]), "must be a list of groups"),
])
def test_malformed_rayjob_values_are_named(tmp_path, mutate, message):
    data = raw(RAYJOB_CONFIG)
    mutate(data)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ClusterConfigError, match=message):
        load_config(path)


def test_a_config_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes((CONFIG_DIR / "aws.yaml").read_bytes() + "# café\n".encode("latin-1"))
    with pytest.raises(ClusterConfigError, match="not UTF-8 text .*re-save it as UTF-8"):
        load_config(path)
