"""core/registry.py: names and traits without torch, implementations on demand; every registered encoder and
loss is exercised here, so registering a new one runs these checks on it too."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from core.config import ConfigError, LossConfig, ModelConfig, TrainConfig
from core.losses import build_loss
from core.motion import MotionEncoder, build_motion_encoder
from core.registry import LOSSES, MOTION_ENCODERS, Registry


def test_registering_twice_or_without_a_target_is_refused():
    registry = Registry("thing", "thing")
    registry.register("a", "os:path")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a", "os:sep")
    with pytest.raises(ValueError, match="module:attribute"):
        registry.register("b", "os.path")


def test_an_unknown_name_is_a_config_error_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"'motion_encoder' = 'grú' is invalid \(did you mean 'gru'\?\)"):
        TrainConfig.from_flat({"motion_encoder": "grú"})
    with pytest.raises(ConfigError, match="expected one of infonce, aligned, temos, ntxent"):
        TrainConfig.from_flat({"loss": "triplet"})


def test_reading_names_does_not_import_torch():
    code = ("import sys, core.config, spaces; "
            "assert 'torch' not in sys.modules, 'torch imported'; print(core.config.MOTION_ENCODERS.names())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.parametrize("name", MOTION_ENCODERS.names())
def test_every_registered_encoder_builds_and_honours_its_poolings(name):
    assert issubclass(MOTION_ENCODERS.load(name), MotionEncoder)
    for pooling in ("auto", *MOTION_ENCODERS.trait(name, "poolings")):
        cfg = ModelConfig(motion_encoder=name, motion_pooling=pooling, latent_dim=16, hidden_dim=32, num_layers=1,
                          num_heads=4)
        dim = 137 if MOTION_ENCODERS.trait(name, "part_embeddings") else 7   # a part model needs known joints
        encoder = build_motion_encoder(cfg, motion_dim=dim, max_len=32).eval()
        mask = torch.arange(12).unsqueeze(0) < torch.tensor([[12], [5]])   # (2, 12): lengths 12 and 5
        out = encoder(torch.randn(2, 12, dim), mask)
        assert out["embedding"].shape == (2, 16)
        assert torch.allclose(out["embedding"].norm(dim=-1), torch.ones(2), atol=1e-5)
    unsupported = [p for p in ("token", "mean", "attention") if p not in MOTION_ENCODERS.trait(name, "poolings")]
    for pooling in unsupported:
        with pytest.raises(ConfigError, match="is not available for"):
            ModelConfig(motion_encoder=name, motion_pooling=pooling).validate()


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_registered_loss_runs_with_only_what_it_declares(name):
    torch.manual_seed(0)
    text, motion = (torch.nn.functional.normalize(torch.randn(6, 8), dim=-1) for _ in range(2))
    vae = {"mu": torch.randn(6, 8), "logvar": torch.zeros(6, 8)} if LOSSES.trait(name, "needs_vae") else {}
    terms = build_loss(LossConfig(loss=name))(text, motion, **vae)
    assert terms["total"].ndim == 0 and torch.isfinite(terms["total"])
    for weight in LOSSES.trait(name, "weights", ()):
        assert hasattr(LossConfig(), weight)   # the weights it declares are LossConfig fields


def test_a_loss_that_needs_the_vae_head_asks_for_it():
    needs = [n for n in LOSSES.names() if LOSSES.trait(n, "needs_vae")]
    assert needs == ["temos"]
    with pytest.raises(ConfigError, match="needs the VAE head: set vae=true"):
        TrainConfig.from_flat({"loss": "temos"})
