"""One copy of the corpus per node: a trial reads the shared inputs zero-copy and never copies them whole.

``object_store`` does what Ray's object store does with ``tune.with_parameters``: pickle protocol 5 with the
numpy buffers out-of-band, handed back to the reader as read-only memory it does not own.
"""
from __future__ import annotations

import itertools
import pickle
import tracemalloc

import numpy as np
import pytest

from core import train as core_train
from core.config import SMOKE_DATA, SMOKE_MODEL, TrainConfig
from core.shared import prepare_shared


def object_store(obj):
    buffers: list[pickle.PickleBuffer] = []
    inband = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    stored = [memoryview(bytes(b.raw())) for b in buffers]
    return pickle.loads(inband, buffers=stored), inband, stored


@pytest.fixture(scope="module")
def smoke_config(test_cache_dir):
    return TrainConfig.from_flat({**SMOKE_MODEL, "data": SMOKE_DATA, "epochs": 1, "num_threads": 1,
                                  "cache_dir": str(test_cache_dir)}).to_flat()


@pytest.fixture(scope="module")
def shared(smoke_config):
    return prepare_shared(smoke_config, progress=False)


def test_the_shared_inputs_travel_as_buffers_not_inside_the_pickle(shared):
    """A memory-mapped corpus (np.memmap) pickles in-band, i.e. one copy per trial: it must leave as plain views."""
    assert isinstance(shared.corpus.frames, np.memmap)   # the driver's one copy is the cache, memory-mapped
    received, inband, stored = object_store(shared)
    corpus_bytes = shared.corpus.nbytes + sum(f.features.nbytes for f in shared.text_features.values())
    assert len(inband) < 0.02 * corpus_bytes, (len(inband), corpus_bytes)
    assert sum(len(s) for s in stored) >= corpus_bytes
    corpus = received.corpus
    for array in (corpus.frames, corpus.offsets, corpus.ids.data, corpus.captions.strings.data,
                  *(f.features for f in received.text_features.values()), *(f.texts.data for f in
                                                                           received.text_features.values())):
        assert not array.flags.writeable and not array.flags.owndata
    assert any(np.shares_memory(corpus.frames, np.frombuffer(s, np.uint8)) for s in stored)
    assert corpus.captions[3] == shared.corpus.captions[3] and corpus.ids == shared.corpus.ids
    assert corpus.part_texts[0] == shared.corpus.part_texts[0]


def test_a_trial_trains_and_evaluates_on_the_shared_views_without_copying_them(smoke_config, shared):
    """Read-only views make any in-place change fail; traced numpy allocations stay far below one corpus."""
    received, _, _ = object_store(shared)
    trainer = core_train._Trainer(TrainConfig.from_flat(smoke_config), smoke_config, received)
    batches = trainer.builder.epoch_batches
    trainer.builder.epoch_batches = lambda *a, **k: itertools.islice(batches(*a, **k), 3)
    tracemalloc.start()
    try:
        trainer.train_epoch()
        metrics, _ = trainer.evaluate()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert metrics["recall_at_1"] >= 0
    # A whole copy (astype, concatenate, np.array) would be >= 1x the frames; the largest transient is one
    # evaluation batch (128 motions x 64 frames x 396, built then padded: ~13 MB of the 38 MB smoke corpus).
    assert peak < 0.5 * received.corpus.frames.nbytes, (peak, received.corpus.frames.nbytes)
    assert trainer.builder.corpus.frames is received.corpus.frames   # the batches are cut from the shared views
    assert any(trainer.frozen is f for f in received.text_features.values())   # found, not recomputed


def mapped_bytes(file_name: str) -> int:
    """Resident bytes of this process's mappings of files called ``file_name`` (/proc/self/smaps)."""
    total, current = 0, False
    for line in open("/proc/self/smaps"):
        fields = line.split()
        if len(fields) >= 5 and "-" in fields[0]:   # a mapping's header line
            current = fields[-1].endswith(file_name)
        elif current and fields[0] == "Rss:":
            total += int(fields[1]) * 1024
    return total


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc/self/smaps (Linux)")
def test_publishing_stores_the_frames_block_by_block_and_a_trial_resolves_views(shared):
    """What search/run.py does with Ray (put = ray.put, get = ray.get), with a dict as the store: every block
    and text-feature array is stored once, the published object pickles small, every motion resolves to a
    read-only view of one stored block, and the driver's cache pages of each block are dropped once stored."""
    from core.data.chunks import FrameChunks

    store: dict[int, np.ndarray] = {}

    def put(array: np.ndarray) -> int:
        store[len(store)] = np.frombuffer(bytes(np.ascontiguousarray(array).data), array.dtype).reshape(array.shape)
        return len(store) - 1

    frames = shared.corpus.frames
    float(frames.sum())   # the driver has read the whole cache (its pages are mapped here)
    assert mapped_bytes("frames.npy") > 0.9 * frames.nbytes
    published = shared.published(put)
    assert mapped_bytes("frames.npy") < 0.05 * frames.nbytes   # each block's pages were given back once stored
    assert len(pickle.dumps(published, protocol=5)) < 0.02 * frames.nbytes
    chunks = published.corpus.frames
    assert isinstance(chunks, FrameChunks) and chunks.shape == frames.shape
    resolved = published.resolved(store.__getitem__)
    corpus = resolved.corpus
    for i in range(len(corpus)):
        motion = corpus.motion(i)
        assert not motion.flags.writeable and any(np.shares_memory(motion, block) for block in store.values())
        np.testing.assert_array_equal(motion, shared.corpus.motion(i))
    for recipe, features in resolved.text_features.items():
        np.testing.assert_array_equal(features.features, shared.text_features[recipe].features)
        assert features.lookup([features.texts[0]]).shape == (1, features.dim)


def test_frame_blocks_end_on_motion_boundaries():
    from core.data.chunks import FrameChunks

    offsets = np.cumsum([0, 5, 3, 10, 2, 7, 1]).astype(np.int64)
    frames = np.arange(int(offsets[-1]) * 2, dtype=np.float32).reshape(-1, 2)
    blocks = FrameChunks.split(frames, offsets, chunk_bytes=8 * 2 * 4)   # 8 rows a block, one motion has 10
    assert set(blocks.bounds.tolist()) <= set(offsets.tolist()) and blocks.bounds[-1] == offsets[-1]
    for a, b in zip(offsets[:-1], offsets[1:]):
        np.testing.assert_array_equal(blocks[a:b], frames[a:b])
        assert np.shares_memory(blocks[a:b], frames)
    with pytest.raises(IndexError, match="straddle"):
        blocks[0:int(offsets[-1])]
