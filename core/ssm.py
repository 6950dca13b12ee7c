"""``ssm``: a selective state-space (Mamba-2-style) motion encoder in plain PyTorch, for CPU and GPU alike.

Each layer is a forward and a backward selective-SSM block (bidirectional: a retrieval embedding may look at
the whole motion). A block, on (B, T, H) with a (B, T) validity mask:

    x, z = in_proj(LayerNorm(h))                  # (B, T, D) each, D = hidden_dim
    x = SiLU(causal depthwise conv(x)) * mask     # padded frames carry exactly zero input
    delta = softplus(dt_proj(x)); B_t, C_t = bc_proj(x)   # input-dependent step (B, T, D) and (B, T, N) each
    state_t = exp(delta_t * a) * state_{t-1} + delta_t * x_t B_t^T     # (B, D, N), a = -exp(a_log) < 0 per channel
    y_t = C_t . state_t + D * x_t
    h = h + out_proj(y * SiLU(z))

The decay is one scalar per channel (as in Mamba-2's SSD, instead of Mamba-1's per-(channel, state) matrix), so
``selective_scan`` can run chunk by chunk in an attention-like form that never materializes the (B, T, D, N)
state and whose weights never exceed 1: no Python loop over frames, only over chunks (T / CHUNK steps). In
training each block is recomputed in the backward pass (activation checkpointing) to hold one block's chunk
weights at a time.
Because padded frames have zero input, they never change a valid frame's output, in either direction.
Pooling: mean (natural) or attention over valid frames.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .config import ModelConfig
from .motion import AttentionPooling, LatentHead, MotionEncoder, masked_mean

CHUNK = 8    # (B, L, L, D) weights per chunk: total work grows with L, the Python loop with T / L
CONV_WIDTH = 4


def selective_scan(x: torch.Tensor, delta: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
                   chunk: int = CHUNK) -> torch.Tensor:
    """y_t = C_t . state_t with state_t = exp(delta_t a) state_{t-1} + delta_t x_t B_t^T, state_0 = 0.

    x, delta: (B, T, D); a: (D,), negative (one decay rate per channel, as Mamba-2); b, c: (B, T, N)
    -> y (B, T, D), in float32. Inside a chunk (L frames) the output is attention-like,
        y_t = sum_{s<=t} (C_t . B_s) exp(L_t - L_s) delta_s x_s  +  exp(L_t) C_t . state_start,
    with L the cumulative log-decay, so every weight is <= 1 (nothing overflows) and the (B, T, D, N) state is
    never materialized; only the chunk-to-chunk carry is a Python loop (T / chunk steps)."""
    x, delta, a, b, c = (t.float() for t in (x, delta, a, b, c))
    inputs = delta * x                                                   # (B, T, D)
    log_step = delta * a                                                 # (B, T, D), <= 0
    state = x.new_zeros(x.shape[0], x.shape[2], b.shape[2])             # (B, D, N)
    outputs = []
    # One split, not a slice per chunk: a slice's backward writes into a zero tensor of the whole length.
    for log_c, b_c, c_c, u_c in zip(*(t.split(chunk, dim=1) for t in (log_step, b, c, inputs))):
        log_decay = torch.cumsum(log_c, dim=1)                          # (B, L, D)
        steps = log_decay.shape[1]
        future = torch.ones(steps, steps, dtype=torch.bool, device=x.device).triu(1)[None, :, :, None]
        gaps = log_decay.unsqueeze(2) - log_decay.unsqueeze(1)          # (B, L_t, L_s, D): L_t - L_s
        decay = gaps.masked_fill_(future, float("-inf")).exp_()         # in place: no second (B, L, L, D) copy
        scores = torch.einsum("btn,bsn->bts", c_c, b_c)                 # (B, L, L): C_t . B_s
        within = torch.einsum("bts,btsd,bsd->btd", scores, decay, u_c)
        carried = torch.einsum("btn,bdn->btd", c_c, state) * log_decay.exp()
        outputs.append(within + carried)
        to_end = (log_decay[:, -1:] - log_decay).exp() * u_c            # (B, L, D): exp(L_end - L_s) u_s
        state = log_decay[:, -1].exp().unsqueeze(-1) * state + torch.einsum("bsd,bsn->bdn", to_end, b_c)
    return torch.cat(outputs, dim=1)


class SelectiveSSMBlock(nn.Module):
    def __init__(self, hidden: int, state_size: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.in_proj = nn.Linear(hidden, 2 * hidden)
        self.conv = nn.Conv1d(hidden, hidden, CONV_WIDTH, groups=hidden, padding=CONV_WIDTH - 1)
        self.dt_proj = nn.Linear(hidden, hidden)
        self.bc_proj = nn.Linear(hidden, 2 * state_size, bias=False)
        # One decay rate per channel, spread over [1, 16] so channels keep memories of different lengths
        self.a_log = nn.Parameter(torch.linspace(0.0, math.log(16.0), hidden))
        self.skip = nn.Parameter(torch.ones(hidden))
        self.out_proj = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        valid = mask.unsqueeze(-1).to(h.dtype)                        # (B, T, 1)
        x, z = self.in_proj(self.norm(h)).chunk(2, dim=-1)            # (B, T, D) each
        x = x * valid   # padded frames enter the conv as zeros, like the sequence's own edge
        x = self.conv(x.transpose(1, 2))[..., : h.shape[1]].transpose(1, 2)   # causal: drop the right overhang
        x = F.silu(x) * valid
        delta = F.softplus(self.dt_proj(x))
        b, c = self.bc_proj(x).chunk(2, dim=-1)
        y = selective_scan(x, delta, -torch.exp(self.a_log.float()), b, c).to(h.dtype) + x * self.skip
        return (h + self.dropout(self.out_proj(y * F.silu(z)))) * valid


class SSMEncoder(MotionEncoder):
    def __init__(self, model_cfg: ModelConfig, motion_dim: int, max_len: int = 1024):
        super().__init__(model_cfg, motion_dim)   # recurrent in time: any length
        h = model_cfg.hidden_dim
        self.forward_blocks = nn.ModuleList(SelectiveSSMBlock(h, model_cfg.ssm_state, model_cfg.dropout)
                                            for _ in range(model_cfg.num_layers))
        self.backward_blocks = nn.ModuleList(SelectiveSSMBlock(h, model_cfg.ssm_state, model_cfg.dropout)
                                             for _ in range(model_cfg.num_layers))
        self.norm = nn.LayerNorm(h)
        self.attention_pool = AttentionPooling(h) if self.pooling == "attention" else None
        self.head = LatentHead(h, model_cfg.latent_dim, model_cfg.vae)

    def _run(self, block: SelectiveSSMBlock, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.training and torch.is_grad_enabled():   # keep one block's (B, T, D, N) states, not all of them
            return checkpoint(block, h, mask, use_reentrant=False)
        return block(h, mask)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> dict:
        h = self.input(x) * mask.unsqueeze(-1).to(x.dtype)          # (B, T, H)
        flipped_mask = mask.flip(1)
        for forward, backward in zip(self.forward_blocks, self.backward_blocks):
            h = self._run(forward, h, mask)
            h = self._run(backward, h.flip(1), flipped_mask).flip(1)   # right-padding becomes left-padding
        h = self.norm(h)
        pooled = self.attention_pool(h, mask) if self.attention_pool is not None else masked_mean(h, mask)
        return self.head(pooled)
