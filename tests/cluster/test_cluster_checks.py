"""search/cluster.py without a cluster: what workers get (code + forwarded env vars, secrets never
printed), the shared-storage and resource checks, --storage-shared, and the CPU/GPU choice of a trial."""
from __future__ import annotations

import json

import pytest

from search import ArgsError, main, resolve_args
from search import cluster
from search.args import check_resume_compatible
from search.trial_config import base_config

NODE_A, NODE_B = "a" * 56, "b" * 56  # Ray node ids: 56 hex chars


def node(node_id: str, cpus: float, gpus: float = 0.0) -> dict:
    resources = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
    return {"NodeID": node_id, "Alive": True, "Resources": resources}


def cluster_args(tmp_path, **flags):
    return resolve_args({"storage": str(tmp_path), "address": "auto", **flags})


def test_forwarded_env_vars_pick_wandb_and_ray_auth_settings():
    environ = {"WANDB_MODE": "offline", "WANDB_API_KEY": "k", "WANDB_PROJECT": "p", "WANDB_ENTITY": "",
               "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": "/etc/ray/token", "HOME": "/root"}
    assert cluster.forwarded_env_vars(environ) == {
        "WANDB_MODE": "offline", "WANDB_API_KEY": "k", "WANDB_PROJECT": "p",
        "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": "/etc/ray/token"}
    # a token given directly wins over a (driver-side) token path
    with_token = cluster.forwarded_env_vars({**environ, "RAY_AUTH_TOKEN": "t"})
    assert with_token["RAY_AUTH_TOKEN"] == "t" and "RAY_AUTH_TOKEN_PATH" not in with_token
    # s3:// storage: trials write checkpoints themselves, with the driver's endpoint and credentials
    s3 = cluster.forwarded_env_vars({"AWS_ENDPOINT_URL": "http://minio:9000", "AWS_SECRET_ACCESS_KEY": "s"})
    assert s3 == {"AWS_ENDPOINT_URL": "http://minio:9000", "AWS_SECRET_ACCESS_KEY": "s"}
    assert "AWS_SECRET_ACCESS_KEY" in cluster.SECRET_ENV_VARS


def test_runtime_env_ships_the_repo_outside_a_job_and_defers_to_a_submitted_jobs_env(tmp_path):
    environ = {"WANDB_MODE": "offline", "RAY_AUTH_MODE": "disabled"}
    env = cluster.cluster_runtime_env(tmp_path, environ)
    assert env["working_dir"] == str(tmp_path) and ".git" in env["excludes"]
    assert env["env_vars"] == environ
    # `ray job submit --working-dir . --runtime-env-json '{"env_vars": {"WANDB_MODE": ...}}'`: Ray refuses
    # a ray.init runtime env repeating the job's fields or env var keys, so those are left out.
    job = {"runtime_env": {"working_dir": "gcs://_ray_pkg_x.zip", "env_vars": {"WANDB_MODE": "online"}}}
    env = cluster.cluster_runtime_env(tmp_path, {**environ, cluster.JOB_CONFIG_ENV: json.dumps(job)})
    assert env == {"env_vars": {"RAY_AUTH_MODE": "disabled"}}


def test_describe_runtime_env_never_prints_secret_values():
    env = {"working_dir": "/repo", "env_vars": {"WANDB_API_KEY": "sk-secret", "RAY_AUTH_TOKEN": "tok-secret",
                                                 "WANDB_MODE": "online"}}
    text = cluster.describe_runtime_env(env)
    assert "sk-secret" not in text and "tok-secret" not in text
    assert "WANDB_API_KEY=<set>" in text and "RAY_AUTH_TOKEN=<set>" in text and "WANDB_MODE=online" in text


def test_local_storage_is_refused_on_a_multi_node_cluster(tmp_path):
    args = cluster_args(tmp_path)
    with pytest.raises(ArgsError) as err:
        cluster.check_shared_storage(args, [node(NODE_A, 2), node(NODE_B, 2)])
    message = str(err.value)
    for part in ("--storage", "2 nodes", "s3://", "gs://", "shared filesystem", "--storage-shared"):
        assert part in message, part
    # one node that runs the trials itself: nothing to share
    cluster.check_shared_storage(args, [node(NODE_A, 2)])
    # a head with CPU 0 alone (our cloud configs): every trial will run on a node the autoscaler adds
    with pytest.raises(ArgsError, match="no node fits a trial .* autoscaler"):
        cluster.check_shared_storage(args, [node(NODE_A, 0)])


