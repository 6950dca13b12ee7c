"""Motion encoders: (B, T, D) frames + (B, T) validity mask -> L2-normalized (B, latent) embedding.

One interface for every encoder (``build_motion_encoder(model_cfg, motion_dim)``)::

    out = encoder(x, mask)      # x: (B, T, D) float, mask: (B, T) bool, True = real frame
    out["embedding"]            # (B, latent), unit norm
    out["mu"], out["logvar"]    # (B, latent) each, only with ModelConfig.vae

Valid frames must be a prefix of each row (padding at the end), and every row needs >= 1 frame.
Padded frames are zeroed at the input and excluded from attention and pooling, so their values can
never change the output.

Encoders (``motion_pooling='auto'`` picks the natural pooling):

* ``tmr``: linear -> learned token(s) prepended -> sinusoidal positions -> pre-LN Transformer
  (GELU) -> the token output.  With the VAE head there are two tokens, mu and logvar (as TMR).
* ``transformer``: linear -> learned positions (``max_len`` frames) -> post-LN Transformer (ReLU)
  -> mean over valid frames.
* ``gru``: linear -> bidirectional GRU on packed sequences -> attention pooling over valid frames.

``token`` / ``mean`` / ``attention`` override the pooling (``token`` only for the transformers).
The VAE head samples ``mu + exp(logvar / 2) * eps`` in training mode and uses ``mu`` in eval mode.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .config import ModelConfig
from .registry import MOTION_ENCODERS


def resolve_pooling(model_cfg: ModelConfig) -> str:
    """'auto' -> the encoder's natural pooling (the first it registers); TrainConfig checked the others."""
    if model_cfg.motion_pooling == "auto":
        return MOTION_ENCODERS.trait(model_cfg.motion_encoder, "poolings")[0]
    return model_cfg.motion_pooling


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H), (B, T) bool -> (B, H) mean over valid frames."""
    w = mask.unsqueeze(-1).to(h.dtype)
    return (h * w).sum(1) / w.sum(1).clamp_min(1.0)


class AttentionPooling(nn.Module):
    """Learned softmax weights over valid frames: (B, T, H) -> (B, H)."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, max(dim // 2, 1)), nn.Tanh(), nn.Linear(max(dim // 2, 1), 1))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf"))  # (B, T)
        weights = torch.softmax(scores.float(), dim=1).to(h.dtype)
        return torch.einsum("bt,bth->bh", weights, h)


class LatentHead(nn.Module):
    """Pooled features -> embedding (and mu/logvar with the VAE head).

    ``forward(mu_features, logvar_features)``: both (B, H); token pooling passes the mu and
    logvar token outputs, the other poolings pass the same pooled vector twice.
    """

    def __init__(self, in_dim: int, latent_dim: int, vae: bool):
        super().__init__()
        self.vae = vae
        self.to_mu = nn.Linear(in_dim, latent_dim)
        self.to_logvar = nn.Linear(in_dim, latent_dim) if vae else None

    def forward(self, mu_features: torch.Tensor, logvar_features: torch.Tensor | None = None) -> dict:
        mu = self.to_mu(mu_features)  # (B, latent)
        if not self.vae:
            return {"embedding": F.normalize(mu.float(), dim=-1)}   # fp32 even under bf16 autocast
        logvar = self.to_logvar(mu_features if logvar_features is None else logvar_features)
        if self.training:
            # clamp only inside exp so a runaway logvar cannot overflow the sample
            z = mu + torch.exp(0.5 * logvar.clamp(-30.0, 20.0)) * torch.randn_like(mu)
        else:
            z = mu
        return {"embedding": F.normalize(z.float(), dim=-1), "mu": mu, "logvar": logvar}


class MotionEncoder(nn.Module):
    """Shared input checks and padding hygiene; subclasses implement ``encode(x, mask)``."""

    def __init__(self, model_cfg: ModelConfig, motion_dim: int):
        super().__init__()
        self.motion_dim = motion_dim
        self.pooling = resolve_pooling(model_cfg)
        self.input = nn.Linear(motion_dim, model_cfg.hidden_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict:
        if x.dim() != 3 or x.shape[-1] != self.motion_dim:
            raise ValueError(f"motion encoder: expected x of shape (B, T, {self.motion_dim}), got "
                             f"{tuple(x.shape)}. Fix: the model was built for motion_dim={self.motion_dim}; "
                             f"use the same feature layout as at build time.")
        if mask.shape != x.shape[:2] or mask.dtype != torch.bool:
            raise ValueError(f"motion encoder: expected a bool mask of shape {tuple(x.shape[:2])}, got "
                             f"{mask.dtype} {tuple(mask.shape)}.")
        if not bool(mask.any(dim=1).all()):
            raise ValueError("motion encoder: a motion in the batch has no valid frame (mask row all False). "
                             "Fix: drop empty motions in the data pipeline.")
        x = torch.where(mask.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))
        return self.encode(x, mask)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError


