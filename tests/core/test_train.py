"""The training function on a small learnable toy corpus: reporting, resume, errors, caches."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from core.train import trainer as train_mod   # the module whose globals the trainer reads
from core.config import ConfigError
from core.data.build import build_corpus
from core.data.types import FeatureLayout, MotionItem, RawCorpus
from core.shared import SharedInputs
from core.train import NonFiniteLossError, train_retrieval

ACTIONS = ["walks", "runs", "jumps", "waves", "kicks", "sits down", "spins", "claps"]
TINY = {"hidden_dim": 32, "num_layers": 1, "num_heads": 2, "latent_dim": 32, "batch_size": 16,
        "num_threads": 1, "max_frames": 40, "eval_batches": 5, "eval_batch_size": 16}


def toy_shared(cache_dir: Path, n: int = 160) -> SharedInputs:
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        k, reps = i % 8, 1 + (i // 8) % 3
        t = np.arange(int(rng.integers(20, 50)))[:, None]
        x = np.sin(t * (0.15 + 0.1 * k) * reps + np.arange(8)) + rng.normal(0, 0.3, (len(t), 8))
        items.append(MotionItem(f"t{i:04d}", x.astype(np.float32),
                                [f"a person {ACTIONS[k]} {['once', 'twice', 'three times'][reps - 1]}"]))
    corpus = build_corpus(RawCorpus("toy", items, 20.0, FeatureLayout("raw", 8)))
    mean, std = corpus.mean_std()
    return SharedInputs(corpus, mean, std, cache_dir)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return toy_shared(tmp_path_factory.mktemp("cache"))


def test_reports_every_epoch_with_checkpoint(shared):
    seen = []

    def reporter(metrics, ckpt):
        files = sorted(p.name for p in Path(ckpt).iterdir())
        emb = np.load(Path(ckpt) / "embeddings.npz")
        seen.append((metrics, files, emb["text"].shape, json.loads((Path(ckpt) / "config.json").read_text())))

    hist = train_retrieval({**TINY, "epochs": 2}, reporter, shared=shared)
    assert [m["epoch"] for m, *_ in seen] == [1, 2] and len(hist) == 2
    metrics, files, shape, cfg = seen[-1]
    assert files == ["checkpoint.pt", "config.json", "embeddings.npz", "training_state.pt"]
    assert shape == (len(shared.corpus.split("val")), 32) and cfg["hidden_dim"] == 32
    for key in ("recall_at_1", "weighted_recall", "medr", "full_t2m_R1", "small_t2m_R1", "m2t_recall_at_1",
                "train_loss", "loss_infonce", "alignment_gap", "samples_per_second", "epoch_seconds", "lr"):
        assert np.isfinite(metrics[key]), key
    assert 0 <= metrics["recall_at_1"] <= 100


def test_resume_reproduces_next_epoch_exactly(shared, tmp_path):
    config = {**TINY, "epochs": 3, "aug_noise": 0.1, "aug_mirror": 0.0, "dropout": 0.2}
    saved = {}

    def keep(metrics, ckpt):
        shutil.copytree(ckpt, tmp_path / f"e{metrics['epoch']}")
        saved[metrics["epoch"]] = metrics

    train_retrieval(config, keep, shared=shared)
    resumed = train_retrieval(config, None, shared=shared, resume_from=tmp_path / "e2")
    assert len(resumed) == 3  # history carried over + the one new epoch
    for key in ("train_loss", "recall_at_1", "full_t2m_R1", "mean_diag_sim"):
        assert resumed[-1][key] == pytest.approx(saved[3][key], rel=1e-5, abs=1e-6), key


def test_resume_refuses_a_checkpoint_of_another_config(shared, tmp_path):
    def keep(metrics, ckpt):
        shutil.copytree(ckpt, tmp_path / "c", dirs_exist_ok=True)
    train_retrieval({**TINY, "epochs": 1}, keep, shared=shared)
    with pytest.raises((ConfigError, RuntimeError), match="does not match|size mismatch"):
        train_retrieval({**TINY, "epochs": 2, "hidden_dim": 64}, None, shared=shared, resume_from=tmp_path / "c")


def test_unknown_and_invalid_keys_fail_before_training(shared):
    with pytest.raises(ConfigError, match="did you mean 'temperature'"):
        train_retrieval({"temprature": 0.1}, shared=shared)
    with pytest.raises(ConfigError, match="'loss' = 'temos' needs the VAE head"):
        train_retrieval({"loss": "temos"}, shared=shared)
    with pytest.raises(ConfigError, match="num_heads"):
        train_retrieval({"hidden_dim": 30, "num_heads": 4}, shared=shared)


def test_nonfinite_loss_ends_the_run_with_a_reason(shared, monkeypatch):
    real = train_mod.build_loss

    def nan_loss(cfg):
        inner = real(cfg)
        return lambda *a, **k: {"total": inner(*a, **k)["total"] * torch.tensor(float("nan"))}
    monkeypatch.setattr(train_mod, "build_loss", nan_loss)
    with pytest.raises(NonFiniteLossError, match="loss became nan at epoch 1, step 1"):
        train_retrieval({**TINY, "epochs": 1}, shared=shared)


def test_early_stopping_patience(shared):
    hist = train_retrieval({**TINY, "epochs": 8, "patience": 1, "lr": 1e-7}, shared=shared)
    assert len(hist) < 8


def test_every_encoder_and_loss_trains_one_epoch(shared):
    for extra in ({"motion_encoder": "gru"}, {"motion_encoder": "transformer"},
                  {"loss": "aligned"}, {"loss": "ntxent"}, {"loss": "temos", "vae": True},
                  {"learn_temperature": True}, {"filter_threshold": 0.9}):
        hist = train_retrieval({**TINY, "epochs": 1, **extra}, shared=shared)
        assert np.isfinite(hist[0]["train_loss"]), extra


def test_frozen_text_features_computed_once_and_reused(tmp_path):
    shared = toy_shared(tmp_path)
    train_retrieval({**TINY, "epochs": 1}, shared=shared)
    files = sorted((tmp_path / "text").rglob("*.npy"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    fresh = toy_shared(tmp_path)  # a new process/trial: nothing in memory, the disk cache answers
    train_retrieval({**TINY, "epochs": 1}, shared=fresh)
    assert sorted((tmp_path / "text").rglob("*.npy")) == files and files[0].stat().st_mtime_ns == stamp
