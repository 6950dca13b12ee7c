"""Motion encoders: shapes, unit norm, padding invariance, batch independence, VAE behaviour, errors."""
import pytest
import torch

from core.config import ConfigError, ModelConfig
from core.motion import build_motion_encoder

D, T = 7, 15
ENCODERS = [("tmr", "auto"), ("tmr", "mean"), ("tmr", "attention"), ("transformer", "auto"),
            ("transformer", "token"), ("transformer", "attention"), ("gru", "auto"), ("gru", "mean")]


def make(encoder, pooling="auto", vae=False, dropout=0.1):
    torch.manual_seed(0)
    cfg = ModelConfig(motion_encoder=encoder, motion_pooling=pooling, vae=vae, latent_dim=16, hidden_dim=32,
                      num_layers=2, num_heads=4, dropout=dropout)
    return build_motion_encoder(cfg, D, max_len=64)


def batch(lengths, t=T, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), t, D, generator=g)
    mask = torch.arange(t)[None] < torch.tensor(lengths)[:, None]
    return x, mask


@pytest.mark.parametrize("encoder, pooling", ENCODERS)
@pytest.mark.parametrize("vae", [False, True])
def test_shapes_norm_and_padding_invariance(encoder, pooling, vae):
    enc = make(encoder, pooling, vae).eval()
    x, mask = batch([15, 4, 9])
    with torch.no_grad():
        out = enc(x, mask)
        garbage = torch.where(mask[..., None], x, torch.randn_like(x) * 100)
        out_garbage = enc(garbage, mask)
    assert out["embedding"].shape == (3, 16)
    torch.testing.assert_close(out["embedding"].norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(out_garbage["embedding"], out["embedding"], atol=1e-5, rtol=1e-5)
    assert ("mu" in out) == vae and ("logvar" in out) == vae
    if vae:
        assert out["mu"].shape == out["logvar"].shape == (3, 16)
        # eval mode: embedding = normalize(mu), deterministic
        torch.testing.assert_close(out["embedding"], torch.nn.functional.normalize(out["mu"], dim=-1))


@pytest.mark.parametrize("encoder, pooling", ENCODERS)
def test_batch_independence_and_mask_is_used(encoder, pooling):
    enc = make(encoder, pooling).eval()
    x, mask = batch([15, 6])
    with torch.no_grad():
        together = enc(x, mask)["embedding"]
        alone = enc(x[1:2, :6], mask[1:2, :6])["embedding"]  # no padding at all
        longer = enc(x[1:2], torch.ones(1, T, dtype=torch.bool))["embedding"]  # same frames + 9 more valid
    torch.testing.assert_close(together[1:2], alone, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(alone, longer, atol=1e-4)


@pytest.mark.parametrize("encoder", ["tmr", "transformer", "gru"])
def test_gradients_flow_to_all_parameters(encoder):
    enc = make(encoder, vae=True).train()
    x, mask = batch([15, 4, 9])
    out = enc(x, mask)
    (out["embedding"].sum() + out["logvar"].sum()).backward()
    missing = [n for n, p in enc.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing


def test_vae_samples_in_training_only():
    enc = make("tmr", vae=True, dropout=0.0)  # so only the VAE noise differs between calls
    x, mask = batch([15, 8])
    enc.train()
    a, b = enc(x, mask), enc(x, mask)
    assert not torch.allclose(a["embedding"], b["embedding"])  # fresh noise each call
    torch.testing.assert_close(a["mu"], b["mu"])  # but the same posterior
    enc.eval()
    torch.testing.assert_close(enc(x, mask)["embedding"], torch.nn.functional.normalize(a["mu"], dim=-1))


def test_tmr_uses_two_tokens_with_vae():
    assert make("tmr", vae=True).tokens.shape == (1, 2, 32)
    assert make("tmr").tokens.shape == (1, 1, 32)


def test_errors():
    enc = make("transformer")
    x, mask = batch([70], t=70)
    with pytest.raises(ValueError, match="max_len=64"):
        enc(x, mask)
    x, mask = batch([5, 3])
    with pytest.raises(ValueError, match="motion_dim=7"):
        enc(torch.randn(2, T, D + 1), mask)
    with pytest.raises(ValueError, match="no valid frame"):
        enc(x, torch.zeros_like(mask))
    with pytest.raises(ValueError, match="bool mask"):
        enc(x, mask.float())
    holes = mask.clone()
    holes[0, 1] = False  # valid frames not a prefix
    with pytest.raises(ValueError, match="prefix"):
        make("gru")(x, holes)
    with pytest.raises(ConfigError, match="token"):
        make("gru", "token")
