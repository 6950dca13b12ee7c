"""Cross-dataset evaluation (core/crossdata.py; ``python -m core.train --eval-data``): train and select on one
corpus, report the test metrics on another of the same feature layout, normalized with the TRAINING statistics."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core.config import SMOKE_DATA, TrainConfig
from core.crossdata import EvalData, check_same_layout
from core.data import load_corpus
from core.data.batching import BatchBuilder
from core.data.errors import DataError
from core.evaluate import embed_split, evaluate_split
from core.inference import load_checkpoint_model
from core.shared import SharedInputs
from core.text import frozen_cache_key
from core.train_cli import TEST_METRICS_FILE, main as train_main

from ..conftest import SHARED_DATA

BANDAI = SHARED_DATA / "bandai-namco-motiondataset-2.tar.xz"
OTHER = "synthetic:n=300,seed=1"     # another corpus in the smoke data's layout (two people, interx396)
CHANCE = 100 / 32                    # R@1 among 32 candidates of a model that learned nothing


def test_the_flags_are_checked_like_data():
    assert EvalData.parse(OTHER) == EvalData(OTHER, None, "test")
    assert EvalData.from_flags(None) is None and EvalData.parse(OTHER, split="all").split == "all"
    with pytest.raises(DataError, match="--eval-format is given without --eval-data"):
        EvalData.from_flags(None, "bvh")
    with pytest.raises(DataError, match="--eval-data-split 'train' is unknown"):
        EvalData.parse(OTHER, split="train")
    with pytest.raises(DataError, match=r"--eval-data /no/such: dataset path does not exist.*Fix: check --eval-data"):
        EvalData.parse("/no/such")
    with pytest.raises(DataError, match=r"--eval-format 'bvh' does not apply to the synthetic corpus"):
        EvalData.parse("synthetic", "bvh")


def test_another_layout_or_frame_rate_is_refused_naming_both(test_cache_dir):
    two = load_corpus("synthetic:n=40", cache_dir=test_cache_dir)                    # interx396
    one = load_corpus("synthetic:n=40,people=1", cache_dir=test_cache_dir)           # joints22
    with pytest.raises(DataError) as err:
        check_same_layout(two, "synthetic:n=40", one, EvalData("synthetic:n=40,people=1"))
    message = str(err.value)
    assert "'joints22' feature layout (137-d)" in message and "'interx396' (396-d)" in message
    assert "\n" not in message and "Fix: evaluate on a dataset in the training layout" in message
    fast = load_corpus("synthetic:n=40,fps=30", cache_dir=test_cache_dir)
    with pytest.raises(DataError, match=r"at 30 fps but --data synthetic:n=40 is at 20 fps.*Fix: resample"):
        check_same_layout(two, "synthetic:n=40", fast, EvalData("synthetic:n=40,fps=30"))
    check_same_layout(two, "synthetic:n=40", load_corpus(OTHER, cache_dir=test_cache_dir), EvalData(OTHER))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("crossdata") / "run"
    assert train_main(["--smoke-test", "--epochs", "4", "--out", str(out), "--eval-data", OTHER]) == 0
    return out


def test_core_train_reports_the_other_corpus_beside_the_in_domain_test(trained, capsys):
    report = json.loads((trained / TEST_METRICS_FILE).read_text())
    other = load_corpus(OTHER)
    block = report["eval_data"]
    assert report["checkpoint"] == "best" and report["data"] == SMOKE_DATA
    assert {"recall_at_1", "recall_at_1_lo", "recall_at_1_hi", "full_t2m_R1"} <= set(report["test"])
    assert (block["data"], block["format"], block["split"], block["layout"], block["dim"]) == (
        OTHER, None, "test", "interx396", 396)
    assert block["motions"] == len(other.split("test")) and block["content_hash"] == other.content_hash
    assert block["normalization"]["data"] == SMOKE_DATA and block["normalization"]["split"] == "train"
    m = block["metrics"]
    assert m["recall_at_1_lo"] <= m["recall_at_1"] <= m["recall_at_1_hi"]
    assert m["recall_at_1_lo"] > CHANCE, f"a model trained 4 epochs is not above chance on the other corpus: {m}"


def test_the_other_corpus_is_normalized_with_the_training_statistics(trained, test_cache_dir):
    loaded = load_checkpoint_model(trained / "best", "cpu")
    train, other = load_corpus(SMOKE_DATA), load_corpus(OTHER)
    np.testing.assert_allclose(loaded.mean, train.mean_std("train")[0], rtol=1e-6)
    np.testing.assert_allclose(loaded.std, train.mean_std("train")[1], rtol=1e-6)
    own_mean, own_std = other.mean_std("train")
    assert not np.allclose(own_mean, loaded.mean)   # the check below can tell the two apart
    shared = SharedInputs(other, loaded.mean, loaded.std, test_cache_dir, foreign=True)
    frozen = shared.frozen_features(loaded.config.text)
    idx = other.split("test")

    def r1(mean, std):
        builder = BatchBuilder(other, mean, std, loaded.config.data.max_frames, None)
        text, motion, captions = embed_split(loaded.model, builder, idx, frozen, loaded.device,
                                             amp=loaded.config.runtime.amp)
        return evaluate_split(text, motion, captions, [other.groups[i] for i in idx], loaded.config.runtime).metrics

    reported = json.loads((trained / TEST_METRICS_FILE).read_text())["eval_data"]["metrics"]
    assert r1(loaded.mean, loaded.std)["recall_at_1"] == pytest.approx(reported["recall_at_1"])
    assert r1(own_mean, own_std)["full_t2m_R1"] != pytest.approx(reported["full_t2m_R1"])


def test_the_eval_captions_get_cached_frozen_features(trained, test_cache_dir):
    cfg = TrainConfig.from_flat(json.loads((trained / "best" / "config.json").read_text()))
    texts = SharedInputs(load_corpus(OTHER), None, None, test_cache_dir, foreign=True).texts()
    key = frozen_cache_key(cfg.text, texts)
    assert list(test_cache_dir.glob(f"text/**/{key}*.npy")), "the eval captions' features were not cached"


@pytest.mark.skipif(not BANDAI.exists(), reason=f"real data not available: {BANDAI}")
def test_a_bandai_model_is_evaluated_on_a_plain_bvh_folder(tmp_path):
    """Train on the Bandai-Namco archive (format bandai) and evaluate on a BVH folder (format bvh) of clips it
    never saw, with .txt caption sidecars; both load into the joints22 layout."""
    from core.data.loaders import extract_archive
    from core.data.loaders.bandai import label_captions

    extracted = tmp_path / "extracted"
    clips = sorted(next(extract_archive(BANDAI, extracted).glob("*/data")).glob("*.bvh"))
    n_train = 300                                    # max_motions: the first 300 clips in sorted order
    folder = tmp_path / "bvh_folder"
    held_out = clips[n_train::120]
    for clip in held_out:                            # dataset-2_<content>_<style>_<nnn>.bvh
        _, content, style, _ = clip.stem.split("_")
        (folder / content).mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, folder / content / clip.name)
        (folder / content / f"{clip.stem}.txt").write_text("\n".join(reversed(label_captions(content, style))) + "\n")
    out = tmp_path / "run"
    data = f"{BANDAI}:max_motions={n_train},extract_dir={extracted}"
    assert train_main(["--smoke-test", "--data", data, "--format", "bandai", "--epochs", "2", "--out", str(out),
                       "--eval-data", str(folder), "--eval-format", "bvh", "--eval-data-split", "all"]) == 0
    report = json.loads((out / TEST_METRICS_FILE).read_text())
    block = report["eval_data"]
    assert (block["format"], block["split"], block["layout"], block["dim"]) == ("bvh", "all", "joints22", 137)
    assert block["motions"] == len(held_out) and block["normalization"]["data"] == data
    for split in (report["test"], block["metrics"]):
        assert 0 <= split["recall_at_1_lo"] <= split["recall_at_1"] <= split["recall_at_1_hi"] <= 100
