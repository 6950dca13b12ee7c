"""Contrastive retrieval losses on L2-normalized text/motion embeddings.

Every loss returns a dict ``{"total": scalar, "<term>": scalar, ...}`` of scalar tensors;
backpropagate "total", log the terms (``.item()`` / ``.detach()``).  ``build_loss(loss_cfg)`` gives one callable::

    loss_fn(text_emb (B, d), motion_emb (B, d), *, temperature=None, sent_emb=None, mu=None, logvar=None,
            parts=None)

``temperature`` is a float or a scalar tensor (the model's learnable one, see core/model.py);
None uses ``LossConfig.temperature``.  ``sent_emb`` (B, S) are caption sentence embeddings for
TMR negative filtering (any scale: they are normalized here); ``mu``/``logvar`` (B, d) come from
the motion VAE head and are needed by 'temos'.

Negative filtering (``filter_threshold`` > 0): an off-diagonal pair (i, j) whose captions have
cosine similarity > threshold is treated as a false negative and removed from the softmax
(its logit is set to -inf); the positive (diagonal) pair is never removed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import ConfigError, LossConfig
from .registry import LOSSES


def _full(x: torch.Tensor) -> torch.Tensor:
    """Half-precision (AMP) inputs -> float32; float32/float64 are kept (tests use float64)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def negative_filter_mask(sent_emb: torch.Tensor, threshold: float) -> torch.Tensor:
    """(B, S) sentence embeddings -> (B, B) bool, True = drop this off-diagonal pair."""
    s = F.normalize(_full(sent_emb), dim=-1)
    drop = (s @ s.T) > threshold
    drop.fill_diagonal_(False)
    return drop


def _maybe_filter(sent_emb: torch.Tensor | None, threshold: float, batch: int) -> torch.Tensor | None:
    if sent_emb is None or threshold <= 0:
        return None
    if sent_emb.shape[0] != batch:
        raise ValueError(f"negative filtering: sent_emb has {sent_emb.shape[0]} rows for a batch of {batch}.")
    return negative_filter_mask(sent_emb, threshold)


def info_nce(text_emb: torch.Tensor, motion_emb: torch.Tensor, temperature: float | torch.Tensor,
             sent_emb: torch.Tensor | None = None, filter_threshold: float = 0.0) -> dict:
    """Symmetric CLIP loss: mean of CE(text -> motions) and CE(motion -> texts), logits = cos / T."""
    logits = _full(text_emb @ motion_emb.T) / temperature  # (B, B), row = text, column = motion
    drop = _maybe_filter(sent_emb, filter_threshold, len(logits))
    if drop is not None:
        logits = logits.masked_fill(drop, float("-inf"))
    target = torch.arange(len(logits), device=logits.device)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    return {"total": loss, "infonce": loss}


