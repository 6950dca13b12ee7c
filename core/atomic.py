"""Atomic writes: a reader (or a crash) never sees a half-written file or folder. Every write of a result,
cache entry, checkpoint or state file in the project goes through here.

Files are written under a temp name in the same folder, then ``os.replace``d onto the target (atomic on
POSIX filesystems); folders are prepared beside the target and swapped in by two renames, the previous one
parked at ``parked_dir(target)`` in between so a crash there leaves one whole copy.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success give it normal permissions and move it onto ``path``;
    on any error remove it and leave ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _default_mode())  # mkstemp creates 0600; outputs are meant to be shared like any file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def parked_dir(target: Path) -> Path:
    """Where ``swap_in_dir`` keeps the previous folder during the swap (a crash leaves it there, whole)."""
    return target.with_name(f"{target.name}.old")


def swap_in_dir(prepared: Path, target: Path) -> None:
    """Put the folder ``prepared`` (beside ``target``, same filesystem) in place of ``target``."""
    parked = parked_dir(target)
    shutil.rmtree(parked, ignore_errors=True)
    if target.exists():
        os.replace(target, parked)
    os.replace(prepared, target)
    shutil.rmtree(parked, ignore_errors=True)


def copy_dir_atomically(src: str | Path, target: Path, exclude: tuple[str, ...] = ()) -> None:
    """Copy the folder ``src`` (without the file names in ``exclude``) onto ``target``: copied beside it first,
    then swapped in whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    prepared = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        shutil.copytree(src, prepared, dirs_exist_ok=True, copy_function=_copy_or_stop,
                        ignore=(lambda _dir, names: [n for n in names if n in exclude]) if exclude else None)
        swap_in_dir(prepared, target)
    except _CopyFailed as failed:   # the file's own OSError (errno kept: a full disk is named as one)
        shutil.rmtree(prepared, ignore_errors=True)
        raise failed.error from None
    except BaseException:
        shutil.rmtree(prepared, ignore_errors=True)
        raise


class _CopyFailed(Exception):
    """Carries a file's OSError out of shutil.copytree, which would otherwise go on with the other files and
    raise one shutil.Error listing them all, its errno lost (a full disk then read as an unknown failure)."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


def _copy_or_stop(src: str, dst: str) -> str:
    try:
        return shutil.copy2(src, dst)
    except OSError as e:
        raise _CopyFailed(e) from None
