"""core/ssm.py: the chunked selective scan against the plain recurrence, padding invariance, stability."""
from __future__ import annotations

import pytest
import torch

from core.config import ModelConfig
from core.motion import build_motion_encoder
from core.ssm import selective_scan


def sequential_scan(x, delta, a, b, c):
    """The recurrence itself, one frame at a time (float64)."""
    batch, length, dim = x.shape
    state = torch.zeros(batch, dim, b.shape[2], dtype=torch.float64)
    out = []
    for t in range(length):
        state = torch.exp(delta[:, t] * a)[..., None] * state + (delta[:, t] * x[:, t])[..., None] * b[:, t, None, :]
        out.append(torch.einsum("bdn,bn->bd", state, c[:, t]))
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("length, chunk", [(1, 16), (37, 16), (40, 8), (33, 64)])
def test_chunked_scan_equals_the_recurrence(length, chunk):
    g = torch.Generator().manual_seed(length)
    x = torch.randn(2, length, 5, generator=g, dtype=torch.float64)
    delta = torch.nn.functional.softplus(torch.randn(2, length, 5, generator=g, dtype=torch.float64))
    a = -torch.rand(5, generator=g, dtype=torch.float64) * 4
    b, c = (torch.randn(2, length, 3, generator=g, dtype=torch.float64) for _ in range(2))
    expected = sequential_scan(x, delta, a, b, c)
    got = selective_scan(x, delta, a, b, c, chunk=chunk)
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-4)


def test_strong_decay_over_long_motions_stays_finite():
    x = torch.randn(1, 600, 4)
    delta = torch.full((1, 600, 4), 5.0)             # decay exp(-5 * 64) per frame: exp(+L) would overflow float32
    a = -torch.tensor([1.0, 8.0, 32.0, 64.0])
    y = selective_scan(x, delta, a, torch.randn(1, 600, 16), torch.randn(1, 600, 16))
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_padding_never_changes_a_motions_embedding(pooling):
    torch.manual_seed(0)
    cfg = ModelConfig(motion_encoder="ssm", motion_pooling=pooling, latent_dim=16, hidden_dim=32, num_layers=2,
                      ssm_state=4, dropout=0.0)
    encoder = build_motion_encoder(cfg, motion_dim=6).eval()
    motion = torch.randn(1, 21, 6)
    alone = encoder(motion, torch.ones(1, 21, dtype=torch.bool))["embedding"]
    padded = torch.cat([motion, 100 * torch.randn(1, 30, 6)], dim=1)   # garbage after the valid frames
    mask = torch.arange(51).unsqueeze(0) < 21
    in_batch = encoder(torch.cat([padded, torch.randn(1, 51, 6)]), torch.cat([mask, torch.ones(1, 51, dtype=torch.bool)]))
    torch.testing.assert_close(in_batch["embedding"][:1], alone, rtol=1e-4, atol=1e-5)


def test_it_learns_to_tell_two_motions_apart():
    torch.manual_seed(0)
    cfg = ModelConfig(motion_encoder="ssm", latent_dim=8, hidden_dim=16, num_layers=1, ssm_state=4, dropout=0.0)
    encoder = build_motion_encoder(cfg, motion_dim=3)
    t = torch.linspace(0, 6.28, 40)
    motions = torch.stack([torch.stack([t.sin(), t.cos(), t], -1), torch.stack([t.cos(), -t.sin(), -t], -1)])
    mask = torch.ones(2, 40, dtype=torch.bool)
    targets = torch.eye(2, 8)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-2)
    for _ in range(60):
        loss = ((encoder(motions, mask)["embedding"] - targets) ** 2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1
