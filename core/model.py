"""The joint text-motion retrieval model: text side + motion encoder + (learnable) temperature.

    model = RetrievalModel(text_cfg, model_cfg, motion_dim, frozen_text_dim, loss_cfg=loss_cfg)
    t = model.encode_text(text_features=feats)      # frozen mode: feats (B, H) -> (B, latent)
    t = model.encode_text(texts=captions)           # finetune mode: list of B str -> (B, latent)
    out = model.encode_motion(x, mask)              # dict(embedding (B, latent)[, mu, logvar])
    loss = build_loss(loss_cfg)(t, out["embedding"], temperature=model.temperature(), ...)
    optimizer = torch.optim.AdamW(model.param_groups(optim_cfg, text_cfg))

The temperature lives in the model (not the loss) so that a learnable one is saved in the
checkpoint's state_dict and picked up by ``param_groups`` with no extra plumbing.  It is stored
as ``log_inv_temperature = log(1 / T)`` (CLIP's logit scale), a Parameter when
``LossConfig.learn_temperature`` and a buffer otherwise; ``temperature()`` clamps the logit scale
at max(100, 1 / T_init) as CLIP does, so it cannot run off to a degenerate sharp softmax.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .config import ConfigError, LossConfig, ModelConfig, OptimConfig, TextConfig, TrainConfig
from .motion import build_motion_encoder
from .text import TextProjection, TextTransformer

# Parameter names (substrings) that are embeddings-like and get no weight decay despite ndim >= 2.
_NO_DECAY_NAMES = ("tokens", "positions", "position_embedding", "token_type_embeddings", "log_inv_temperature")


class RetrievalModel(nn.Module):
    def __init__(self, text_cfg: TextConfig, model_cfg: ModelConfig, motion_dim: int,
                 frozen_text_dim: int | None = None, *, loss_cfg: LossConfig | None = None,
                 max_len: int = 1024):
        """``frozen_text_dim``: width H of the precomputed features (frozen mode only).
        ``max_len``: the most frames a motion may have (learned positions of 'transformer')."""
        super().__init__()
        self.text_cfg, self.model_cfg = text_cfg, model_cfg
        self.frozen = text_cfg.text_mode == "frozen"
        if self.frozen:
            if not frozen_text_dim:
                raise ConfigError("text_mode='frozen' needs frozen_text_dim (the width of the precomputed "
                                  "text features, FrozenTextFeatures.dim).")
            self.text_transformer = None
            text_dim = int(frozen_text_dim)
        else:
            self.text_transformer = TextTransformer(text_cfg)
            text_dim = self.text_transformer.hidden_dim
        self.text_projection = TextProjection(text_dim, model_cfg.latent_dim, model_cfg.dropout)
        self.motion_encoder = build_motion_encoder(model_cfg, motion_dim, max_len=max_len)

        loss_cfg = loss_cfg or LossConfig()
        init = torch.tensor(math.log(1.0 / loss_cfg.temperature))
        self.max_log_inv_temperature = max(math.log(100.0), float(init))
        if loss_cfg.learn_temperature:
            self.log_inv_temperature = nn.Parameter(init)
        else:
            self.register_buffer("log_inv_temperature", init)

    # ------------------------------------------------------------------ encoding
    def encode_text(self, texts: list[str] | None = None, text_features: torch.Tensor | None = None) -> torch.Tensor:
        """Frozen mode: ``text_features`` (B, H); finetune mode: ``texts`` (B strings). -> (B, latent)."""
        if self.frozen:
            if text_features is None:
                raise ValueError("encode_text: text_mode='frozen' takes text_features (B, H) from "
                                 "FrozenTextFeatures.lookup(captions), not raw texts.")
            features = text_features.to(self.text_projection.net[0].weight.device)
        else:
            if texts is None:
                raise ValueError("encode_text: text_mode='finetune' takes the raw captions (texts=[...]).")
            features = self.text_transformer(texts)  # (B, H)
        return self.text_projection(features)

    def encode_motion(self, x: torch.Tensor, mask: torch.Tensor) -> dict:
        """x (B, T, D), mask (B, T) bool -> dict(embedding (B, latent)[, mu, logvar])."""
        return self.motion_encoder(x, mask)

    def temperature(self) -> torch.Tensor:
        """Scalar tensor T used to divide cosine similarities (differentiable when learned)."""
        return torch.exp(-self.log_inv_temperature.clamp(max=self.max_log_inv_temperature))

    # ------------------------------------------------------------------ optimisation
    def param_groups(self, optim_cfg: OptimConfig, text_cfg: TextConfig | None = None) -> list[dict]:
        """AdamW groups: {decay, no_decay} x {model at optim.lr, text transformer at text_lr}.

        No weight decay on biases, norms (ndim < 2), learned tokens/positions and the temperature.
        Frozen parameters are left out.  Each group carries a ``name`` for logging.
        """
        text_cfg = text_cfg or self.text_cfg
        text_ids = set()
        if self.text_transformer is not None:
            text_ids = {id(p) for p in self.text_transformer.parameters()}
        buckets: dict[str, list] = {"decay": [], "no_decay": [], "text_decay": [], "text_no_decay": []}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            no_decay = p.ndim < 2 or any(k in name for k in _NO_DECAY_NAMES)
            prefix = "text_" if id(p) in text_ids else ""
            buckets[prefix + ("no_decay" if no_decay else "decay")].append(p)
        groups = []
        for key, params in buckets.items():
            if not params:
                continue
            lr = text_cfg.text_lr if key.startswith("text_") else optim_cfg.lr
            wd = 0.0 if key.endswith("no_decay") else optim_cfg.weight_decay
            groups.append({"name": key, "params": params, "lr": lr, "weight_decay": wd})
        return groups


def build_model(cfg: TrainConfig, motion_dim: int, frozen_text_dim: int | None) -> RetrievalModel:
    """The model a training run builds for ``cfg`` (and a checkpoint is loaded into): learned positions for at
    least 1024 frames, more when max_frames asks for them, so a checkpoint serves longer queries than it saw."""
    return RetrievalModel(cfg.text, cfg.model, motion_dim, frozen_text_dim, loss_cfg=cfg.loss,
                          max_len=max(1024, cfg.data.max_frames))
