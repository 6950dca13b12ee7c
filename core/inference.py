"""Use a trained checkpoint: load the model, encode a split of its corpus, encode free-text queries.

    loaded = load_checkpoint_model("trial/checkpoint_000004")      # model (eval mode), TrainConfig, mean/std
    data = open_data(loaded.config)                                 # corpus + frozen-feature cache (shareable)
    test = encode_split(loaded, data, "test")                       # text (N, d), motion (N, d), ids, captions
    q = encode_queries(loaded, ["a person waves"], data)           # (1, d)
    sim = core.metrics.similarity_matrix(q, test.motion)            # (1, N)

``open_data`` returns a ``SharedInputs``: members trained on the same data spec can share one
(the corpus is loaded once and frozen text features are computed/cached once per text config).
Normalization always uses the checkpoint's own train-split mean/std, as during training.
"""
from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CHECKPOINT_FILE, read_checkpoint
from .config import ConfigError, TextConfig, TrainConfig
from .device import pick_device
from .data import load_corpus
from .data.batching import BatchBuilder
from .data.cache import resolve_cache_dir
from .evaluate import embed_split
from .precision import autocast
from .model import RetrievalModel, build_model
from .shared import SharedInputs
from .text import encode_texts, load_text_transformer

REQUIRED_STATE = ("model", "config", "mean", "std", "motion_dim")


@dataclass
class LoadedModel:
    model: RetrievalModel            # eval mode, on ``device``
    config: TrainConfig
    flat_config: dict
    mean: np.ndarray                 # (D,) train-split normalization the model was trained with
    std: np.ndarray                  # (D,)
    device: torch.device
    directory: Path
    epoch: int
    corpus_hash: str                 # content hash of the corpus it was trained on ("" if unknown)
    motion_dim: int                  # D of the motion features it takes


@dataclass
class SplitEmbeddings:
    split: str
    text: np.ndarray                 # (N, d) float32, first caption of each motion
    motion: np.ndarray               # (N, d) float32
    ids: list[str]                   # (N,) motion ids; text i describes motion i
    captions: list[str]              # (N,) the first caption (the query text of row i)
    groups: list[str | None]         # (N,) label groups (equivalence-aware metrics)


def is_checkpoint_dir(path: str | Path) -> bool:
    return (Path(path) / CHECKPOINT_FILE).is_file()


def load_checkpoint_model(directory: str | Path, device: str | torch.device | None = None) -> LoadedModel:
    """Rebuild the model a core.train checkpoint directory holds (weights, config, normalization)."""
    directory = Path(directory).expanduser().resolve()
    device = pick_device(device)
    state = read_checkpoint(directory, map_location="cpu")
    missing = [k for k in REQUIRED_STATE if k not in state]
    if missing:
        raise ConfigError(f"{directory / CHECKPOINT_FILE}: missing {missing}; it was not written by "
                          "core.train (or by an older version). Fix: point at a checkpoint dir a trial reported.")
    cfg = TrainConfig.from_flat(state["config"])
    frozen_dim = state.get("frozen_text_dim")
    model = build_model(cfg, int(state["motion_dim"]), frozen_dim)   # as the trainer built it
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return LoadedModel(model=model, config=cfg, flat_config=dict(state["config"]),
                       mean=np.asarray(state["mean"], np.float32), std=np.asarray(state["std"], np.float32),
                       device=device, directory=directory, epoch=int(state.get("epoch", 0)),
                       corpus_hash=str(state.get("corpus_hash") or ""), motion_dim=int(state["motion_dim"]))


def data_key(cfg: TrainConfig) -> tuple:
    """Members with equal keys can share one ``open_data`` result."""
    return (cfg.data.data, cfg.data.format, cfg.data.cache_dir)


