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
