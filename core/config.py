"""Training configuration: one frozen dataclass per concern, built once from a flat dict.

A search trial, the standalone trainer and a checkpoint all carry the *flat* dict (that is what
Optuna samples and what W&B/Parquet show as columns).  ``TrainConfig.from_flat`` is the single
boundary where it is validated: unknown keys and bad values raise ``ConfigError`` naming the key,
the value and what is allowed, before any data is loaded or any model is built.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Sequence

from .errors import ConfigError
from .metrics import TIE_RULES
from .registry import LOSSES, MOTION_ENCODERS


POOLINGS = ("mean", "cls", "eot")   # text_pooling; eot: CLIP only (for CLIP, cls = eot: see core.text_clip)
TEXT_MODES = ("frozen", "finetune")
MOTION_POOLINGS = ("auto", "token", "mean", "attention")  # auto = the encoder's own


def _check(cond: bool, key: str, value: Any, allowed: str) -> None:
    if not cond:
        raise ConfigError(f"config key {key!r} = {value!r} is invalid: expected {allowed}.")


@dataclass(frozen=True)
class DataConfig:
    data: str = "synthetic"          # dataset spec: 'synthetic[:k=v,...]' or a path
    format: str | None = None        # loader name; None = auto-detect
    cache_dir: str | None = None     # processed-dataset cache; None = default user cache
    max_frames: int = 200            # crop/cap per motion (frames at the corpus fps)
    eval_split: str = "val"
    bucket_by_length: bool = True    # train batches of similar lengths: less padding, faster epochs

    def validate(self) -> None:
        _check(isinstance(self.data, str) and self.data != "", "data", self.data, "a non-empty spec")
        _check(isinstance(self.max_frames, int) and 8 <= self.max_frames <= 10_000, "max_frames",
               self.max_frames, "an int in [8, 10000]")
        _check(self.eval_split in ("val", "test"), "eval_split", self.eval_split, "'val' or 'test'")


@dataclass(frozen=True)
class AugmentConfig:
    """Train-only augmentation; each knob is a probability or strength a search can sweep."""
    aug_time_mask: float = 0.0   # probability of masking a random 10-20 % span of frames
    aug_noise: float = 0.0       # std of Gaussian noise added to normalized features
    aug_shift: float = 0.0       # max temporal shift as a fraction of the length
    aug_crop: float = 0.0        # probability of a random crop to 60-100 % of the length
    aug_mirror: float = 0.0      # probability of left/right mirroring (motion + caption)

    def validate(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            _check(isinstance(v, (int, float)) and 0.0 <= v <= 1.0, f.name, v, "a number in [0, 1]")


@dataclass(frozen=True)
class TextConfig:
    text_model: str = "all-MiniLM-L6-v2"  # HF name or local path; this name = the packaged copy; CLIP ok
    text_mode: str = "frozen"             # 'frozen' (cached features) or 'finetune'
    text_finetune_layers: int = 0         # finetune: top N transformer layers (0 = all)
    text_lr: float = 2e-5                 # finetune: learning rate of the transformer
    text_pooling: str = "mean"
    text_max_tokens: int = 48             # CLIP: capped at its 77-token context

    def validate(self) -> None:
        _check(self.text_mode in TEXT_MODES, "text_mode", self.text_mode, f"one of {TEXT_MODES}")
        _check(self.text_pooling in POOLINGS, "text_pooling", self.text_pooling, f"one of {POOLINGS}")
        _check(isinstance(self.text_finetune_layers, int) and self.text_finetune_layers >= 0,
               "text_finetune_layers", self.text_finetune_layers, "an int >= 0")
        _check(0 < self.text_lr < 1, "text_lr", self.text_lr, "a number in (0, 1)")
        _check(8 <= self.text_max_tokens <= 512, "text_max_tokens", self.text_max_tokens, "8..512")


@dataclass(frozen=True)
class ModelConfig:
    motion_encoder: str = "tmr"
    latent_dim: int = 256        # joint embedding size d
    hidden_dim: int = 256        # motion encoder width
    num_layers: int = 4
    num_heads: int = 4
    ff_mult: int = 2             # transformer feed-forward width = ff_mult * hidden_dim
    motion_pooling: str = "auto"  # auto: tmr -> token, transformer -> mean, gru -> attention
    dropout: float = 0.1
    vae: bool = False            # VAE head (mu/logvar tokens); required by loss='temos'
    ssm_state: int = 8           # ssm: state size N per channel

    def validate(self) -> None:
        if self.motion_encoder not in MOTION_ENCODERS:
            raise ConfigError(MOTION_ENCODERS.unknown(self.motion_encoder))
        _check(self.motion_pooling in MOTION_POOLINGS, "motion_pooling", self.motion_pooling,
               f"one of {MOTION_POOLINGS}")
        poolings = MOTION_ENCODERS.trait(self.motion_encoder, "poolings")
        if self.motion_pooling not in ("auto", *poolings):
            raise ConfigError(f"config key 'motion_pooling' = {self.motion_pooling!r} is not available for "
                              f"motion_encoder={self.motion_encoder!r}: it pools with {' or '.join(poolings)}.")
        _check(isinstance(self.latent_dim, int) and 8 <= self.latent_dim <= 4096, "latent_dim",
               self.latent_dim, "an int in [8, 4096]")
        _check(isinstance(self.hidden_dim, int) and 8 <= self.hidden_dim <= 4096, "hidden_dim",
               self.hidden_dim, "an int in [8, 4096]")
        _check(isinstance(self.num_layers, int) and 1 <= self.num_layers <= 16, "num_layers",
               self.num_layers, "an int in [1, 16]")
        _check(isinstance(self.num_heads, int) and self.num_heads >= 1
               and self.hidden_dim % self.num_heads == 0, "num_heads", self.num_heads,
               f"a positive divisor of hidden_dim={self.hidden_dim}")
        _check(isinstance(self.ff_mult, int) and 1 <= self.ff_mult <= 8, "ff_mult", self.ff_mult, "1..8")
        _check(isinstance(self.ssm_state, int) and 1 <= self.ssm_state <= 64, "ssm_state", self.ssm_state, "1..64")
        _check(0.0 <= self.dropout < 1.0, "dropout", self.dropout, "a number in [0, 1)")


@dataclass(frozen=True)
class LossConfig:
    loss: str = "infonce"
    temperature: float = 0.07
    learn_temperature: bool = False
    filter_threshold: float = 0.0   # TMR negative filtering; 0 = off, else cos-sim threshold (0, 1]
    mse_weight: float = 0.1         # aligned: alpha * MSE(text, motion) on positives
    uniformity_weight: float = 0.01 # aligned: beta * uniformity (Wang & Isola, t=2)
    kl_weight: float = 1e-5         # temos: lambda_KL
    part_weight: float = 1.0        # motion_encoder='parts': lambda_part on the part loss (0 = global loss only)
    part_temperature: float = 0.1   # motion_encoder='parts': tau' of the soft part contrastive loss

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(LOSSES.unknown(self.loss))
        _check(0.001 <= self.temperature <= 10.0, "temperature", self.temperature, "a number in [0.001, 10]")
        _check(0.0 <= self.filter_threshold <= 1.0, "filter_threshold", self.filter_threshold, "[0, 1]")
        _check(0.001 <= self.part_temperature <= 10.0, "part_temperature", self.part_temperature,
               "a number in [0.001, 10]")
        for key in ("mse_weight", "uniformity_weight", "kl_weight", "part_weight"):
            v = getattr(self, key)
            _check(isinstance(v, (int, float)) and v >= 0, key, v, "a number >= 0")


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 3e-4
    weight_decay: float = 0.01
    batch_size: int = 64
    epochs: int = 10
    warmup_frac: float = 0.05       # fraction of all steps with linear warm-up
    grad_clip: float = 1.0
    patience: int = 0               # early stop after this many epochs without R@1 gain; 0 = off
    seed: int = 0

    def validate(self) -> None:
        _check(0 < self.lr < 1, "lr", self.lr, "a number in (0, 1)")
        _check(0 <= self.weight_decay < 1, "weight_decay", self.weight_decay, "[0, 1)")
        _check(isinstance(self.batch_size, int) and 2 <= self.batch_size <= 8192, "batch_size",
               self.batch_size, "an int in [2, 8192]")
        _check(isinstance(self.epochs, int) and 1 <= self.epochs <= 10_000, "epochs", self.epochs, "1..10000")
        _check(0 <= self.warmup_frac < 1, "warmup_frac", self.warmup_frac, "[0, 1)")
        _check(self.grad_clip > 0, "grad_clip", self.grad_clip, "a number > 0")
        _check(isinstance(self.seed, int) and 0 <= self.seed < 2**32, "seed", self.seed, "an int in [0, 2**32)")
        _check(isinstance(self.patience, int) and self.patience >= 0, "patience", self.patience, "an int >= 0")


@dataclass(frozen=True)
class RuntimeConfig:
    device: str = "auto"            # 'auto' = CUDA if visible, else CPU
    num_threads: int = 0            # CPU threads; 0 = as many CPUs as assigned to this process
    amp: bool = True                # bf16 autocast on CUDA and on CPUs with native bf16 (core/precision.py)
    eval_batches: int = 0           # batches of eval_batch_size candidates; 0 = auto (~16 draws per query, >= 30);
                                    # 30 = the seed's official protocol exactly (core/protocols.py)
    eval_batch_size: int = 32
    eval_equivalence: bool = False  # primary metrics count same-caption / same-label-group motions as correct
    eval_seed: int = 0              # draws the evaluation batches; fixed across training seeds so runs pair up
    eval_ties: str = "expected"     # tie rule of R@k (core/metrics.py): expected | tmr | optimistic | pessimistic

    def validate(self) -> None:
        _check(self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
               "device", self.device, "'auto', 'cpu' or 'cuda[:N]'")
        _check(isinstance(self.num_threads, int) and self.num_threads >= 0, "num_threads",
               self.num_threads, "an int >= 0")
        _check(isinstance(self.eval_batches, int) and self.eval_batches >= 0 and self.eval_batch_size >= 2,
               "eval_batches/eval_batch_size", (self.eval_batches, self.eval_batch_size),
               "eval_batches >= 0 (0 = auto) and eval_batch_size >= 2")
        _check(isinstance(self.eval_seed, int) and self.eval_seed >= 0, "eval_seed", self.eval_seed, "an int >= 0")
        _check(self.eval_ties in TIE_RULES, "eval_ties", self.eval_ties, f"one of {TIE_RULES}")


SECTIONS = {
    "data": DataConfig, "augment": AugmentConfig, "text": TextConfig, "model": ModelConfig,
    "loss": LossConfig, "optim": OptimConfig, "runtime": RuntimeConfig,
}


def _coerce(cls: type, key: str, value: Any, default: Any) -> Any:
    """Coerce values that arrive as strings (``--set k=v``) or numpy scalars to the field's type."""
    if value is None or default is None:
        return value
    target = type(default)
    if target is bool:
        if isinstance(value, str):
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"config key {key!r} = {value!r} is invalid: expected true/false.")
        return bool(value)
    try:
        if target is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if target is float:
            return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config key {key!r} = {value!r} is invalid: expected {target.__name__}.") from None
    return value


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    @staticmethod
    def known_keys() -> dict[str, str]:
        """Flat key -> section name."""
        return {f.name: sec for sec, cls in SECTIONS.items() for f in fields(cls)}

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any]) -> "TrainConfig":
        known = cls.known_keys()
        unknown = [k for k in flat if k not in known]
        if unknown:
            hints = []
            for k in unknown:
                close = difflib.get_close_matches(k, known, n=1)
                hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ConfigError(f"unknown config key(s): {', '.join(hints)}. "
                              f"Known keys: {', '.join(sorted(known))}.")
        parts = {}
        for sec, sec_cls in SECTIONS.items():
            defaults = sec_cls()
            kwargs = {f.name: _coerce(sec_cls, f.name, flat[f.name], getattr(defaults, f.name))
                      for f in fields(sec_cls) if f.name in flat}
            parts[sec] = sec_cls(**kwargs)
        cfg = cls(**parts)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        for sec in SECTIONS:
            section = getattr(self, sec)
            for f in fields(section):   # one rule for every number: inf/nan pass `v >= 0` checks
                value = getattr(section, f.name)
                if isinstance(value, float) and not math.isfinite(value):
                    raise ConfigError(f"config key {f.name!r} = {value!r} is invalid: expected a finite number.")
            section.validate()
        if LOSSES.trait(self.loss.loss, "needs_vae") and not self.model.vae:
            raise ConfigError(f"config key 'loss' = {self.loss.loss!r} needs the VAE head: set vae=true.")

    def to_flat(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for sec in SECTIONS:
            out.update(dataclasses.asdict(getattr(self, sec)))
        return out


def default_flat() -> dict[str, Any]:
    return TrainConfig().to_flat()


# --smoke-test everywhere (core.train, run_search.py, run_ensemble.py): a model small enough that a CPU run of
# every stage takes seconds, on a corpus big enough for two batches and a val split that ranks.
SMOKE_DATA = "synthetic:n=200"
SMOKE_MODEL: dict[str, Any] = {"hidden_dim": 64, "latent_dim": 64, "num_layers": 1, "num_heads": 2, "ff_mult": 2,
                               "max_frames": 64}


def parse_set_pairs(items: Sequence[str], flag: str = "--set") -> dict[str, str]:
    """['key=value', ...] -> {key: value} as strings (``TrainConfig.from_flat`` types and checks the values)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE, e.g. {flag} max_frames=120.")
        out[key.strip()] = value.strip()
    return out
