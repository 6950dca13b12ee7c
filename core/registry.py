"""Name -> implementation registries for the parts a search sweeps: motion encoders and losses.

Each entry names its implementation as ``"module:attribute"`` and carries the traits other code asks about
(an encoder's natural pooling, whether a loss needs the VAE head, which config weights it reads). Reading
names and traits imports nothing, so ``core/config.py`` validates against them and ``spaces/`` samples them
without importing torch; ``load`` imports the implementation when a model is built.

Adding a motion encoder: write its module (a ``MotionEncoder`` subclass taking ``(model_cfg, motion_dim,
max_len)``), add one ``MOTION_ENCODERS.register(...)`` line below, and a test. Config validation, the
``motion_pooling='auto'`` rule and the ``architecture`` search space pick it up from here.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ConfigError


@dataclass(frozen=True)
class Entry:
    name: str
    target: str                                   # "package.module:attribute"
    traits: Mapping[str, Any] = field(default_factory=dict)


class Registry:
    def __init__(self, kind: str, config_key: str) -> None:
        self.kind, self.config_key = kind, config_key
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, target: str, **traits: Any) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({self._entries[name].target} and {target}).")
        if ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: target {target!r} must be 'module:attribute'.")
        self._entries[name] = Entry(name, target, dict(traits))

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def unknown(self, name: Any) -> str:
        """The message for a name that is not registered (with a did-you-mean)."""
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (f"config key {self.config_key!r} = {name!r} is invalid{hint}: expected one of "
                f"{', '.join(self.names())}.")

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(self.unknown(name)) from None

    def trait(self, name: str, key: str, default: Any = None) -> Any:
        return self.entry(name).traits.get(key, default)

    def load(self, name: str) -> Any:
        module, _, attribute = self.entry(name).target.partition(":")
        return getattr(importlib.import_module(module), attribute)


MOTION_ENCODERS = Registry("motion encoder", "motion_encoder")
# poolings: what motion_pooling may be; the first is the natural one ('auto'). 'token' = a learned summary token.
# family: which depth/width/head ranges the architecture space samples for it (spaces/params.py).
# part_embeddings: it also returns out['parts'] (B, 5, latent) for the part loss.
MOTION_ENCODERS.register("tmr", "core.motion:TMREncoder", family="transformer",
                         poolings=("token", "mean", "attention"))
MOTION_ENCODERS.register("transformer", "core.motion:TransformerEncoder", family="transformer",
                         poolings=("mean", "token", "attention"))
MOTION_ENCODERS.register("gru", "core.motion:GRUEncoder", family="recurrent", poolings=("attention", "mean"))
MOTION_ENCODERS.register("ssm", "core.ssm:SSMEncoder", family="ssm", poolings=("mean", "attention"))
# parts: [CLS] + 5 part tokens; also returns per-part embeddings for the part loss (needs a layout with joints).
MOTION_ENCODERS.register("parts", "core.parts:PartsEncoder", family="parts", poolings=("token",),
                         part_embeddings=True)

LOSSES = Registry("loss", "loss")
# weights: the LossConfig fields the loss reads (passed by keyword); needs_vae: it also takes mu/logvar.
LOSSES.register("infonce", "core.losses:info_nce")
LOSSES.register("aligned", "core.losses:aligned_loss", weights=("mse_weight", "uniformity_weight"))
LOSSES.register("temos", "core.losses:temos_loss", weights=("kl_weight",), needs_vae=True)
LOSSES.register("ntxent", "core.losses:nt_xent")
