"""The part model in the pipeline: part texts through the cache and batches, and training end to end."""
from __future__ import annotations

import numpy as np
import pytest

from core.config import AugmentConfig, ConfigError, TrainConfig
from core.data import load_corpus
from core.data.batching import BatchBuilder
from core.data.parts import mirror_parts
from core.shared import load_shared, part_loss_active
from core.train import train_retrieval

from .test_train_e2e import TINY, chance_r1

PARTS = {**TINY, "motion_encoder": "parts", "motion_pooling": "auto", "num_heads": 4}


def test_synthetic_part_texts_survive_the_cache_and_follow_the_mirror(tmp_path):
    first = load_corpus("synthetic:n=40,people=1", cache_dir=tmp_path)
    again = load_corpus("synthetic:n=40,people=1", cache_dir=tmp_path)      # read from the cache
    assert first.has_parts and again.part_texts == first.part_texts and len(first.part_texts) == 40
    assert set(t for p in first.part_texts for t in p) <= set(first.all_texts())   # frozen features cover them
    mean, std = first.mean_std()
    idx = np.arange(8)
    plain = BatchBuilder(first, mean, std, 64).build(idx, np.random.default_rng(0))
    mirrored = BatchBuilder(first, mean, std, 64, AugmentConfig(aug_mirror=1.0)).build(idx, np.random.default_rng(0))
    assert plain.part_texts == [first.part_texts[i] for i in idx]
    assert mirrored.part_texts == [mirror_parts(first.part_texts[i]) for i in idx]


def test_parts_model_learns_with_its_part_loss():
    data = "synthetic:n=300"
    hist = train_retrieval({**PARTS, "data": data, "epochs": 2, "max_frames": 64})
    chance = chance_r1(load_corpus(data), equivalence=False)
    best = max(h["recall_at_1"] for h in hist)
    print(f"\n[parts n=300] R@1 per epoch {[round(h['recall_at_1'], 1) for h in hist]} (chance {chance:.1f}); "
          f"part loss {[round(h['loss_part'], 3) for h in hist]}")
    assert "loss_part" in hist[-1] and hist[-1]["loss_part"] < hist[0]["loss_part"]
    assert best >= 4 * chance


def test_parts_without_part_texts_says_it_trains_the_global_loss_only(capsys):
    shared = load_shared({**PARTS, "data": "synthetic:n=60"})
    cfg = TrainConfig.from_flat({**PARTS, "data": "synthetic:n=60"})
    assert part_loss_active(cfg, shared.corpus)
    shared.corpus.part_texts = None            # e.g. HumanML3D without GAR annotations
    assert not part_loss_active(cfg, shared.corpus, say=True)
    assert "trains with the global loss only (dataset" in capsys.readouterr().err
    hist = train_retrieval({**PARTS, "data": "synthetic:n=60", "epochs": 1}, shared=shared.precompute(PARTS))
    assert "loss_part" not in hist[-1]


def test_parts_on_a_layout_without_joints_is_refused_before_training(tmp_path):
    shared = load_shared({**PARTS, "data": "synthetic:n=60"})
    shared.corpus.layout = type(shared.corpus.layout)("raw", shared.corpus.dim)
    with pytest.raises(ConfigError, match="needs a feature layout with known joints"):
        part_loss_active(TrainConfig.from_flat({**PARTS, "data": "synthetic:n=60"}), shared.corpus)


def _gar_folder(root, n=30):
    """A folder-format dataset whose captions.jsonl holds GAR records (caption + part_descriptions)."""
    import json

    from core.data.parts import PART_NAMES
    from core.data.synthetic.corpus import generate_synthetic

    raw = generate_synthetic(n=n, people=1)
    (root / "motions").mkdir(parents=True)
    lines = []
    for item in raw.items:
        np.save(root / "motions" / f"{item.id}.npy", item.features)
        for caption in item.captions:
            lines.append(json.dumps({"id": item.id, "caption": caption,
                                     "part_descriptions": dict(zip(PART_NAMES, item.parts))}))
    (root / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return raw


def test_gar_records_give_part_texts_to_a_folder_dataset(tmp_path):
    raw = _gar_folder(tmp_path / "gar")
    corpus = load_corpus(str(tmp_path / "gar"), cache_dir=tmp_path / "cache")
    assert corpus.layout.kind == "joints22" and corpus.has_parts      # a 137-wide folder is our joints22 layout
    by_id = {it.id: it.parts for it in raw.items}
    assert all(corpus.part_texts[i] == by_id[m] for i, m in enumerate(corpus.ids))
    cfg = TrainConfig.from_flat({**PARTS, "data": str(tmp_path / "gar")})
    assert part_loss_active(cfg, corpus)


def test_a_bad_gar_record_is_one_error_naming_the_line(tmp_path):
    from core.data.errors import DataError

    _gar_folder(tmp_path / "gar", n=3)
    path = tmp_path / "gar" / "captions.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"torso"', '"head"')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 2: part_descriptions must have exactly the keys"):
        load_corpus(str(tmp_path / "gar"), cache_dir=tmp_path / "cache")
