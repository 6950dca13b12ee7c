"""Loading a trained checkpoint and encoding splits/queries reproduces what training saw."""
import shutil

from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import ConfigError
from core.data.build import build_corpus
from core.data.types import FeatureLayout, MotionItem, RawCorpus
from core.inference import (encode_queries, encode_split, is_checkpoint_dir, load_checkpoint_model, open_data,
                            stored_split_embeddings)
from core.shared import SharedInputs
from core.train import train_retrieval

TINY = {"data": "synthetic:n=300", "hidden_dim": 32, "latent_dim": 32, "num_layers": 1, "num_heads": 2,
        "batch_size": 32, "epochs": 1, "max_frames": 64, "num_threads": 1, "device": "cpu", "seed": 3}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ckpt") / "checkpoint_000000"
    reported = {}

    def keep(metrics, ckpt):
        shutil.copytree(ckpt, out, dirs_exist_ok=True)
        reported.update(metrics)

    train_retrieval(TINY, keep)
    return out, reported


def test_encoding_the_val_split_reproduces_the_checkpoint_embeddings(checkpoint):
    directory, _ = checkpoint
    assert is_checkpoint_dir(directory) and not is_checkpoint_dir(directory.parent)
    loaded = load_checkpoint_model(directory, device="cpu")
    assert not loaded.model.training and loaded.epoch == 1 and loaded.config.model.hidden_dim == 32
    assert loaded.mean.shape == loaded.std.shape == (loaded.motion_dim,)
    data = open_data(loaded.config)
    val = encode_split(loaded, data, "val")
    saved = np.load(directory / "embeddings.npz")
    np.testing.assert_allclose(val.text, saved["text"], atol=1e-5)
    np.testing.assert_allclose(val.motion, saved["motion"], atol=1e-5)
    assert val.ids == [str(x) for x in saved["ids"]] and val.captions == [str(x) for x in saved["captions"]]
    test = encode_split(loaded, data, "test")
    assert len(test.ids) == len(data.corpus.split("test")) and not set(test.ids) & set(val.ids)
    assert len(test.groups) == len(test.ids)


def test_stored_val_embeddings_stand_in_for_encoding_only_when_they_are_that_split(checkpoint):
    directory, _ = checkpoint
    loaded = load_checkpoint_model(directory, device="cpu")
    data = open_data(loaded.config)
    stored, encoded = stored_split_embeddings(loaded, data, "val"), encode_split(loaded, data, "val")
    np.testing.assert_allclose(stored.text, encoded.text, atol=1e-5)
    assert stored.ids == encoded.ids and stored.captions == encoded.captions and stored.groups == encoded.groups
    assert stored_split_embeddings(loaded, data, "test") is None
    other = open_data(load_checkpoint_model(directory, device="cpu").config.__class__.from_flat(
        {**loaded.flat_config, "data": "synthetic:n=300,val=0.3,test=0.1"}))
    assert stored_split_embeddings(loaded, other, "val") is None      # other motions in val: encode instead


def test_cut_off_stored_embeddings_are_encoded_again(checkpoint, tmp_path):
    import shutil

    copy = Path(shutil.copytree(checkpoint[0], tmp_path / "ckpt"))
    npz = copy / "embeddings.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])   # a full disk or an interrupted copy
    loaded = load_checkpoint_model(copy, device="cpu")
    assert stored_split_embeddings(loaded, open_data(loaded.config), "val") is None


def test_queries_match_split_text_embeddings_with_and_without_the_feature_cache(checkpoint):
    loaded = load_checkpoint_model(checkpoint[0], device="cpu")
    data = open_data(loaded.config)
    val = encode_split(loaded, data, "val")
    captions = val.captions[:4]
    cached = encode_queries(loaded, captions, data)               # rows of the frozen-feature cache
    fresh = encode_queries(loaded, captions)                      # the text transformer run now
    np.testing.assert_allclose(cached, val.text[:4], atol=1e-5)
    np.testing.assert_allclose(fresh, cached, atol=1e-4)
    novel = encode_queries(loaded, ["someone juggles three flaming torches"], data)
    assert novel.shape == (1, 32) and np.isclose(np.linalg.norm(novel), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="non-empty"):
        encode_queries(loaded, ["  "])


def test_errors_name_the_problem(checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint here"):
        load_checkpoint_model(tmp_path)
    loaded = load_checkpoint_model(checkpoint[0], device="cpu")
    items = [MotionItem(f"x{i:03d}", np.random.default_rng(i).normal(size=(20, 5)).astype(np.float32),
                        [f"caption {i}"]) for i in range(40)]
    corpus = build_corpus(RawCorpus("other", items, 20.0, FeatureLayout("raw", 5)))
    mean, std = corpus.mean_std()
    with pytest.raises(ConfigError, match="5"):
        encode_split(loaded, SharedInputs(corpus, mean, std, tmp_path), "val")
