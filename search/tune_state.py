"""Tune's experiment-level state files, and a last complete copy of them that a full disk cannot tear.

Tune writes these files at the top of an experiment folder and reads them back on ``Tuner.restore`` (the newest
of each kind wins; their names come from search/ray_internals.py):
  experiment_state-<session>.json   trials, their statuses and checkpoints (JSON)
  search_gen_state-<session>.json   the search wrapper (a cloudpickle despite the suffix)
  searcher-state-<session>.pkl      the Optuna study inside the searcher (cloudpickle)
  basic-variant-state-<session>.json  the refit's list of configs (cloudpickle)
Tune copies them from the driver's staging folder onto --storage without a temp file, so a disk that fills
mid-copy leaves them cut off, and a restore from a cut-off state starts the search over. ``LastGoodState``
keeps, beside them in ``.last_good_state/``, the newest set that was complete; ``restore_last_good`` puts it
back before ``--resume``. Completeness is checked without running anything: JSON is parsed, and a pickle's
opcodes are walked to its STOP (``pickletools``) but never executed.
"""
from __future__ import annotations

import contextlib
import io
import json
import pickletools
import shutil
import time
from pathlib import Path
from typing import Iterator

from core.atomic import atomic_path, parked_dir, swap_in_dir

from core.lockfile import every
from .storage import is_uri
from .ray_internals import TUNE_STATE_PATTERNS as STATE_PATTERNS, check_ray_version, is_experiment_state

LAST_GOOD_DIR = ".last_good_state"
TORN_DIR = ".torn_state"


def newest_state_files(experiment: Path) -> list[Path]:
    """The newest file of each kind (what a restore reads); kinds Tune has not written yet are left out."""
    newest = []
    for pattern in STATE_PATTERNS:
        # The session timestamp in the name sorts chronologically, as Tune's own max(glob) does.
        files = sorted(experiment.glob(pattern), key=lambda p: (p.name, p.stat().st_mtime))
        if files:
            newest.append(files[-1])
    return newest


def is_complete(name: str, data: bytes) -> bool:
    """JSON that parses, or a pickle whose opcode stream reaches STOP (walked, never unpickled)."""
    try:
        if is_experiment_state(name):
            json.loads(data)
        else:
            for _ in pickletools.genops(io.BytesIO(data)):
                pass
    except Exception:   # any parse failure means cut off or not Tune's file
        return False
    return bool(data)


def torn_state_file(experiment: Path) -> Path | None:
    """The first of the newest state files that is cut off (or unreadable), else None."""
    for path in newest_state_files(experiment):
        try:
            data = path.read_bytes()
        except OSError:
            return path
        if not is_complete(path.name, data):
            return path
    return None


def _read_stable(files: list[Path]) -> dict[str, bytes] | None:
    """Their bytes, when none changed while being read (Tune's copy may be in flight), else None."""
    try:
        before = [(p.stat().st_mtime_ns, p.stat().st_size) for p in files]
        data = {p.name: p.read_bytes() for p in files}
        after = [(p.stat().st_mtime_ns, p.stat().st_size) for p in files]
    except OSError:
        return None
    return data if before == after else None


def snapshot(experiment: Path) -> bool:
    """Copy the newest complete state set into .last_good_state/ (swapped in whole); False when there is
    nothing complete to copy or the disk refused the copy (the previous copy is then kept)."""
    files = newest_state_files(experiment)
    if not any(is_experiment_state(p.name) for p in files):
        return False
    data = _read_stable(files)
    if data is None or not all(is_complete(name, raw) for name, raw in data.items()):
        return False
    target = experiment / LAST_GOOD_DIR
    staging = experiment / f"{LAST_GOOD_DIR}.new"
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for name, raw in data.items():
            (staging / name).write_bytes(raw)
        swap_in_dir(staging, target)   # a crash mid-swap leaves parked_dir(target): last_good_copy reads it
    except OSError:   # a full disk: keep the copy we have
        shutil.rmtree(staging, ignore_errors=True)
        return False
    return True


def last_good_copy(experiment: Path) -> Path | None:
    """The kept complete state set (.last_good_state/, or .old left by a crash mid-swap), else None."""
    for folder in (experiment / LAST_GOOD_DIR, parked_dir(experiment / LAST_GOOD_DIR)):
        files = sorted(folder.glob("*")) if folder.is_dir() else []
        if any(is_experiment_state(p.name) for p in files) and all(
                is_complete(p.name, p.read_bytes()) for p in files):
            return folder
    return None


def unrecoverable_state(experiment: Path) -> Path | None:
    """Tune's cut-off state file when no complete copy was kept to continue from (a resume would start over)."""
    torn = torn_state_file(experiment)
    return torn if torn is not None and last_good_copy(experiment) is None else None


def restore_last_good(experiment: Path) -> str | None:
    """When the newest state is cut off and a complete copy exists: move every state file aside into
    .torn_state/ and put the copy in their place. Returns what was done (one line), or None when there was
    nothing to repair or no copy to repair it with."""
    torn = torn_state_file(experiment)
    good = last_good_copy(experiment) if torn is not None else None
    if good is None:
        return None
    aside = experiment / TORN_DIR / time.strftime("%Y%m%d-%H%M%S")
    aside.mkdir(parents=True, exist_ok=True)
    for pattern in STATE_PATTERNS:
        for path in experiment.glob(pattern):
            path.rename(aside / path.name)
    for path in sorted(good.iterdir()):
        with atomic_path(experiment / path.name) as tmp:
            shutil.copyfile(path, tmp)
    saved = time.strftime("%H:%M:%S", time.localtime(max(p.stat().st_mtime for p in good.iterdir())))
    return (f"{torn.name} was cut off (a full disk?); continuing from the last complete copy of Tune's state, "
            f"saved at {saved}. The cut-off files are kept in {aside}.")


@contextlib.contextmanager
def keeping_last_good_state(experiment_path: str, *, interval_s: float = 2.0) -> Iterator[None]:
    """While a Tune experiment runs, snapshot its state every ``interval_s`` (and once at the end). Cloud
    storage (a URI) writes whole objects, so there is nothing to keep there."""
    if is_uri(experiment_path):
        yield
        return
    experiment = Path(experiment_path)
    check_ray_version()
    copied: list[tuple] = [()]   # (name, mtime, size) of the set last copied: unchanged files are not read again

    def step() -> None:
        try:
            files = newest_state_files(experiment)
            signature = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
            if signature != copied[0] and snapshot(experiment):
                copied[0] = signature
        except OSError:
            pass   # the folder went away or is unreadable: the search itself will say so

    try:
        with every(interval_s, step, "last-good-tune-state"):
            yield
    finally:
        step()
