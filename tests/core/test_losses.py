"""Losses against values computed independently in float64 numpy (explicit loops over the formula)."""
import math

import numpy as np
import pytest
import torch

from core.config import ConfigError, LossConfig
from core.losses import (build_loss, info_nce, kl_standard_normal, negative_filter_mask, nt_xent,
                         uniformity)


def _unit(a):
    a = np.asarray(a, dtype=np.float64)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64)


def ref_infonce(t, m, temp, dropped=frozenset()):
    """Mean over both directions of -log softmax; `dropped` = set of (i, j) removed from the softmax."""
    b = len(t)
    logits = [[float(np.dot(t[i], m[j])) / temp for j in range(b)] for i in range(b)]
    def ce(get):
        total = 0.0
        for i in range(b):
            denom = sum(math.exp(get(i, j)) for j in range(b) if (i, j) not in dropped)
            total += -get(i, i) + math.log(denom)
        return total / b
    return 0.5 * (ce(lambda i, j: logits[i][j]) + ce(lambda i, j: logits[j][i]))


def ref_uniformity(x):
    b = len(x)
    vals = [math.exp(-2.0 * float(np.sum((x[i] - x[j]) ** 2))) for i in range(b) for j in range(b) if i != j]
    return math.log(sum(vals) / len(vals))


T3 = _unit([[1.0, 0.2], [0.3, 1.0], [-1.0, 0.4]])
M3 = _unit([[0.9, 0.1], [0.5, 0.8], [-0.7, -0.6]])


def test_infonce_identity_literal():
    # t = m = I, T = 1: every row is CE([1, 0], 0) = log(1 + e) - 1.
    eye = torch.eye(2, dtype=torch.float64)
    out = info_nce(eye, eye, 1.0)
    assert out["total"].item() == pytest.approx(math.log(1 + math.e) - 1, abs=1e-12)


def test_infonce_matches_reference():
    out = info_nce(_t(T3), _t(M3), 0.1)
    assert out["total"].item() == pytest.approx(ref_infonce(T3, M3, 0.1), rel=1e-9)
    assert set(out) == {"total", "infonce"}


def test_filter_mask_marks_only_similar_offdiagonal_pairs():
    sent = np.array([[1.0, 0.0, 0.0], [0.95, 0.1, 0.0], [0.0, 0.0, 1.0]])  # 0 ~ 1, 2 distinct
    mask = negative_filter_mask(_t(sent), 0.8).numpy()
    expected = np.array([[False, True, False], [True, False, False], [False, False, False]])
    np.testing.assert_array_equal(mask, expected)
    out = info_nce(_t(T3), _t(M3), 0.1, sent_emb=_t(sent), filter_threshold=0.8)
    ref = ref_infonce(T3, M3, 0.1, dropped={(0, 1), (1, 0)})
    assert out["total"].item() == pytest.approx(ref, rel=1e-9)
    assert out["total"].item() != pytest.approx(ref_infonce(T3, M3, 0.1), rel=1e-6)
    # threshold 0 = filtering off, even with sentence embeddings given
    off = info_nce(_t(T3), _t(M3), 0.1, sent_emb=_t(sent), filter_threshold=0.0)
    assert off["total"].item() == pytest.approx(ref_infonce(T3, M3, 0.1), rel=1e-9)


def test_filter_never_masks_the_positive():
    sent = np.ones((3, 4))  # all captions identical: every negative is filtered, positives stay
    out = info_nce(_t(T3), _t(M3), 0.1, sent_emb=_t(sent), filter_threshold=0.5)
    assert out["total"].item() == pytest.approx(0.0, abs=1e-12)


def test_uniformity_literal_and_reference():
    eye = torch.eye(2, dtype=torch.float64)  # ||e1 - e2||^2 = 2 -> log exp(-4) = -4
    assert uniformity(eye).item() == pytest.approx(-4.0, abs=1e-12)
    assert uniformity(_t(T3)).item() == pytest.approx(ref_uniformity(T3), rel=1e-9)


