"""Freed heap goes back to the OS once per epoch (glibc malloc_trim), and at the start of a trial."""
from __future__ import annotations

import platform
import sys

import pytest

from core import memory
from core.train import trainer as train_mod
from core.config import default_flat


def test_release_reports_whether_glibc_was_asked():
    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert memory.release_free_heap() is expected


@pytest.mark.skipif(not memory.release_free_heap(), reason="needs glibc")
def test_trim_returns_freed_fragmented_heap():
    import psutil

    proc = psutil.Process()
    # Chunks below the mmap threshold live in the heap; freeing all but a pinned one at the top keeps
    # glibc from shrinking the heap by itself, so the freed pages stay resident until trimmed.
    chunks = [bytearray(96 * 1024) for _ in range(3000)]        # ~280 MiB of small heap chunks
    pin = bytearray(96 * 1024)
    del chunks
    before = proc.memory_info().rss
    memory.release_free_heap()
    after = proc.memory_info().rss
    assert before - after > 100 * 2**20, (before, after)
    del pin


def test_trainer_releases_after_every_epoch(monkeypatch):
    calls = []
    monkeypatch.setattr(train_mod, "release_free_heap", lambda: calls.append(1) or True)
    flat = {**default_flat(), "data": "synthetic:n=120", "epochs": 2, "hidden_dim": 32, "latent_dim": 32,
            "num_layers": 1, "num_heads": 2, "max_frames": 32, "batch_size": 32, "num_threads": 1}
    history = train_mod.train_retrieval(flat)
    # 84 train motions / batch 32 = 3 steps an epoch, under TRIM_EVERY_STEPS: no in-epoch trims here.
    assert train_mod.TRIM_EVERY_STEPS > 3
    assert len(history) == 2 and len(calls) == 1 + 2      # trial start + one per epoch
