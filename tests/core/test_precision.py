"""bf16 autocast policy: asked for by RuntimeConfig.amp, honoured on CUDA and on CPUs with native bf16."""
from __future__ import annotations

import pytest
import torch

from core import precision
from core.config import ModelConfig
from core.motion import build_motion_encoder


@pytest.fixture
def native(monkeypatch):
    def set_native(value: bool) -> None:
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: value)
    return set_native


def test_amp_off_is_always_fp32(native):
    native(True)
    assert not precision.autocast_enabled(torch.device("cpu"), False)
    assert not precision.autocast_enabled(torch.device("cuda"), False)


def test_cpu_uses_bf16_only_with_native_support(native):
    native(False)
    assert not precision.autocast_enabled(torch.device("cpu"), True)
    with precision.autocast(torch.device("cpu"), True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    native(True)
    assert precision.autocast_enabled(torch.device("cpu"), True)
    assert precision.autocast_enabled(torch.device("cuda"), True)
    with precision.autocast(torch.device("cpu"), True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_probe_is_a_bool():
    assert precision.cpu_has_native_bf16() in (True, False)


@pytest.mark.parametrize("kind", ["tmr", "gru", "transformer"])
def test_embeddings_are_unit_norm_fp32_under_autocast(native, kind):
    native(True)
    torch.manual_seed(0)
    encoder = build_motion_encoder(ModelConfig(motion_encoder=kind, hidden_dim=32, latent_dim=16, num_layers=1,
                                               num_heads=2), 12, max_len=64)
    motion, mask = torch.randn(3, 20, 12), torch.ones(3, 20, dtype=torch.bool)
    mask[1, 12:] = False
    with precision.autocast(torch.device("cpu"), True):
        out = encoder(motion, mask)["embedding"]
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3), atol=1e-6, rtol=0)
