"""Convert many motion files in a process pool (BVH and joint-position files alike).

A conversion is a module-level function ``convert(path, options) -> result`` (picklable by name);
``convert_files`` runs it on every path, in chunks, in forked worker processes when that helps,
and returns the results in the order of the paths.  A ``DataError`` raised in a worker reaches the
caller with its message (file, problem, fix) intact.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, TypeVar

R = TypeVar("R")
# Below this many files a pool's start-up (~50 ms) costs more than it saves.
MIN_FILES_FOR_POOL = 32


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS / Windows
        return max(1, os.cpu_count() or 1)


def _convert_chunk(convert: Callable[[str, dict], R], paths: list[str], options: dict) -> list[R]:
    return [convert(p, options) for p in paths]


def convert_files(convert: Callable[[str, dict], R], paths: list[Path], options: dict,
                  workers: int | None = None) -> list[R]:
    """``convert(path, options)`` for every path, in ``workers`` processes (default: all CPUs of
    this process); results in the order of paths."""
    workers = int(workers or default_workers())
    names = [str(p) for p in paths]
    if workers <= 1 or len(names) < MIN_FILES_FOR_POOL:
        return _convert_chunk(convert, names, options)
    chunk = max(8, len(names) // (workers * 8))
    chunks = [names[i:i + chunk] for i in range(0, len(names), chunk)]
    # fork: children inherit the imported modules (no re-import cost); elsewhere the default.
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        results = pool.map(_convert_chunk, [convert] * len(chunks), chunks, [options] * len(chunks))
        return [out for part in results for out in part]
