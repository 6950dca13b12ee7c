"""A part-level motion encoder (SGAR-style): one global embedding plus one embedding per body part.

    out = PartsEncoder(model_cfg, motion_dim)(x, mask)
    out["embedding"]   # (B, latent) unit norm, from the [CLS] token: what retrieval ranks with
    out["parts"]       # (B, 5, latent) unit norm, torso / left arm / right arm / left leg / right leg

The motion's feature columns are split into the 5 parts of ``core.data.parts.part_columns`` (the layout
is recognised by its width D).  Each part is normalised on its own (a LayerNorm over the part's columns,
so a part with many columns, e.g. the torso with the root velocities, does not dominate) and projected
to the model width; a frame token is the sum of its 5 part projections.  The sequence

    [CLS] [torso] [left arm] [right arm] [left leg] [right leg] frame_1 ... frame_T

goes through one pre-LN transformer (the holistic encoder).  A part token starts as a learned part
embedding plus the time-average of that part's projection, so it begins with its own part's content
and gathers the rest by attention; the part loss (``core.losses.part_contrastive``) then pulls it
towards its part text.  Cost per step is about that of ``tmr`` (T + 6 tokens instead of T + 1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .data.parts import PART_NAMES, part_columns_for_dim
from .motion import LatentHead, MotionEncoder, masked_mean, sinusoidal_positions

NUM_PARTS = len(PART_NAMES)


class PartsEncoder(MotionEncoder):
    def __init__(self, model_cfg: ModelConfig, motion_dim: int, max_len: int = 1024):
        super().__init__(model_cfg, motion_dim)   # sinusoidal positions: any length
        h = model_cfg.hidden_dim
        self.input = None   # frames are projected part by part, not by the base class's one Linear
        for p, cols in enumerate(part_columns_for_dim(motion_dim)):
            self.register_buffer(f"cols_{p}", torch.as_tensor(cols, dtype=torch.long), persistent=False)
        widths = [len(c) for c in part_columns_for_dim(motion_dim)]
        self.part_norms = nn.ModuleList(nn.LayerNorm(w) for w in widths)
        self.part_inputs = nn.ModuleList(nn.Linear(w, h) for w in widths)
        self.tokens = nn.Parameter(torch.randn(1, 1 + NUM_PARTS, h) * 0.02)   # (1, 6, H): [CLS] + parts
        layer = nn.TransformerEncoderLayer(h, model_cfg.num_heads, model_cfg.ff_mult * h, model_cfg.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, model_cfg.num_layers, norm=nn.LayerNorm(h),
                                             enable_nested_tensor=False)
        self.head = LatentHead(h, model_cfg.latent_dim, model_cfg.vae)   # VAE: mu/logvar from [CLS]
        self.part_head = nn.Linear(h, model_cfg.latent_dim)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> dict:
        projected = [proj(norm(x.index_select(-1, getattr(self, f"cols_{p}"))))
                     for p, (norm, proj) in enumerate(zip(self.part_norms, self.part_inputs))]  # 5 x (B, T, H)
        frames = torch.stack(projected, dim=2)                                     # (B, T, 5, H)
        frames = frames * mask[:, :, None, None].to(frames.dtype)                  # padding adds nothing
        frame_tokens = frames.sum(2)                                               # (B, T, H)
        part_means = torch.stack([masked_mean(frames[:, :, p], mask) for p in range(NUM_PARTS)], dim=1)
        tokens = self.tokens.expand(len(x), -1, -1)                                # (B, 6, H)
        tokens = torch.cat([tokens[:, :1], tokens[:, 1:] + part_means], dim=1)
        frame_tokens = frame_tokens + sinusoidal_positions(frame_tokens.shape[1], frame_tokens.shape[2],
                                                           x.device, frame_tokens.dtype)
        seq = torch.cat([tokens, frame_tokens], dim=1)                             # (B, 6 + T, H)
        pad = torch.cat([mask.new_zeros(len(x), 1 + NUM_PARTS), ~mask], dim=1)
        h = self.encoder(seq, src_key_padding_mask=pad)
        out = self.head(h[:, 0])
        out["parts"] = F.normalize(self.part_head(h[:, 1:1 + NUM_PARTS]).float(), dim=-1)  # (B, 5, latent)
        return out
