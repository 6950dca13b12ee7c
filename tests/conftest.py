"""Shared test set-up: isolated caches, offline libraries, quiet Ray, the shared real-data folder."""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The shared real-data folder beside the project; MOTION_SEARCH_SHARED_DATA names another one (a checkout
# outside the project folder, such as a git worktree, has none beside it).
SHARED_DATA = Path(os.environ.get("MOTION_SEARCH_SHARED_DATA") or REPO.parent / "shared" / "data")

# Set before anything imports ray / wandb / transformers.
# The run's own dataset/text cache, removed when the run ends (pytest_sessionfinish): each run parses Bandai-Namco into
# it (~1.4 GB), and runs that left theirs behind filled this machine's disk. xdist workers inherit the controller's
# folder through the environment, so only the process that made it removes it; a cache the caller set is kept.
_OWN_CACHE = None if os.environ.get("MOTION_SEARCH_CACHE") else tempfile.mkdtemp(prefix="mrs-test-cache-")
if _OWN_CACHE:
    os.environ["MOTION_SEARCH_CACHE"] = _OWN_CACHE
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ["WANDB_MODE"] = "offline"   # never "disabled" or "online" from the caller: tests read the offline runs
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# Two xdist workers share the cores, and torch's OpenMP threads (libgomp) spin while they wait for work: two trainings
# at once took 38-44 s each with the default wait policy and 24 s with PASSIVE (alone, 17-19 s either way). Inherited
# by every driver, trial worker and training the tests start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# The suite runs on two pytest-xdist workers, a whole file per worker (pyproject: -n 2 --dist loadfile; the workers
# inherit MOTION_SEARCH_CACHE from the controller, so datasets and text features are parsed once). The files that run
# several real searches go first, longest first, so that the run does not end on one long file with a worker idle.
# Seconds: one serial run at 4cc8699 on 2 cores.
LONGEST_FIRST = (
    "tests/faults/test_kill_points.py",               # 139 s
    "tests/bench/test_bench_smoke.py",                # 88
    "tests/cluster/test_multinode.py",                # 88
    "tests/faults/test_driver_kill_resume.py",        # 69
    "tests/core/test_train_e2e.py",                   # 66
    "tests/search/test_search_interrupts.py",         # 62
    "tests/core/test_train_cli.py",                   # 60
    "tests/search/test_refit.py",                     # 58
    "tests/search/test_s3_storage.py",                # 51
    "tests/search/test_search.py",                    # 49
    "tests/faults/test_disk_full.py",                 # 43
    "tests/faults/test_read_only.py",                 # 37
    "tests/results/test_ensemble_cli.py",             # 35
    "tests/faults/test_concurrent_drivers.py",        # 33
    "tests/faults/test_bad_inputs.py",                # 31
    "tests/faults/test_load.py",                      # 28
    "tests/faults/test_worker_kill_and_divergence.py",  # 25
)


def pytest_sessionfinish(session, exitstatus):
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    """Longest files first (a stable sort: every file keeps its own order, the rest keep theirs)."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture(autouse=True)
def python_handles_ctrl_c_after_each_test():
    """Each test leaves SIGINT to Python's own handler, as a fresh process has it: an in-process Tune run keeps Tune's
    handler installed (it only asks Tune to stop), and on a pytest-xdist worker the next test in that process, e.g. a
    Ctrl+C test of `run_ensemble.py --serve`, then never saw its KeyboardInterrupt."""
    yield
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def test_cache_dir() -> Path:
    return Path(os.environ["MOTION_SEARCH_CACHE"])


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance for the whole session (2 CPUs, no dashboard); reused if already up."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()
