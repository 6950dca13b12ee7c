"""``ssm``: a selective state-space (Mamba-style) motion encoder in plain PyTorch, for CPU and GPU alike.

Each layer is a forward and a backward selective-SSM block (bidirectional: a retrieval embedding may look at
the whole motion). A block, on (B, T, H) with a (B, T) validity mask:

    x, z = in_proj(LayerNorm(h))                  # (B, T, D) each, D = hidden_dim
    x = SiLU(causal depthwise conv(x)) * mask     # padded frames carry exactly zero input
    delta = softplus(dt_proj(x)); B_t, C_t = bc_proj(x)   # input-dependent step (B, T, D) and (B, T, N) each
    state_t = exp(delta_t * A) * state_{t-1} + delta_t * B_t * x_t      # (B, D, N), A = -exp(A_log) < 0
    y_t = C_t . state_t + D * x_t
    h = h + out_proj(y * SiLU(z))

``selective_scan`` computes the recurrence in chunks of ``CHUNK`` frames: inside a chunk every output is a
weighted sum of the chunk's inputs with weights exp(L_t - L_s) <= 1 (L the cumulative log-decay), so nothing
overflows and no Python loop runs over frames; only the chunk-to-chunk carry is a loop (T / CHUNK steps).
Because padded frames have zero input, they never change a valid frame's output, in either direction.
Pooling: mean (natural) or attention over valid frames.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .motion import AttentionPooling, LatentHead, MotionEncoder, masked_mean

CHUNK = 16
CONV_WIDTH = 4


def selective_scan(x: torch.Tensor, delta: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor,
                   chunk: int = CHUNK) -> torch.Tensor:
    """y_t = C_t . state_t with state_t = exp(delta_t A) state_{t-1} + delta_t B_t x_t, state_0 = 0.

    x, delta: (B, T, D); a: (D, N), negative; b, c: (B, T, N) -> y (B, T, D). Computed in float32."""
    x, delta, a, b, c = (t.float() for t in (x, delta, a, b, c))
    batch, length, dim = x.shape
    state = x.new_zeros(batch, dim, a.shape[1])                      # (B, D, N)
    outputs = []
    for start in range(0, length, chunk):
        d_c, x_c = delta[:, start:start + chunk], x[:, start:start + chunk]   # (B, L, D)
        b_c, c_c = b[:, start:start + chunk], c[:, start:start + chunk]       # (B, L, N)
        steps = d_c.shape[1]
        log_decay = torch.cumsum(d_c.unsqueeze(-1) * a, dim=1)      # (B, L, D, N), L_t <= 0, decreasing
        inputs = (d_c * x_c).unsqueeze(-1) * b_c.unsqueeze(2)        # (B, L, D, N): delta_s B_s x_s
        # weights[t, s] = exp(L_t - L_s) for s <= t (each <= 1), else 0
        diff = log_decay.unsqueeze(2) - log_decay.unsqueeze(1)       # (B, L_t, L_s, D, N)
        causal = torch.ones(steps, steps, dtype=torch.bool, device=x.device).tril()
        weights = torch.where(causal[None, :, :, None, None], diff, diff.new_tensor(float("-inf"))).exp()
        states = torch.einsum("btsdn,bsdn->btdn", weights, inputs) + log_decay.exp() * state.unsqueeze(1)
        outputs.append(torch.einsum("btdn,btn->btd", states, c_c))
        state = states[:, -1]
    return torch.cat(outputs, dim=1)


class SelectiveSSMBlock(nn.Module):
    def __init__(self, hidden: int, state_size: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.in_proj = nn.Linear(hidden, 2 * hidden)
        self.conv = nn.Conv1d(hidden, hidden, CONV_WIDTH, groups=hidden, padding=CONV_WIDTH - 1)
        self.dt_proj = nn.Linear(hidden, hidden)
        self.bc_proj = nn.Linear(hidden, 2 * state_size, bias=False)
        # S4D-real initialisation: A = -(1..N) per channel, so channels keep memories of different lengths
        self.a_log = nn.Parameter(torch.log(torch.arange(1, state_size + 1, dtype=torch.float32)).repeat(hidden, 1))
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

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> dict:
        h = self.input(x) * mask.unsqueeze(-1).to(x.dtype)          # (B, T, H)
        flipped_mask = mask.flip(1)
        for forward, backward in zip(self.forward_blocks, self.backward_blocks):
            h = forward(h, mask)
            h = backward(h.flip(1), flipped_mask).flip(1)   # right-padding becomes left-padding: zero input
        h = self.norm(h)
        pooled = self.attention_pool(h, mask) if self.attention_pool is not None else masked_mean(h, mask)
        return self.head(pooled)
