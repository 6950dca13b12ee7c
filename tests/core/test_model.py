"""RetrievalModel: both text modes, temperature, parameter groups."""
import copy

import pytest
import torch

import core.text as text_mod
from core.config import ConfigError, LossConfig, ModelConfig, OptimConfig, TextConfig
from core.losses import build_loss
from core.model import RetrievalModel

MODEL = ModelConfig(motion_encoder="tmr", latent_dim=16, hidden_dim=32, num_layers=2, num_heads=4)
OPTIM = OptimConfig(lr=1e-3, weight_decay=0.05)


@pytest.fixture(scope="module")
def minilm():
    return text_mod.load_text_transformer("all-MiniLM-L6-v2")


def motion_batch(b=3, t=10, d=5):
    x = torch.randn(b, t, d)
    mask = torch.arange(t)[None] < torch.randint(2, t + 1, (b,))[:, None]
    return x, mask


def check_groups(model, groups):
    ids = [id(p) for g in groups for p in g["params"]]
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(ids) == len(set(ids)) == len(trainable)  # every trainable parameter exactly once
    named = {id(p): n for n, p in model.named_parameters()}
    for g in groups:
        for p in g["params"]:
            name = named[id(p)]
            if p.ndim < 2 or "tokens" in name or "log_inv_temperature" in name:
                assert g["weight_decay"] == 0.0, name
    return {g["name"]: g for g in groups}


def test_frozen_mode_encodes_features_and_learns_temperature():
    torch.manual_seed(0)
    model = RetrievalModel(TextConfig(), MODEL, motion_dim=5, frozen_text_dim=384,
                           loss_cfg=LossConfig(temperature=0.05, learn_temperature=True))
    assert model.text_transformer is None
    assert model.temperature().item() == pytest.approx(0.05)
    t = model.encode_text(text_features=torch.randn(3, 384))
    out = model.encode_motion(*motion_batch())
    assert t.shape == out["embedding"].shape == (3, 16)
    loss = build_loss(LossConfig())(t, out["embedding"], temperature=model.temperature())
    loss["total"].backward()
    assert model.log_inv_temperature.grad is not None and model.log_inv_temperature.grad != 0
    groups = check_groups(model, model.param_groups(OPTIM, TextConfig()))
    assert set(groups) == {"decay", "no_decay"}
    assert any(p is model.log_inv_temperature for p in groups["no_decay"]["params"])
    assert groups["decay"]["weight_decay"] == 0.05 and groups["decay"]["lr"] == 1e-3
    with pytest.raises(ValueError, match="text_features"):
        model.encode_text(texts=["a person walks"])
    with pytest.raises(ConfigError, match="frozen_text_dim"):
        RetrievalModel(TextConfig(), MODEL, motion_dim=5)


def test_fixed_temperature_is_a_buffer_and_clamped():
    model = RetrievalModel(TextConfig(), MODEL, 5, 384, loss_cfg=LossConfig(temperature=0.1))
    assert "log_inv_temperature" in dict(model.named_buffers())
    assert "log_inv_temperature" not in dict(model.named_parameters())
    learned = RetrievalModel(TextConfig(), MODEL, 5, 384, loss_cfg=LossConfig(learn_temperature=True))
    with torch.no_grad():
        learned.log_inv_temperature.fill_(50.0)  # would be T = e^-50
    assert learned.temperature().item() == pytest.approx(1 / 100.0)
    state = learned.state_dict()
    assert "log_inv_temperature" in state  # a learned temperature travels with the checkpoint


def test_finetune_mode_groups_and_gradients(minilm, monkeypatch):
    monkeypatch.setattr(text_mod, "load_text_transformer", lambda name: (copy.deepcopy(minilm[0]), minilm[1]))
    cfg = TextConfig(text_mode="finetune", text_finetune_layers=1, text_lr=3e-5)
    model = RetrievalModel(cfg, MODEL, motion_dim=5)
    t = model.encode_text(texts=["a person walks", "someone jumps high", "waving"])
    out = model.encode_motion(*motion_batch())
    build_loss(LossConfig())(t, out["embedding"])["total"].backward()
    groups = check_groups(model, model.param_groups(OPTIM, cfg))
    assert set(groups) == {"decay", "no_decay", "text_decay", "text_no_decay"}
    assert groups["text_decay"]["lr"] == groups["text_no_decay"]["lr"] == 3e-5
    text_params = {id(p) for p in model.text_transformer.parameters()}
    assert all(id(p) in text_params for p in groups["text_decay"]["params"] + groups["text_no_decay"]["params"])
    assert all(p.grad is not None for g in groups.values() for p in g["params"])
    with pytest.raises(ValueError, match="raw captions"):
        model.encode_text(text_features=torch.randn(3, 384))
