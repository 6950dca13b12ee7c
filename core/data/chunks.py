"""Shared arrays handed to trials piece by piece: the corpus frames in chunks, text features whole.

Publishing the corpus for a search (``core.shared.SharedInputs.published``) copies it into a shared store (Ray's
object store: ``put`` is given by search/). Copied in one go, the driver held the corpus twice at that moment: the
memory-mapped cache pages it read and the store's copy it wrote. Copied chunk by chunk, each chunk's cache pages
are dropped from the driver (core/data/cache.release_pages) once the chunk is in the store, so the driver never
holds more than the store's copy and one chunk.

  FrameChunks    (sum_T, D) frames as consecutive row blocks split at motion boundaries: a motion's rows are
                 a view into one block, never a copy. Its parts are arrays, or store handles until ``resolved``.
  DeferredArray  a store handle with the array's shape and dtype, until ``resolved``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

CHUNK_BYTES = 256 * 2**20   # the most the driver holds twice while publishing


class FrameChunks:
    """Rows [bounds[k], bounds[k + 1]) of the frames are ``parts[k]``; slicing inside one part is a view."""

    __slots__ = ("parts", "bounds", "dim", "dtype")

    def __init__(self, parts: Sequence[Any], bounds: np.ndarray, dim: int, dtype: Any = np.float32):
        self.parts, self.bounds, self.dim, self.dtype = list(parts), np.asarray(bounds, np.int64), dim, np.dtype(dtype)

    @classmethod
    def split(cls, frames: np.ndarray, offsets: np.ndarray, chunk_bytes: int = CHUNK_BYTES) -> "FrameChunks":
        """Views of ``frames`` in blocks of about ``chunk_bytes`` that end on motion boundaries (``offsets``)."""
        row_bytes = max(1, frames.shape[1] * frames.dtype.itemsize)
        rows = max(1, chunk_bytes // row_bytes)
        bounds, start, total = [0], 0, int(offsets[-1])
        while start < total:
            last_fitting = int(offsets[np.searchsorted(offsets, start + rows, side="right") - 1])
            next_motion_end = int(offsets[np.searchsorted(offsets, start, side="right")])
            start = max(last_fitting, next_motion_end)   # whole motions; one motion longer than a block: alone
            bounds.append(start)
        bounds = np.asarray(bounds, np.int64)
        return cls([frames[a:b] for a, b in zip(bounds[:-1], bounds[1:])], bounds, frames.shape[1], frames.dtype)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.bounds[-1]), self.dim

    @property
    def ndim(self) -> int:
        return 2

    @property
    def nbytes(self) -> int:
        return int(self.bounds[-1]) * self.dim * self.dtype.itemsize

    def __len__(self) -> int:
        return int(self.bounds[-1])

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("FrameChunks supports contiguous row slices only (a motion's rows)")
        start, stop, _ = key.indices(len(self))
        k = int(np.searchsorted(self.bounds, start, side="right")) - 1
        k = min(max(k, 0), len(self.parts) - 1)
        lo = int(self.bounds[k])
        if stop > int(self.bounds[k + 1]):   # never for a motion: blocks end on motion boundaries
            raise IndexError(f"rows {start}:{stop} straddle two frame blocks")
        return self.parts[k][start - lo:stop - lo]

    def map(self, fn: Callable[[Any], Any]) -> "FrameChunks":
        return FrameChunks([fn(p) for p in self.parts], self.bounds, self.dim, self.dtype)


class DeferredArray:
    """What a published array is until the trial resolves it: a store handle with the shape and dtype."""

    __slots__ = ("handle", "shape", "dtype")

    def __init__(self, handle: Any, shape: tuple[int, ...], dtype: Any):
        self.handle, self.shape, self.dtype = handle, tuple(shape), np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]
