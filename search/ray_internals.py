"""Every use of Ray's private API, in one place, for the Ray range ``TESTED_RAY`` (pinned in pyproject.toml).

A Ray upgrade that renames any of these breaks here and in tests/search/test_ray_internals.py, not across the
project. What is used, and why no public API does it:
- Tune's experiment-state file names (``TUNE_STATE_PATTERNS``): search/tune_state.py keeps a complete copy
  of them so a full disk cannot make ``--resume`` start over; Tune has no API to list or verify them.
- ``ray.autoscaler._private.util.prepare_config/validate_config`` (``validate_launcher_config``): what
  `ray up` runs first, so cluster/ rejects a bad launcher YAML before any machine starts.
- The trial session's checkpoint index (``continue_checkpoint_numbering``): a trial restored from a checkpoint older
  than its newest one (a driver killed after Tune registered the newer one, before its state was saved) must store
  its next checkpoint after the newest, not over it; Tune numbers from the state it restored.
- ``RAY_AIR_NEW_OUTPUT=0`` (``use_legacy_progress_reporter``): the new console output ignores CLIReporter's
  columns (R@1, wR, sampled parameters).
Nothing here imports Ray until a function is called.
"""
from __future__ import annotations

import copy
import logging
import os
import warnings
from pathlib import Path
from typing import Any

TESTED_RAY = ((2, 50), (2, 60))   # inclusive (major, minor)
# The runner (JSON), then the search algorithm: OptunaSearch in a ConcurrencyLimiter (the search) or
# BasicVariantGenerator (the refit); the last three are cloudpickles whatever their suffix.
EXPERIMENT_STATE_GLOB = "experiment_state-*.json"   # the runner's state: trials, statuses, checkpoints
TUNE_STATE_PATTERNS = (EXPERIMENT_STATE_GLOB, "search_gen_state-*.json", "searcher-state-*.pkl",
                       "basic-variant-state-*.json")


def is_experiment_state(name: str) -> bool:
    """Whether a file name is one of Tune's experiment-state files (``EXPERIMENT_STATE_GLOB``)."""
    from fnmatch import fnmatch

    return fnmatch(name, EXPERIMENT_STATE_GLOB)


def can_resume(path: str) -> bool:
    """Tune can continue the experiment at ``path``: ``Tuner.can_restore`` (tuner.pkl, written when a run starts)
    AND an experiment state (written seconds later). A driver killed between the two left tuner.pkl alone:
    Tune's restore then logs "Failed to restore the run state" and restarts with its sample count lost (1 trial
    instead of --num-samples); such a folder must be started again in place instead (search/run.py)."""
    from ray import tune

    if not tune.Tuner.can_restore(path):
        return False
    from .storage import _filesystem, is_uri

    if not is_uri(path):
        return any(Path(path).glob(EXPERIMENT_STATE_GLOB))
    import pyarrow.fs

    fs, inner = _filesystem(path)
    infos = fs.get_file_info(pyarrow.fs.FileSelector(inner, allow_not_found=True))
    return any(is_experiment_state(Path(i.path).name) for i in infos)


def continue_checkpoint_numbering(resumed_from: str) -> None:
    """Inside a trial: its next ``tune.report`` checkpoint goes to the folder after ``resumed_from``
    (``checkpoint_NNNNNN``) when Tune's own count is behind it. Tune restores the count from its saved state; a trial
    that continues from a newer folder than that state names would otherwise store its next epoch over a folder
    its record already names for an earlier epoch."""
    name = Path(resumed_from).name
    if not (name.startswith("checkpoint_") and name[len("checkpoint_"):].isdigit()):
        return   # a download (cloud storage: Tune's own count is right there, nothing is emptied)
    from ray.train._internal.session import get_session

    session = get_session()
    index = int(name[len("checkpoint_"):])
    if session is not None and session.storage is not None and session.storage.current_checkpoint_index < index:
        session.storage.current_checkpoint_index = index


def ray_version_supported(version: str | None = None) -> bool:
    if version is None:
        import ray
        version = ray.__version__
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return TESTED_RAY[0] <= major_minor <= TESTED_RAY[1]


def check_ray_version(version: str | None = None) -> bool:
    """False and one warning for a Ray outside ``TESTED_RAY``: the internals below may have moved."""
    if ray_version_supported(version):
        return True
    if version is None:
        import ray
        version = ray.__version__
    (low_major, low_minor), (high_major, high_minor) = TESTED_RAY
    warnings.warn(f"Ray {version} is outside the tested range {low_major}.{low_minor}-{high_major}.{high_minor} "
                  "(search/ray_internals.py): cluster config checks and the copy of Tune's "
                  "state that lets --resume survive a full disk may not work.", stacklevel=2)
    return False


def validate_launcher_config(data: dict[str, Any]) -> dict[str, Any]:
    """The launcher config as `ray up` prepares it (defaults filled in); raises what Ray's validation raises."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    util_logger = logging.getLogger("ray.autoscaler._private.util")
    level = util_logger.level
    util_logger.setLevel(logging.WARNING)  # its INFO notes on filled-in defaults are not for users here
    try:
        prepared = prepare_config(copy.deepcopy(data))
        validate_config(prepared)
        return prepared
    finally:
        util_logger.setLevel(level)


def use_legacy_progress_reporter() -> None:
    """Tune's legacy console output, which shows the CLIReporter columns we choose."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