def uniformity(x: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Wang & Isola: log mean_{i != j} exp(-t ||x_i - x_j||^2) over the B (B - 1) ordered pairs."""
    b = len(x)
    if b < 2:
        return x.new_zeros(())
    x = _full(x)
    # squared distances without a sqrt: cdist/pdist give NaN gradients for coincident points
    norms = x.pow(2).sum(-1)
    sq = (norms.unsqueeze(0) + norms.unsqueeze(1) - 2.0 * (x @ x.T)).clamp_min(0.0)  # (B, B)
    off = ~torch.eye(b, dtype=torch.bool, device=x.device)
    return torch.logsumexp(-t * sq[off], dim=0) - math.log(b * (b - 1))


def aligned_loss(text_emb, motion_emb, temperature, mse_weight: float, uniformity_weight: float,
                 sent_emb=None, filter_threshold: float = 0.0) -> dict:
    """InfoNCE + alpha * mse + beta * uniformity.

    mse = mean over positive pairs of the squared distance ||t_i - m_i||^2 (summed over d, so the
    weight means the same for every latent_dim; = 2 - 2 cos for unit vectors).
    uniformity = mean of ``uniformity(text)`` and ``uniformity(motion)``.
    """
    out = info_nce(text_emb, motion_emb, temperature, sent_emb, filter_threshold)
    mse = (_full(text_emb) - _full(motion_emb)).pow(2).sum(-1).mean()
    unif = 0.5 * (uniformity(text_emb) + uniformity(motion_emb))
    total = out["infonce"] + mse_weight * mse + uniformity_weight * unif
    return {"total": total, "infonce": out["infonce"], "mse": mse, "uniformity": unif}


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), averaged over batch AND dimensions (as TEMOS/TMR do, so
    that the usual kl_weight ~1e-5 keeps its meaning): mean of 0.5 (mu^2 + e^logvar - 1 - logvar)."""
    mu, logvar = _full(mu), _full(logvar)
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()


def temos_loss(text_emb, motion_emb, temperature, kl_weight: float, mu, logvar,
               sent_emb=None, filter_threshold: float = 0.0) -> dict:
    """InfoNCE + lambda_KL * KL(motion posterior || N(0, I))."""
    if mu is None or logvar is None:
        raise ConfigError("loss='temos' needs the motion VAE head (mu/logvar). Fix: set vae=true.")
    out = info_nce(text_emb, motion_emb, temperature, sent_emb, filter_threshold)
    kl = kl_standard_normal(mu, logvar)
    return {"total": out["infonce"] + kl_weight * kl, "infonce": out["infonce"], "kl": kl}


def nt_xent(text_emb, motion_emb, temperature, sent_emb=None, filter_threshold: float = 0.0) -> dict:
    """SimCLR NT-Xent over the 2B views z = [text; motion]: anchor k's positive is its pair
    (k +/- B), its negatives the other 2B - 2 embeddings of both modalities; mean CE over all 2B
    anchors.  Filtering drops every non-positive pair (i, j) of different items whose captions
    are similar, in all four text/motion blocks."""
    b = len(text_emb)
    z = _full(torch.cat([text_emb, motion_emb], dim=0))  # (2B, d)
    logits = (z @ z.T) / temperature  # (2B, 2B)
    drop = torch.eye(2 * b, dtype=torch.bool, device=z.device)  # an anchor is not its own negative
    pair_drop = _maybe_filter(sent_emb, filter_threshold, b)
    if pair_drop is not None:
        drop = drop | pair_drop.repeat(2, 2)  # off-diagonal of each block; positives stay
    logits = logits.masked_fill(drop, float("-inf"))
    idx = torch.arange(b, device=z.device)
    target = torch.cat([idx + b, idx])
    loss = F.cross_entropy(logits, target)
    return {"total": loss, "ntxent": loss}


def part_contrastive(motion_parts: torch.Tensor, text_parts: torch.Tensor, part_sent: torch.Tensor,
                     temperature: float) -> torch.Tensor:
    """SGAR's part loss with GAR-style soft targets, averaged over the P parts.

    motion_parts, text_parts: (B, P, d) unit vectors (part p of motion i, part text p of motion i);
    part_sent: (B, P, S) sentence embeddings of the part texts (any scale).  Many part texts repeat
    ("the left leg stands still"), so a one-hot target would push apart identical descriptions: the
    target of row i is softmax_j(cos(sent_i, sent_j) / tau') instead, which gives identical texts equal
    weight.  Per part: mean of the soft cross-entropies motion -> texts and text -> motions, logits
    m_i . t_j / tau'.  (The sentence similarity is symmetric, so one target matrix serves both directions.)
    """
    m, t = _full(motion_parts).transpose(0, 1), _full(text_parts).transpose(0, 1)   # (P, B, d)
    s = F.normalize(_full(part_sent), dim=-1).transpose(0, 1)                          # (P, B, S)
    target = torch.softmax((s @ s.transpose(1, 2)) / temperature, dim=-1).detach()     # (P, B, B)
    logits = (m @ t.transpose(1, 2)) / temperature                                     # (P, B, B) motion x text
    m2t = -(target * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
    t2m = -(target * torch.log_softmax(logits.transpose(1, 2), dim=-1)).sum(-1).mean()
    return 0.5 * (m2t + t2m)


@dataclass(frozen=True)
class RetrievalLoss:
    """The loss chosen by ``LossConfig``; call with embeddings (see the module docstring)."""
    cfg: LossConfig

    def __call__(self, text_emb: torch.Tensor, motion_emb: torch.Tensor, *,
                 temperature: float | torch.Tensor | None = None, sent_emb: torch.Tensor | None = None,
                 mu: torch.Tensor | None = None, logvar: torch.Tensor | None = None,
                 parts: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> dict:
        """``parts``: (motion parts, part-text embeddings, part-text sentence embeddings) of the motions
        that have part texts (see ``part_contrastive``); adds ``part_weight * part`` to the total."""
        c = self.cfg
        loss = LOSSES.load(c.loss)   # registered in core/registry.py with the weights it reads
        kwargs = {key: getattr(c, key) for key in LOSSES.trait(c.loss, "weights", ())}
        if LOSSES.trait(c.loss, "needs_vae"):
            kwargs.update(mu=mu, logvar=logvar)
        out = loss(text_emb, motion_emb, c.temperature if temperature is None else temperature,
                   sent_emb=sent_emb, filter_threshold=c.filter_threshold, **kwargs)
        if parts is not None and c.part_weight > 0 and len(parts[0]) >= 2:
            out["part"] = part_contrastive(*parts, temperature=c.part_temperature)
            out["total"] = out["total"] + c.part_weight * out["part"]
        return out


def build_loss(loss_cfg: LossConfig) -> RetrievalLoss:
    loss_cfg.validate()
    return RetrievalLoss(loss_cfg)

