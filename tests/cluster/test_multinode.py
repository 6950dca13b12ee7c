"""REAL multi-node Ray on loopback: `ray start` head + worker nodes (own temp dirs, free ports, stopped by
PID), and run_search.py joining them with --address like on a real cluster.

  * 2 nodes x 1 CPU: trials run on BOTH nodes (Ray node ids in epochs.parquet), W&B settings reach the
    workers, and a local --storage without --storage-shared is refused before any trial starts;
  * 1 node with 1 declared (fake) GPU: --gpus-per-trial 0.5 runs at most 2 trials at once, each is given
    GPU 0 by Ray, sees no usable CUDA and trains on the CPU without failing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.local_cluster import LocalRayCluster

REPO = Path(__file__).resolve().parents[2]
SEARCH_TIMEOUT_S = 300

pytestmark = pytest.mark.skipif(shutil.which("ray") is None, reason="needs the `ray` CLI (pip install ray)")


def run_search(address: str, storage: Path, name: str, *flags: str, env: dict | None = None):
    cmd = [sys.executable, str(REPO / "run_search.py"), "--smoke-test", "--address", address,
           "--storage", str(storage), "--name", name, "--ensemble-top-k", "0", "--refit-top-k", "0", *flags]
    # (the search alone: what these tests check is where its trials ran; the refit runs the same trainable)
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=SEARCH_TIMEOUT_S,
                          env={**os.environ, **(env or {})})


def tables(experiment: Path):
    import pyarrow.parquet as pq

    return (pq.read_table(experiment / "trials.parquet").to_pylist(),
            pq.read_table(experiment / "epochs.parquet").to_pylist())


@pytest.fixture(scope="module")
def two_nodes():
    cluster = LocalRayCluster()
    try:
        cluster.start_head(num_cpus=1)
        cluster.add_node(num_cpus=1)
        yield cluster
    finally:
        cluster.stop()


def test_local_storage_on_two_nodes_is_refused_before_any_trial(two_nodes, tmp_path):
    r = run_search(two_nodes.address, tmp_path, "refused", "--no-wandb")
    assert r.returncode == 2, (r.stdout + r.stderr)[-3000:]
    err = r.stderr
    for part in (f"--storage {tmp_path}", "this Ray cluster has 2 nodes", "s3://", "--storage-shared"):
        assert part in err, (part, err[-2000:])
    experiment = tmp_path / "refused"
    assert not list(experiment.glob("trial_*")) and not (experiment / "search_args.json").exists()


def test_search_spreads_trials_over_both_nodes(two_nodes, tmp_path):
    # The same machine, so the folder IS shared: --storage-shared says so. W&B stays on (offline).
    r = run_search(two_nodes.address, tmp_path, "two-nodes", "--storage-shared", "--num-samples", "4",
                   "--max-concurrent", "2", env={"WANDB_MODE": "offline", "WANDB_PROJECT": "cluster-test"})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert f"joined the Ray cluster at {two_nodes.address}" in out
    assert "WANDB_MODE=offline" in out and "WANDB_PROJECT=cluster-test" in out and "RAY_AUTH_MODE=" in out
    experiment = tmp_path / "two-nodes"
    trials, epochs = tables(experiment)
    assert len(trials) == 4 and {t["status"] for t in trials} == {"TERMINATED"}
    nodes = {e["ray_node_id"] for e in epochs}
    assert len(nodes) == 2 and all(len(n) == 56 for n in nodes), nodes   # hex Ray node ids
    assert len({e["node_ip"] for e in epochs}) == 1  # loopback: the IP cannot tell the nodes apart
    assert all(e["ray_gpu_ids"] == "" and e["cuda_available"] is False for e in epochs)
    # the W&B logging actors (Ray workers on the driver's node) ran offline, one run per trial
    runs = list((experiment / "wandb").glob("offline-run-*"))
    assert len(runs) >= 4


WAIT_FOR_GPUS = """
from search.args import ArgsError, resolve_args
from search.cluster import check_cluster, ensure_ray
args = resolve_args({{"address": "{address}", "storage": "{storage}", "storage_shared": True, "gpus_per_trial": 2}})
ensure_ray(args)
try:
    check_cluster(args)
except ArgsError as e:
    print("REFUSED:", e)
"""


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_half_gpu_trials_pack_two_per_declared_gpu_and_fall_back_to_cpu(tmp_path):
    from results.experiment_dir import read_experiment

    cluster = LocalRayCluster()
    try:
        # 4 CPUs and 1 GPU that Ray believes in (no CUDA on this machine): the GPU is the limit.
        address = cluster.start_head(num_cpus=4, num_gpus=1)
        r = run_search(address, tmp_path, "fake-gpu", "--no-wandb", "--gpus-per-trial", "0.5",
                       "--num-samples", "4", "--max-concurrent", "4", "--grace-period", "2")
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-4000:]
        # more than any node has: the autoscaler is asked (a no-op without one), and after the wait the
        # search is refused with the resources named
        waited = subprocess.run([sys.executable, "-c", WAIT_FOR_GPUS.format(address=address, storage=tmp_path)],
                                cwd=REPO, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "MOTION_SEARCH_RESOURCE_WAIT_S": "1"})
    finally:
        cluster.stop()
    trials, epochs = tables(tmp_path / "fake-gpu")
    assert len(trials) == 4 and {t["status"] for t in trials} == {"TERMINATED"}
    assert all(t["epochs_run"] == 2 for t in trials)
    # Ray handed every trial GPU 0 (CUDA_VISIBLE_DEVICES=0); "auto" found no CUDA and used the CPU
    assert {e["ray_gpu_ids"] for e in epochs} == {"0"} and {e["cuda_available"] for e in epochs} == {False}
    records = read_experiment(tmp_path / "fake-gpu").trials
    intervals = [(t.start_time, t.last_result_time) for t in records]
    assert all(s is not None and e is not None for s, e in intervals)
    assert max_overlap(intervals) == 2, intervals  # 2 x 0.5 GPU at once: packed, and never 3 or 4
    assert waited.returncode == 0, (waited.stdout + waited.stderr)[-3000:]
    assert "asking the cluster's autoscaler" in waited.stdout and "REFUSED: --cpus-per-trial 1 / " \
        "--gpus-per-trial 2: no node of the Ray cluster" in waited.stdout
    assert "(waited 1s for an autoscaler to add one); its largest node has 4 CPU(s) and 1 GPU(s)" in waited.stdout
