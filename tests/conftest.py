"""Shared test set-up: isolated caches, offline libraries, quiet Ray, the shared real-data folder."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The shared real-data folder beside the project; MOTION_SEARCH_SHARED_DATA names another one (a checkout
# outside the project folder, such as a git worktree, has none beside it).
SHARED_DATA = Path(os.environ.get("MOTION_SEARCH_SHARED_DATA") or REPO.parent / "shared" / "data")

# Set before anything imports ray / wandb / transformers.
_session_cache = tempfile.mkdtemp(prefix="mrs-test-cache-")
os.environ.setdefault("MOTION_SEARCH_CACHE", _session_cache)
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ["WANDB_MODE"] = "offline"   # never "disabled" or "online" from the caller: tests read the offline runs
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


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
