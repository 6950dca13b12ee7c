"""CLIP text towers as ``text_model``: only the text side of a CLIP checkpoint, pooled where CLIP pools.

``core.text.load_text_transformer`` stays the one loading entry point; it calls ``load_clip_text``
when a checkpoint's config.json says ``model_type`` ``clip`` (a full ``CLIPModel``: the vision tower is
never loaded) or ``clip_text_model`` (a ``CLIPTextModel`` / ``CLIPTextModelWithProjection``).

How CLIP differs from the BERT-style encoders, and what we do about it:

* Causal attention: token t sees tokens <= t only, so the first token (``<|startoftext|>``) has the
  same state for every caption.  CLIP's sentence feature is the final-LayerNorm state at the
  end-of-text (EOT) token; ``ClipTextEncoder`` reports that position with its hidden states and
  ``core.text.pool_hidden_states`` pools there for ``text_pooling`` 'eot' and also for 'cls' (the
  model's sentence token: BERT's [CLS], CLIP's EOT).  'mean' stays a masked mean over real tokens.
* A 77-token context (``max_position_embeddings``): longer ``text_max_tokens`` are clamped to it.
* ``text_projection`` (hidden -> projection_dim, no bias): used when the checkpoint has a trained one
  (see ``ClipTextEncoder``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ConfigError

log = logging.getLogger(__name__)

CLIP_MODEL_TYPES = ("clip", "clip_text_model")


@dataclass(frozen=True)
class ClipRecipe:
    """What, besides the weights, decides a CLIP checkpoint's text features (read from config.json only)."""
    projection: bool   # the pooled state goes through the checkpoint's trained text_projection
    context: int       # max_position_embeddings: the most tokens a caption may have (77 for OpenAI CLIP)


def clip_recipe(config) -> ClipRecipe | None:
    """A ``transformers`` config -> its ``ClipRecipe``, or None when it is not a CLIP (text) model."""
    if getattr(config, "model_type", None) not in CLIP_MODEL_TYPES:
        return None
    text_cfg = config.text_config if config.model_type == "clip" else config
    # A full CLIPModel always has a trained text_projection; a text-tower-only checkpoint has one
    # only when it was saved as CLIPTextModelWithProjection (config.json lists its architecture).
    projection = config.model_type == "clip" or "CLIPTextModelWithProjection" in (config.architectures or [])
    return ClipRecipe(projection=bool(projection), context=int(text_cfg.max_position_embeddings))


@dataclass
class ClipTextOutput:
    last_hidden_state: torch.Tensor   # (B, L, H) after CLIP's final LayerNorm
    eot_index: torch.Tensor           # (B,) int64: position of each caption's end-of-text token


def eot_positions(input_ids: torch.Tensor, attention_mask: torch.Tensor, eos_token_id) -> torch.Tensor:
    """(B, L) ids and mask -> (B,) position of the EOT token, by the rule ``CLIPTextModel.pooler_output`` uses.

    Configs from before transformers PR #24773 carry eos_token_id=2 (wrong): there the EOT is the
    highest id in the original vocabulary (49407), so its position is the argmax of the ids.  Newer
    configs give the real id: the first real (unmasked) occurrence, since CLIP pads with the EOT token too.
    """
    if eos_token_id == 2:
        return input_ids.argmax(dim=-1)
    eos = torch.as_tensor(eos_token_id if isinstance(eos_token_id, (list, tuple)) else [eos_token_id],
                          device=input_ids.device)
    hits = torch.isin(input_ids, eos) & attention_mask.bool()   # (B, L)
    if not bool(hits.any(dim=1).all()):
        # argmax of an all-False row is 0, the start token: the same vector for every caption.
        raise ConfigError(f"text_model: a tokenized caption has no end-of-text token (config eos_token_id="
                          f"{eos_token_id}). Fix: use the tokenizer saved with the CLIP checkpoint, whose EOT "
                          "id must equal the model config's eos_token_id.")
    return hits.int().argmax(dim=-1)


