"""core/atomic.py: a failed write leaves the old file (or folder) whole and no temp file behind."""
from __future__ import annotations

import os
import stat

import pytest

from core.atomic import atomic_path, atomic_write_text, copy_dir_atomically, parked_dir, swap_in_dir


def test_a_write_replaces_the_file_with_normal_permissions(tmp_path):
    target = tmp_path / "sub" / "table.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two" and sorted(os.listdir(target.parent)) == ["table.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask   # not mkstemp's 0600


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "plot.png"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["plot.png"]


def test_folders_are_swapped_in_whole(tmp_path):
    target = tmp_path / "best"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "checkpoint.pt").write_text("epoch 1")
    copy_dir_atomically(tmp_path / "a", target)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "checkpoint.pt").write_text("epoch 2")
    copy_dir_atomically(tmp_path / "b", target)
    assert (target / "checkpoint.pt").read_text() == "epoch 2"
    assert not parked_dir(target).exists() and sorted(os.listdir(tmp_path)) == ["a", "b", "best"]

    prepared = tmp_path / ".best.new"
    prepared.mkdir()
    (prepared / "checkpoint.pt").write_text("epoch 3")
    swap_in_dir(prepared, target)
    assert (target / "checkpoint.pt").read_text() == "epoch 3" and not prepared.exists()