def sinusoidal_positions(length: int, dim: int, device, dtype) -> torch.Tensor:
    """(length, dim) fixed sin/cos positional encoding (Vaswani et al.)."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return pe.to(dtype)


class _TransformerMotionEncoder(MotionEncoder):
    """Common body of ``tmr`` and ``transformer``: optional tokens, positions, encoder, pooling."""

    norm_first: bool
    activation: str

    def __init__(self, model_cfg: ModelConfig, motion_dim: int):
        super().__init__(model_cfg, motion_dim)
        h = model_cfg.hidden_dim
        self.n_tokens = (2 if model_cfg.vae else 1) if self.pooling == "token" else 0
        if self.n_tokens:
            self.tokens = nn.Parameter(torch.randn(1, self.n_tokens, h) * 0.02)  # (1, n_tok, H)
        layer = nn.TransformerEncoderLayer(h, model_cfg.num_heads, model_cfg.ff_mult * h, model_cfg.dropout,
                                           activation=self.activation, batch_first=True,
                                           norm_first=self.norm_first)
        # Pre-LN stacks need a final LayerNorm; post-LN layers already end with one.
        self.encoder = nn.TransformerEncoder(layer, model_cfg.num_layers,
                                             norm=nn.LayerNorm(h) if self.norm_first else None,
                                             enable_nested_tensor=False)
        self.attention_pool = AttentionPooling(h) if self.pooling == "attention" else None
        self.head = LatentHead(h, model_cfg.latent_dim, model_cfg.vae)

    def add_positions(self, frames: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - abstract

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> dict:
        frames = self.input(x)  # (B, T, H)
        tokens = self.tokens.expand(len(x), -1, -1) if self.n_tokens else None
        seq = self.add_positions(frames, tokens)  # (B, n_tok + T, H)
        pad = ~mask
        if self.n_tokens:
            pad = torch.cat([pad.new_zeros(len(x), self.n_tokens), pad], dim=1)
        h = self.encoder(seq, src_key_padding_mask=pad)
        if self.n_tokens:
            return self.head(h[:, 0], h[:, 1] if self.n_tokens == 2 else None)
        pooled = self.attention_pool(h, mask) if self.attention_pool is not None else masked_mean(h, mask)
        return self.head(pooled)


class TMREncoder(_TransformerMotionEncoder):
    norm_first, activation = True, "gelu"

    def __init__(self, model_cfg: ModelConfig, motion_dim: int, max_len: int = 1024):
        super().__init__(model_cfg, motion_dim)   # sinusoidal positions: any length
    def add_positions(self, frames, tokens):
        seq = frames if tokens is None else torch.cat([tokens, frames], dim=1)
        return seq + sinusoidal_positions(seq.shape[1], seq.shape[2], seq.device, seq.dtype)


class TransformerEncoder(_TransformerMotionEncoder):
    norm_first, activation = False, "relu"

    def __init__(self, model_cfg: ModelConfig, motion_dim: int, max_len: int = 1024):
        super().__init__(model_cfg, motion_dim)
        self.max_len = max_len
        self.positions = nn.Parameter(torch.randn(1, max_len, model_cfg.hidden_dim) * 0.02)  # (1, L, H)

    def add_positions(self, frames, tokens):
        t = frames.shape[1]
        if t > self.max_len:
            raise ValueError(f"transformer motion encoder: {t} frames exceed its learned positions "
                             f"(max_len={self.max_len}). Fix: lower max_frames to <= {self.max_len} or "
                             f"build the model with a larger max_len.")
        seq = frames + self.positions[:, :t]
        return seq if tokens is None else torch.cat([tokens, seq], dim=1)


class GRUEncoder(MotionEncoder):
    def __init__(self, model_cfg: ModelConfig, motion_dim: int, max_len: int = 1024):
        super().__init__(model_cfg, motion_dim)   # recurrent: any length
        h = model_cfg.hidden_dim
        self.gru = nn.GRU(h, h, num_layers=model_cfg.num_layers, batch_first=True, bidirectional=True,
                          dropout=model_cfg.dropout if model_cfg.num_layers > 1 else 0.0)
        self.attention_pool = AttentionPooling(2 * h) if self.pooling == "attention" else None
        self.head = LatentHead(2 * h, model_cfg.latent_dim, model_cfg.vae)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> dict:
        lengths = mask.sum(1)  # (B,)
        prefix = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0) < lengths.unsqueeze(1)
        if not torch.equal(prefix, mask):
            raise ValueError("gru motion encoder: the mask must mark a prefix of each row as valid "
                             "(padding at the end). Fix: right-pad motions in the collate function.")
        packed = pack_padded_sequence(self.input(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=x.shape[1])
        pooled = self.attention_pool(h, mask) if self.attention_pool is not None else masked_mean(h, mask)
        return self.head(pooled)  # h: (B, T, 2H) -> pooled (B, 2H)


def build_motion_encoder(model_cfg: ModelConfig, motion_dim: int, max_len: int = 1024) -> MotionEncoder:
    """The encoder registered as ``model_cfg.motion_encoder`` (core/registry.py); ``max_len`` bounds learned
    positions where an encoder has them."""
    model_cfg.validate()   # the boundary for direct builds (TrainConfig.from_flat already ran it otherwise)
    return MOTION_ENCODERS.load(model_cfg.motion_encoder)(model_cfg, motion_dim, max_len=max_len)