def open_data(cfg: TrainConfig, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> SharedInputs:
    """The corpus of a config (from the dataset cache when possible) + a frozen-feature cache.

    ``mean``/``std``: a checkpoint's normalization, which saves a pass over the train split (encoding
    always uses the checkpoint's own; these only fill ``SharedInputs``)."""
    cache_dir = resolve_cache_dir(cfg.data.cache_dir)
    corpus = load_corpus(cfg.data.data, cfg.data.format, cache_dir)
    if mean is None or std is None:
        mean, std = corpus.mean_std("train")
    return SharedInputs(corpus, mean, std, cache_dir)


def _check_corpus(loaded: LoadedModel, data: SharedInputs) -> None:
    corpus = data.corpus
    if loaded.motion_dim != corpus.dim:
        name = corpus.name if data.foreign else loaded.config.data.data
        raise ConfigError(f"{loaded.directory}: the model was trained on {loaded.motion_dim}-dim motion features, "
                          f"but dataset {name!r} has {corpus.dim}. Fix: use the dataset the checkpoint was trained "
                          "on, or one with its feature layout.")
    if data.foreign:   # another dataset on purpose (cross-dataset evaluation): its layout was checked on loading
        return
    if loaded.corpus_hash and corpus.content_hash and loaded.corpus_hash != corpus.content_hash:
        # No directory in the message: members of one search share it, so it is shown once, not per member.
        warnings.warn(f"checkpoint(s) trained on corpus {loaded.corpus_hash}, but {loaded.config.data.data!r} now "
                      f"loads as {corpus.content_hash} (the data or the data code changed since training); "
                      "metrics may not match the ones the trials reported.", stacklevel=3)


def frozen_features_for(loaded: LoadedModel, data: SharedInputs):
    return data.frozen_features(loaded.config.text) if loaded.config.text.text_mode == "frozen" else None


def encode_split(loaded: LoadedModel, data: SharedInputs, split: str, batch_size: int = 128) -> SplitEmbeddings:
    """Eval-mode embeddings of every motion of ``split`` (or ``all``: every motion) and its first caption (as during
    validation), normalized with the checkpoint's own train-split mean/std whatever corpus ``data`` holds."""
    _check_corpus(loaded, data)
    corpus = data.corpus
    indices = corpus.scored_split(split)   # DataError below 2 motions: nothing to rank
    builder = BatchBuilder(corpus, loaded.mean, loaded.std, loaded.config.data.max_frames, None)
    text, motion, captions = embed_split(loaded.model, builder, indices, frozen_features_for(loaded, data),
                                         loaded.device, batch_size=batch_size, amp=loaded.config.runtime.amp)
    return SplitEmbeddings(split=split, text=text, motion=motion, ids=[corpus.ids[i] for i in indices],
                           captions=list(captions), groups=[corpus.groups[i] for i in indices])


def encode_motions(loaded: LoadedModel, data: SharedInputs, split: str, batch_size: int = 128) -> np.ndarray:
    """(N, d) float32 eval-mode embeddings of the motions of ``split`` (``all``: every motion), in the corpus's
    order of that split, normalized as ``encode_split``; no caption is encoded (a library to index)."""
    _check_corpus(loaded, data)
    corpus = data.corpus
    indices = corpus.scored_split(split)
    builder = BatchBuilder(corpus, loaded.mean, loaded.std, loaded.config.data.max_frames, None)
    _, motion, _ = embed_split(loaded.model, builder, indices, None, loaded.device, batch_size=batch_size,
                               amp=loaded.config.runtime.amp, with_text=False)
    return motion


def stored_split_embeddings(loaded: LoadedModel, data: SharedInputs, split: str) -> SplitEmbeddings | None:
    """The embeddings a checkpoint stored of its own evaluation split (embeddings.npz, computed by this model in
    eval mode at that epoch), when ``split`` is that split of this corpus: saves encoding it again.  None
    when the checkpoint has none, evaluated another split, or the split's motions differ."""
    path = loaded.directory / "embeddings.npz"
    if data.foreign or loaded.config.data.eval_split != split or not path.is_file():
        return None
    corpus = data.corpus
    indices = corpus.split(split)
    ids = [corpus.ids[i] for i in indices]
    try:
        with np.load(path, allow_pickle=False) as stored:   # never unpickle
            if [str(x) for x in stored["ids"]] != ids:
                return None
            text, motion = np.asarray(stored["text"], np.float32), np.asarray(stored["motion"], np.float32)
            captions = [str(x) for x in stored["captions"]]
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile):   # cut off or damaged: encode again
        return None
    return SplitEmbeddings(split=split, text=text, motion=motion, ids=ids, captions=captions,
                           groups=[corpus.groups[i] for i in indices])


@lru_cache(maxsize=2)
def _text_transformer(name: str):
    # Several members usually share one text model: load it once per process for new queries.
    return load_text_transformer(name)


def _pooled_features(text_cfg: TextConfig, texts: list[str]) -> torch.Tensor:
    """(Q, H) pooled transformer features of texts the frozen cache does not hold."""
    return _pooled(text_cfg.text_model, text_cfg.text_pooling, text_cfg.text_max_tokens, tuple(texts))


@lru_cache(maxsize=8)
def _pooled(text_model: str, pooling: str, max_tokens: int, texts: tuple[str, ...]) -> torch.Tensor:
    # The members of an ensemble usually share one frozen text model: one transformer pass serves all of them
    # (read only: encode_text projects it into a new tensor).
    model, tokenizer = _text_transformer(text_model)
    return torch.from_numpy(encode_texts(model, tokenizer, list(texts), pooling, max_tokens, progress=False))


@torch.no_grad()
def encode_queries(loaded: LoadedModel, texts: list[str], data: SharedInputs | None = None) -> np.ndarray:
    """Free-text queries -> (Q, d) float32 text embeddings (any text: not only corpus captions)."""
    texts = [str(t) for t in texts]
    if not texts or any(not t.strip() for t in texts):
        raise ValueError("encode_queries: every query must be a non-empty text.")
    inputs: dict = {"texts": texts}
    if loaded.config.text.text_mode == "frozen":
        features = None
        if data is not None:  # corpus captions: the cached features, exactly as in training
            try:
                features = frozen_features_for(loaded, data).lookup(texts)
            except KeyError:
                features = None
        if features is None:
            features = _pooled_features(loaded.config.text, texts)
        inputs = {"text_features": features.to(loaded.device)}
    with autocast(loaded.device, loaded.config.runtime.amp):   # as encode_split: the same embeddings
        out = loaded.model.encode_text(**inputs)
    return out.float().cpu().numpy()