class ClipTextEncoder(nn.Module):
    """CLIP's text transformer (+ its text_projection when the checkpoint has a trained one).

    Parameter names match ``CLIPTextModelWithProjection`` (``text_model.encoder.layers.N...``,
    ``text_projection.weight``), so the top-N block selection of ``core.text`` finds
    ``text_model.encoder.layers`` as it finds BERT's ``encoder.layer``.

    Why the projection is used: CLIP's own text embedding (``CLIPModel.get_text_features``, the space
    CLIP was trained contrastively in and the one MotionCLIP/MDM/T2M-GPT condition on) is
    ``text_projection(EOT state)``, so frozen features are exactly the CLIP features other tools
    compute and publish.  It is a bias-free linear map and our ``TextProjection`` starts with a Linear,
    so it costs no capacity either way (it is square for the OpenAI models).  A checkpoint without a
    trained projection (a plain CLIPTextModel) gives the pooled state: never a randomly initialized
    projection.  In finetune mode the projection, like the final LayerNorm, trains with the top blocks.
    """

    def __init__(self, text_model: nn.Module, projection: nn.Linear | None):
        super().__init__()
        self.text_model = text_model              # transformers CLIPTextModel
        self.text_projection = projection         # Linear(H, projection_dim, bias=False) or None
        self.config = text_model.config           # CLIPTextConfig: num_hidden_layers, hidden_size, ...
        self.context_length = int(self.config.max_position_embeddings)
        self.feature_dim = int(projection.out_features if projection is not None else self.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_) -> ClipTextOutput:
        """(B, L) ids and mask (right padding) -> (B, L, H) states and the (B,) EOT positions."""
        out = self.text_model(input_ids=input_ids, attention_mask=attention_mask)
        return ClipTextOutput(out.last_hidden_state,
                              eot_positions(input_ids, attention_mask, self.config.eos_token_id))

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, H) pooled -> (B, feature_dim): through text_projection when there is one."""
        return pooled if self.text_projection is None else self.text_projection(pooled)


class _QuietTransformers:
    """Silence transformers' load report while the text tower is read out of a full CLIPModel: it would
    list every vision weight as 'unexpected'.  We check the loading info ourselves instead."""

    def __enter__(self):
        from transformers.utils import logging as hf_logging
        self._hf, self._level = hf_logging, hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()

    def __exit__(self, *exc):
        self._hf.set_verbosity(self._level)


def load_clip_text(target: str, config, local_only: bool) -> ClipTextEncoder:
    """The text tower of the CLIP checkpoint ``target`` (config: its transformers config) in fp32."""
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    recipe = clip_recipe(config)
    cls = CLIPTextModelWithProjection if recipe.projection else CLIPTextModel
    with _QuietTransformers():
        model, info = cls.from_pretrained(target, local_files_only=local_only, output_loading_info=True)
    # fp32 whatever the checkpoint stores (transformers 5 keeps a half-precision checkpoint's dtype):
    # frozen features and finetuning (AdamW, autocast) expect fp32 weights; the upcast is exact.
    model = model.float()
    params = {name for name, _ in model.named_parameters()}
    missing = sorted(set(info.get("missing_keys") or ()) & params)
    if missing:   # these would be random: a broken or foreign checkpoint, not a CLIP text tower
        raise ConfigError(f"config key 'text_model' = {target!r}: the CLIP checkpoint lacks text weights "
                          f"{missing[:5]}{' ...' if len(missing) > 5 else ''}. Fix: point text_model at a "
                          "complete CLIPModel or CLIPTextModel(WithProjection) checkpoint.")
    foreign = [k for k in (info.get("unexpected_keys") or ())
               if not k.startswith(("vision_model.", "visual_projection", "logit_scale", "text_projection"))]
    if foreign:
        log.warning("text_model %s: ignored %d unexpected checkpoint weights, e.g. %s", target, len(foreign), foreign[:3])
    if recipe.projection:
        return ClipTextEncoder(model.text_model, model.text_projection)
    # transformers 4 wraps the transformer in CLIPTextModel.text_model; 5 does not: same names either way.
    return ClipTextEncoder(getattr(model, "text_model", model), None)