def test_storage_shared_and_cloud_storage_pass_the_check(tmp_path):
    two = [node(NODE_A, 2), node(NODE_B, 2)]
    cluster.check_shared_storage(cluster_args(tmp_path, storage_shared=True), two)
    cloud = resolve_args({"storage": "s3://bucket/dir", "address": "auto"}, check_storage=False)   # as cluster/ does
    cluster.check_shared_storage(cloud, two)


def test_storage_shared_flag_parses_and_may_be_added_on_resume(tmp_path):
    from search.args import build_parser, given_flags

    ns = build_parser().parse_args(["--storage-shared", "--storage", str(tmp_path)])
    assert given_flags(ns)["storage_shared"] is True
    assert resolve_args({"storage": str(tmp_path)}).storage_shared is False
    stored = resolve_args({"storage": str(tmp_path), "name": "exp"})
    resumed = check_resume_compatible(stored, {"resume": True, "name": "exp", "storage_shared": True},
                                      storage=stored.storage)
    assert resumed.storage_shared is True
    # A moved/copied experiment resumes where the user points, not where it was started.
    moved = check_resume_compatible(stored, {"resume": True, "name": "exp-copy"}, storage=str(tmp_path / "laptop"))
    assert (moved.name, moved.storage) == ("exp-copy", str(tmp_path / "laptop"))
    assert main(["--storage-shared", "--list-spaces"]) == 0


def test_a_trial_must_fit_on_one_node(tmp_path):
    args = cluster_args(tmp_path, cpus_per_trial=2, gpus_per_trial=0.5)
    assert cluster.trial_fits({"CPU": 2, "GPU": 1}, args)
    assert not cluster.trial_fits({"CPU": 8}, args)            # no GPU there
    assert not cluster.trial_fits({"CPU": 1, "GPU": 4}, args)  # too few CPUs there
    error = cluster.no_fit_error(args, [node(NODE_A, 1, 4), node(NODE_B, 8)], waited_s=5)
    text = str(error)
    assert "--cpus-per-trial 2" in text and "--gpus-per-trial 0.5" in text and "waited 5s" in text
    assert "largest node has 1 CPU(s) and 4 GPU(s)" in text


@pytest.mark.parametrize("value, expected", [("", cluster.DEFAULT_RESOURCE_WAIT_S), ("0", 0.0), ("30", 30.0)])
def test_resource_wait_setting(value, expected):
    assert cluster.resource_wait_s({cluster.RESOURCE_WAIT_ENV: value}) == expected


@pytest.mark.parametrize("value", ["soon", "-1"])
def test_bad_resource_wait_setting_names_the_variable(value):
    with pytest.raises(ArgsError, match=cluster.RESOURCE_WAIT_ENV):
        cluster.resource_wait_s({cluster.RESOURCE_WAIT_ENV: value})


def test_trials_use_one_blas_thread_per_reserved_cpu(tmp_path):
    assert base_config(resolve_args({"storage": str(tmp_path), "cpus_per_trial": 2}))["num_threads"] == 2
    assert base_config(resolve_args({"storage": str(tmp_path), "cpus_per_trial": 0.5}))["num_threads"] == 1
    assert base_config(resolve_args({"storage": str(tmp_path)}))["device"] == "auto"


def test_device_auto_is_cuda_exactly_when_cuda_is_usable(monkeypatch):
    import torch

    from core.config import ConfigError
    from core.device import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto").type == "cpu"   # e.g. Ray assigned a GPU (CUDA_VISIBLE_DEVICES) but none works
    with pytest.raises(ConfigError, match="'cuda:0' but no CUDA device is visible.*Fix: use device auto or cpu"):
        pick_device("cuda:0")   # one clear error from training, --query and ensembles alike
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto").type == "cuda"


def test_trial_placement_outside_ray_is_empty_and_starts_nothing(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "get_runtime_context", lambda: pytest.fail("would start a local Ray"))
    assert cluster.trial_placement() == {}
