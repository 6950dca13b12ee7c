"""CLIP as text_model, offline: a tiny random CLIP (text tower and full CLIPModel) saved in a temp folder.

Checked: the text tower (+ projection) is what loads; EOT pooling equals a by-hand reference and
CLIP's own get_text_features; padding changes nothing; the 77-token cap; the frozen cache and its
key; top-k finetuning finds CLIP's layers; a clear error for an uncached hub name; a short training
run learns.
"""
import json
import logging
import string
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import core.text as text_mod
from core.config import ConfigError, TextConfig
from core.data.build import build_corpus
from core.data.types import FeatureLayout, MotionItem, RawCorpus
from core.metrics import equivalence_matrix
from core.protocols import ProtocolSettings, evaluate_protocols
from core.shared import SharedInputs
from core.text import (TextTransformer, build_frozen_text_features, encode_texts, frozen_cache_key,
                       load_text_transformer)
from core.text_clip import ClipTextEncoder, eot_positions
from core.train import train_retrieval

TEXTS = ["a person walks forward", "someone jumps", "a man waves his right hand above his head, slowly."]
HIDDEN, PROJ, LAYERS = 32, 16, 2


def write_tokenizer(folder: Path):
    """A character-level CLIP BPE vocabulary: every printable ASCII char alone and word-final (``</w>``)."""
    from transformers import CLIPTokenizer
    chars = string.ascii_lowercase + string.digits + string.punctuation
    pieces = ["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(pieces)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")   # no merges: one token per character
    return CLIPTokenizer.from_pretrained(str(folder)), len(pieces)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Folders ``text`` (a CLIPTextModel, no projection) and ``full`` (a CLIPModel with a vision tower)."""
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModel

    root = tmp_path_factory.mktemp("clip")
    tokenizer, vocab_size = write_tokenizer(root / "tok")
    # eos_token_id = the tokenizer's <|endoftext|> (1): the post-#24773 rule, first EOT position.
    text_cfg = CLIPTextConfig(vocab_size=vocab_size, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=LAYERS,
                              num_attention_heads=2, max_position_embeddings=77, projection_dim=PROJ,
                              bos_token_id=0, eos_token_id=1, pad_token_id=1)
    torch.manual_seed(0)
    tower = CLIPTextModel(text_cfg).eval()
    full = CLIPModel(CLIPConfig(text_config=text_cfg.to_dict(), projection_dim=PROJ,
                                vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                   num_attention_heads=2, image_size=32, patch_size=16))).eval()
    for name, model in (("text", tower), ("full", full)):
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    return SimpleNamespace(text=str(root / "text"), full=str(root / "full"), tower=tower, model=full,
                           tokenizer=tokenizer)


def by_hand(tower, tokenizer, text: str, projection=None) -> np.ndarray:
    """Reference: one caption alone (no padding), the state at the first <|endoftext|>, then the projection."""
    ids = tokenizer([text])["input_ids"][0]
    eot = ids.index(tokenizer.convert_tokens_to_ids("<|endoftext|>"))
    with torch.no_grad():
        hidden = tower(input_ids=torch.tensor([ids])).last_hidden_state[0]   # (L, H)
        pooled = hidden[eot] if projection is None else projection(hidden[eot])
    return pooled.numpy()


def test_loads_only_the_text_tower(clip):
    model, tokenizer = load_text_transformer(clip.full)
    assert isinstance(model, ClipTextEncoder) and model.feature_dim == PROJ and model.context_length == 77
    names = [n for n, _ in model.named_parameters()]
    assert not any("vision" in n or "visual" in n or "logit_scale" in n for n in names)
    assert "text_projection.weight" in names and any(n.startswith("text_model.encoder.layers.1.") for n in names)
    ref = clip.model.state_dict()
    for name, p in model.state_dict().items():   # every weight is the checkpoint's, none re-initialized
        torch.testing.assert_close(p, ref[name], rtol=0, atol=0)
    assert tokenizer.eos_token == "<|endoftext|>"

    plain, _ = load_text_transformer(clip.text)   # CLIPTextModel: no trained projection, none invented
    assert plain.text_projection is None and plain.feature_dim == HIDDEN
    assert [n for n, _ in plain.named_parameters()] == [n for n in names if n != "text_projection.weight"]


def test_eot_pooling_is_clips_own_feature(clip):
    full, tok = load_text_transformer(clip.full)
    plain, _ = load_text_transformer(clip.text)
    feats = encode_texts(full, tok, TEXTS, "eot", 48, progress=False)      # (3, PROJ)
    assert feats.shape == (3, PROJ) and feats.dtype == np.float32
    np.testing.assert_array_equal(encode_texts(full, tok, TEXTS, "cls", 48, progress=False), feats)  # cls = eot
    plain_feats = encode_texts(plain, tok, TEXTS, "eot", 48, progress=False)
    with torch.no_grad():
        batch = tok(TEXTS, padding=True, return_tensors="pt")
        own = clip.model.get_text_features(**batch)
        own = getattr(own, "pooler_output", own)   # transformers 5 returns an output object
        pooler = clip.tower(**batch).pooler_output
    np.testing.assert_allclose(feats, own.numpy(), atol=1e-5)             # = CLIPModel.get_text_features
    np.testing.assert_allclose(plain_feats, pooler.numpy(), atol=1e-5)    # = CLIPTextModel.pooler_output
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(feats[i], by_hand(clip.model.text_model, tok, text, clip.model.text_projection),
                                   atol=1e-5)
        np.testing.assert_allclose(plain_feats[i], by_hand(clip.tower, tok, text), atol=1e-5)
    mean = encode_texts(plain, tok, TEXTS, "mean", 48, progress=False)
    with torch.no_grad():
        hidden = clip.tower(**tok([TEXTS[1]], return_tensors="pt")).last_hidden_state[0]   # (L, H)
    np.testing.assert_allclose(mean[1], hidden.mean(0).numpy(), atol=1e-5)


def test_padding_changes_nothing(clip):
    model, tok = load_text_transformer(clip.full)
    short, long = "someone jumps", "a person walks forward, then turns around and runs back to the start"
    assert len(tok([short, long], padding=True)["attention_mask"][0]) > sum(tok([short])["attention_mask"][0])
    for pooling in ("eot", "mean"):
        alone = encode_texts(model, tok, [short], pooling, 77, progress=False)[0]
        padded = encode_texts(model, tok, [short, long], pooling, 77, batch_size=2, progress=False)[0]
        np.testing.assert_allclose(padded, alone, atol=1e-5, err_msg=pooling)


def test_eot_position_rules():
    ids = torch.tensor([[5, 7, 9, 3, 3], [5, 9, 3, 3, 3]])   # 9 = EOT, 3 = padding
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])
    assert eot_positions(ids, mask, 9).tolist() == [2, 1]
    assert eot_positions(ids, mask, [9, 42]).tolist() == [2, 1]
    assert eot_positions(ids, mask, 2).tolist() == [2, 1]   # legacy configs: argmax (EOT = the highest id)
    pad_is_eot = torch.tensor([[5, 9, 9, 9]])
    assert eot_positions(pad_is_eot, torch.tensor([[1, 1, 0, 0]]), 9).tolist() == [1]
    with pytest.raises(ConfigError, match="no end-of-text token"):
        eot_positions(ids, mask, 8)


def test_max_tokens_capped_at_the_77_token_context(clip, caplog):
    model, tok = load_text_transformer(clip.text)
    long = " ".join(["walk"] * 40)   # 200 character tokens
    capped = encode_texts(model, tok, [long], "eot", 512, progress=False)
    np.testing.assert_array_equal(capped, encode_texts(model, tok, [long], "eot", 77, progress=False))
    with caplog.at_level(logging.WARNING, logger="core.text"):
        enc = TextTransformer(TextConfig(text_model=clip.text, text_mode="finetune", text_max_tokens=200))
    assert enc.max_tokens == 77 and "77-token context" in caplog.text
    assert enc([long]).shape == (1, HIDDEN)


def test_frozen_features_cached_with_their_own_key(clip, tmp_path, monkeypatch):
    cfg = TextConfig(text_model=clip.full, text_pooling="eot")
    first = build_frozen_text_features(cfg, TEXTS, tmp_path, progress=False)
    assert not first.from_cache and first.dim == PROJ
    monkeypatch.setattr(text_mod, "load_text_transformer", lambda name: pytest.fail("cache hit expected"))
    second = build_frozen_text_features(cfg, list(reversed(TEXTS)), tmp_path, progress=False)
    assert second.from_cache and second.key == first.key
    np.testing.assert_array_equal(second.features, first.features)

    key = lambda **kw: frozen_cache_key(TextConfig(**{"text_model": clip.full, **kw}), TEXTS)   # noqa: E731
    assert key(text_pooling="eot") == first.key != frozen_cache_key(TextConfig(), TEXTS)   # not MiniLM's
    assert key(text_pooling="cls") == first.key          # the same features for CLIP
    assert key(text_pooling="mean") != first.key
    assert key(text_max_tokens=100) == key(text_max_tokens=512) != key(text_max_tokens=48)   # capped at 77
    # Whether the projection applies is part of the key (full CLIPModel: yes; bare text tower: no).
    assert text_mod._feature_recipe(cfg, clip.full)[-1] == {"clip_projection": True}
    assert text_mod._feature_recipe(cfg, clip.text)[-1] == {"clip_projection": False}
    with pytest.raises(ConfigError, match="'eot'.*not a CLIP model.*Fix"):
        frozen_cache_key(TextConfig(text_pooling="eot"), TEXTS)   # the packaged MiniLM


def test_finetune_trains_only_the_top_clip_layers(clip):
    enc = TextTransformer(TextConfig(text_model=clip.full, text_mode="finetune", text_finetune_layers=1))
    assert enc.hidden_dim == PROJ
    trainable = {n for n, p in enc.model.named_parameters() if p.requires_grad}
    top = ("text_model.encoder.layers.1.", "text_model.final_layer_norm.", "text_projection.")
    assert trainable == {n for n, _ in enc.model.named_parameters() if n.startswith(top)}
    m = enc.model
    expected = sum(p.numel() for mod in (m.text_model.encoder.layers[1], m.text_model.final_layer_norm,
                                         m.text_projection) for p in mod.parameters())
    assert sum(p.numel() for p in m.parameters() if p.requires_grad) == expected
    enc(TEXTS).sum().backward()   # (3, PROJ)
    for n, p in m.named_parameters():
        assert (p.grad is not None) == (n in trainable), n

    everything = TextTransformer(TextConfig(text_model=clip.full, text_mode="finetune", text_finetune_layers=0))
    assert all(p.requires_grad for p in everything.model.parameters())
    with pytest.raises(ConfigError, match=f"exceeds the {LAYERS} layers"):
        TextTransformer(TextConfig(text_model=clip.full, text_mode="finetune", text_finetune_layers=LAYERS + 1))


def test_uncached_clip_hub_name_gives_the_clear_offline_error(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub_constants
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))   # an empty cache, whatever this machine has cached
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))   # read at import time
    with pytest.raises(ConfigError, match="text_model.*openai/clip-vit-base-patch32.*Fix: cache it.*local folder"):
        load_text_transformer("openai/clip-vit-base-patch32")


ACTIONS = ["walks", "runs", "jumps", "waves", "kicks", "sits down", "spins", "claps"]


def learnable_shared(cache_dir: Path, n: int = 160) -> SharedInputs:
    """8 captions, each motion a noisy class pattern: learnable in a few epochs, even from random text features."""
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        k = i % 8
        t = np.arange(int(rng.integers(20, 40)))[:, None]
        x = 2.0 * np.eye(8)[k] + 0.2 * np.sin(0.3 * t + np.arange(8)) + rng.normal(0, 0.3, (len(t), 8))
        items.append(MotionItem(f"t{i:04d}", x.astype(np.float32), [f"a person {ACTIONS[k]}"]))
    corpus = build_corpus(RawCorpus("toy", items, 20.0, FeatureLayout("raw", 8)))
    mean, std = corpus.mean_std()
    return SharedInputs(corpus, mean, std, cache_dir)


def test_training_with_clip_learns(clip, tmp_path):
    shared = learnable_shared(tmp_path)
    run = {"hidden_dim": 32, "num_layers": 1, "num_heads": 2, "latent_dim": 32, "batch_size": 16, "num_threads": 1,
           "max_frames": 40, "eval_batches": 5, "eval_batch_size": 16, "eval_equivalence": True, "lr": 1e-3,
           "epochs": 4, "text_model": clip.full, "text_pooling": "eot"}
    idx = shared.corpus.split("val")
    eq = equivalence_matrix([shared.corpus.captions[i][0] for i in idx], [shared.corpus.groups[i] for i in idx])
    rng = np.random.default_rng(0)
    chance = np.mean([evaluate_protocols([rng.normal(size=(len(idx), len(idx)))], equivalence=eq, intervals=False,
                                         settings=ProtocolSettings(5, 16), official_only=True)
                      .metrics["recall_at_1"] for _ in range(20)])
    for extra in ({}, {"text_mode": "finetune", "text_finetune_layers": 1}):
        hist = train_retrieval({**run, **extra}, shared=shared)
        best = max(h["recall_at_1"] for h in hist)
        assert best >= max(2 * chance, 60), (extra, [h["recall_at_1"] for h in hist], chance)
    assert [f.dim for f in shared.text_features.values()] == [PROJ]   # the frozen run's CLIP features