def test_aligned_matches_reference():
    cfg = LossConfig(loss="aligned", temperature=0.2, mse_weight=0.3, uniformity_weight=0.05)
    out = build_loss(cfg)(_t(T3), _t(M3))
    mse = np.mean([np.sum((T3[i] - M3[i]) ** 2) for i in range(3)])
    unif = 0.5 * (ref_uniformity(T3) + ref_uniformity(M3))
    nce = ref_infonce(T3, M3, 0.2)
    assert out["mse"].item() == pytest.approx(mse, rel=1e-9)
    assert out["uniformity"].item() == pytest.approx(unif, rel=1e-9)
    assert out["total"].item() == pytest.approx(nce + 0.3 * mse + 0.05 * unif, rel=1e-9)


def test_kl_literal():
    # elements: 0.5 (1 + 1 - 1 - 0) = 0.5 and 0.5 (0 + 2 - 1 - log 2); mean of the two
    mu, logvar = _t([[1.0, 0.0]]), _t([[0.0, math.log(2.0)]])
    expected = 0.5 * (0.5 + 0.5 * (1.0 - math.log(2.0)))
    assert kl_standard_normal(mu, logvar).item() == pytest.approx(expected, abs=1e-12)


def test_temos_matches_reference_and_needs_vae():
    cfg = LossConfig(loss="temos", temperature=0.1, kl_weight=0.5)
    mu = np.array([[0.5, -1.0], [0.0, 2.0], [1.0, 1.0]])
    logvar = np.array([[0.1, -0.2], [0.0, 0.3], [-1.0, 0.5]])
    out = build_loss(cfg)(_t(T3), _t(M3), mu=_t(mu), logvar=_t(logvar))
    kl = np.mean(0.5 * (mu ** 2 + np.exp(logvar) - 1.0 - logvar))
    assert out["kl"].item() == pytest.approx(kl, rel=1e-9)
    assert out["total"].item() == pytest.approx(ref_infonce(T3, M3, 0.1) + 0.5 * kl, rel=1e-9)
    with pytest.raises(ConfigError, match="vae"):
        build_loss(cfg)(_t(T3), _t(M3))


def ref_ntxent(t, m, temp, dropped=frozenset()):
    z = np.concatenate([t, m])
    b, n = len(t), 2 * len(t)
    total = 0.0
    for k in range(n):
        pos = k + b if k < b else k - b
        denom = 0.0
        for j in range(n):
            if j == k or (k % b, j % b) in dropped and j != pos:
                continue
            denom += math.exp(float(np.dot(z[k], z[j])) / temp)
        total += -float(np.dot(z[k], z[pos])) / temp + math.log(denom)
    return total / n


def test_ntxent_matches_reference():
    out = nt_xent(_t(T3), _t(M3), 0.5)
    assert out["total"].item() == pytest.approx(ref_ntxent(T3, M3, 0.5), rel=1e-9)
    sent = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0]])
    filt = nt_xent(_t(T3), _t(M3), 0.5, sent_emb=_t(sent), filter_threshold=0.9)
    assert filt["total"].item() == pytest.approx(ref_ntxent(T3, M3, 0.5, dropped={(0, 1), (1, 0)}), rel=1e-9)


@pytest.mark.parametrize("loss", ["infonce", "aligned", "temos", "ntxent"])
def test_gradients_flow_including_learned_temperature(loss):
    torch.manual_seed(0)
    raw_t = torch.randn(5, 8, requires_grad=True)
    raw_m = torch.randn(5, 8, requires_grad=True)
    log_inv_t = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    mu, logvar = torch.randn(5, 8, requires_grad=True), torch.randn(5, 8, requires_grad=True)
    t = torch.nn.functional.normalize(raw_t, dim=-1)
    m = torch.nn.functional.normalize(raw_m, dim=-1)
    cfg = LossConfig(loss=loss, filter_threshold=0.9)
    out = build_loss(cfg)(t, m, temperature=torch.exp(-log_inv_t), sent_emb=torch.randn(5, 6), mu=mu, logvar=logvar)
    out["total"].backward()
    for p in (raw_t, raw_m, log_inv_t):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    if loss == "temos":
        assert mu.grad.abs().sum() > 0 and logvar.grad.abs().sum() > 0


def test_uniformity_gradient_finite_with_duplicate_points():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    uniformity(x).backward()
    assert torch.isfinite(x.grad).all()
