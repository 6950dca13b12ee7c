#!/usr/bin/env python
"""P2: epoch time with frozen + cached text features vs fine-tuning the whole text transformer.

Same config in both arms (the trainer defaults: embedded corpus, TMR motion encoder, batch 64, MiniLM),
only ``text_mode`` differs: ``frozen`` (MiniLM runs once per search, features come from the cache) vs
``finetune`` with ``text_finetune_layers=0`` (all 6 layers train, MiniLM runs forward + backward on every
batch and in evaluation). One epoch of ``train_retrieval(config, reporter=None)`` per run; runs are
interleaved frozen, finetune, finetune, frozen, ... Goal: frozen epochs >= 3x faster.

Also measured: the one-time cost frozen mode pays instead (MiniLM over every caption of the corpus,
into an empty cache), expressed in frozen epochs; and how a fine-tuning step splits between the text
transformer and the motion encoder (forward + backward of each on real batches), which bounds what
freezing the text side can save: at most (text + motion) / motion on the training part.

Two text encoders: the default MiniLM (22 M parameters, 384 wide) and a DistilBERT-base-shaped one
(66 M, 768 wide: the seeds' ``distilbert-base-uncased``). The hub weights cannot be downloaded here, so the
second is ``DistilBertModel(DistilBertConfig())`` with seeded random weights and MiniLM's tokenizer (the same
30,522-token BERT uncased vocabulary) saved to a temp folder: its compute per step is exactly the real
model's, its recall is meaningless (timing only).

    python bench/p2_frozen_text.py
    python bench/p2_frozen_text.py --quick
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (add_common_flags, apply_quick, measured_with_load_guard, out_dir_for, print_rows, row,
                          setup_environment, write_result)
from bench.train_config import add_train_flags, train_flat

NAME = "p2_frozen_text"
GOAL = 3.0

TEXT_MODELS = ("minilm", "distilbert-shaped")


def distilbert_shaped(folder: Path) -> str:
    """A DistilBERT-base architecture (random weights, seed 0) + the packaged BERT-uncased tokenizer."""
    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    from core.text import resolve_text_model

    torch.manual_seed(0)
    DistilBertModel(DistilBertConfig()).save_pretrained(folder)
    AutoTokenizer.from_pretrained(resolve_text_model("all-MiniLM-L6-v2")[0]).save_pretrained(folder)
    return str(folder)


def configs(args, text_model: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    from core.config import TrainConfig

    flat = train_flat(args, {"text_model": text_model} if text_model else None, epochs=1)
    frozen = TrainConfig.from_flat({**flat, "text_mode": "frozen"}).to_flat()
    finetune = TrainConfig.from_flat({**flat, "text_mode": "finetune", "text_finetune_layers": 0}).to_flat()
    return frozen, finetune


def one_epoch(config: dict[str, Any], shared) -> dict[str, float]:
    from core.train import train_retrieval

    t0 = time.perf_counter()
    hist = train_retrieval(config, None, shared=shared)
    wall = time.perf_counter() - t0
    m = hist[0]
    return {"epoch_seconds": m["epoch_seconds"], "samples_per_second": m["samples_per_second"],
            "call_seconds": wall, "num_params": m["num_params"], "recall_at_1": m["recall_at_1"]}


def extraction_seconds(frozen_cfg: dict[str, Any], shared) -> float:
    """MiniLM over every caption into an EMPTY cache: what frozen mode pays once per search."""
    from core.config import TrainConfig
    from core.text import build_frozen_text_features

    text_cfg = TrainConfig.from_flat(frozen_cfg).text
    with tempfile.TemporaryDirectory(prefix="p2-text-cache-") as tmp:
        t0 = time.perf_counter()
        feats = build_frozen_text_features(text_cfg, shared.texts(), Path(tmp), progress=False)
        elapsed = time.perf_counter() - t0
    assert not feats.from_cache
    return elapsed


def step_breakdown(finetune_cfg: dict[str, Any], shared, batches: int = 3) -> dict[str, float]:
    """Seconds per fine-tuning step spent in text (MiniLM) vs motion forward + backward, on real batches.
    Freezing saves the text share of this AND the optimizer work on the text parameters (not timed here)."""
    import time as _time

    from core.config import TrainConfig
    from core.train import _seed_epoch, _Trainer

    cfg = TrainConfig.from_flat(finetune_cfg)
    trainer = _Trainer(cfg, finetune_cfg, shared)
    rng = _seed_epoch(cfg.optim.seed, 1)
    text_s, motion_s, n = 0.0, 0.0, 0
    from core.precision import autocast

    for idx in trainer.builder.epoch_batches(trainer.train_idx, cfg.optim.batch_size, rng):
        batch = trainer.builder.build(idx, rng)
        t0 = _time.perf_counter()
        with autocast(trainer.device, trainer.amp):                                # as in training
            text = trainer.model.encode_text(texts=batch.texts)                    # (B, latent)
        text.sum().backward()
        t1 = _time.perf_counter()
        with autocast(trainer.device, trainer.amp):
            motion = trainer.model.encode_motion(batch.motion, batch.mask)["embedding"]
        motion.sum().backward()
        t2 = _time.perf_counter()
        if n > 0:   # the first batch warms up allocators
            text_s, motion_s = text_s + t1 - t0, motion_s + t2 - t1
        n += 1
        if n > batches:
            break
    trainer.model.zero_grad(set_to_none=True)
    steps = max(n - 1, 1)
    text_s, motion_s = text_s / steps, motion_s / steps
    return {"text_seconds_per_step": text_s, "motion_seconds_per_step": motion_s,
            "text_share": text_s / (text_s + motion_s), "fwd_bwd_speedup_bound": (text_s + motion_s) / motion_s}


def measure_model(args, label: str, text_model: str | None) -> tuple[dict[str, Any], Any, int]:
    """Both arms of one text encoder, interleaved: (details, load record, attempts)."""
    from core.train import prepare_shared

    frozen_cfg, finetune_cfg = configs(args, text_model)
    shared = prepare_shared(frozen_cfg, progress=False)   # frozen features cached before timing

    def run() -> dict[str, list[dict[str, float]]]:
        out: dict[str, list] = {"frozen": [], "finetune": []}
        arms = (("frozen", frozen_cfg), ("finetune", finetune_cfg))
        for r in range(args.reps):
            for arm, cfg in (arms if r % 2 == 0 else arms[::-1]):
                out[arm].append(one_epoch(cfg, shared))
                print(f"{label} {arm}: epoch {out[arm][-1]['epoch_seconds']:.1f} s", flush=True)
        return out

    res, load, attempts = measured_with_load_guard(run, own=args.threads, retries=args.retries,
                                                   max_per_core=args.max_load, wait_s=args.wait_load)
    extract = extraction_seconds(frozen_cfg, shared)
    breakdown = step_breakdown(finetune_cfg, shared, batches=1 if args.quick else 3)

    def median(arm: str, key: str) -> float:
        return statistics.median(r[key] for r in res[arm])

    frozen_s, finetune_s = median("frozen", "epoch_seconds"), median("finetune", "epoch_seconds")
    details = {**res, "frozen_epoch_seconds": frozen_s, "finetune_epoch_seconds": finetune_s,
               "epoch_ratio": finetune_s / frozen_s,
               "train_only_ratio": median("frozen", "samples_per_second") / median("finetune", "samples_per_second"),
               "frozen_extraction_seconds": extract, "extraction_in_frozen_epochs": extract / frozen_s,
               "texts_extracted": len(shared.texts()), "finetune_step_breakdown": breakdown,
               "trainable_params": {"frozen": res["frozen"][0]["num_params"],
                                    "finetune": res["finetune"][0]["num_params"]},
               "config": {k: frozen_cfg[k] for k in ("data", "motion_encoder", "hidden_dim", "num_layers",
                                                     "max_frames", "batch_size", "text_model", "num_threads",
                                                     "amp")}}
    return details, load, attempts


def model_row(label: str, d: dict[str, Any]) -> dict[str, Any]:
    b, ratio = d["finetune_step_breakdown"], d["epoch_ratio"]
    return row(f"P2 epoch time: fine-tuned / frozen+cached text, {label}", f">= {GOAL:g}x faster frozen",
               f"{d['frozen_epoch_seconds']:.1f} s vs {d['finetune_epoch_seconds']:.1f} s per epoch (train only: "
               f"{d['train_only_ratio']:.2f}x); the text encoder is {b['text_share']:.0%} of a fine-tuning step's "
               f"fwd+bwd, and AdamW updates {d['trainable_params']['finetune'] / 1e6:.0f} M parameters instead of "
               f"{d['trainable_params']['frozen'] / 1e6:.1f} M; "
               f"one-time feature extraction {d['frozen_extraction_seconds']:.1f} s", ratio, ratio >= GOAL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_train_flags(ap, set_help="config override for both arms")
    ap.add_argument("--reps", type=int, default=2, help="epochs of each arm, interleaved (default %(default)s)")
    ap.add_argument("--text-models", nargs="+", choices=TEXT_MODELS, default=list(TEXT_MODELS),
                    help="text encoders to compare (default: both)")
    add_common_flags(ap, retries=0)
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.text_models = 1, ["minilm"]
    apply_quick(args)
    setup_environment()
    started = time.perf_counter()
    labels = {"minilm": "MiniLM-L6 (default)", "distilbert-shaped": "DistilBERT-base-shaped (random weights)"}
    details: dict[str, Any] = {}
    rows, loads = [], []
    with tempfile.TemporaryDirectory(prefix="p2-distilbert-") as tmp:
        for name in args.text_models:
            text_model = distilbert_shaped(Path(tmp)) if name == "distilbert-shaped" else None
            d, load, attempts = measure_model(args, labels[name], text_model)
            details[name] = {**d, "attempts": attempts, "load": load.to_json()}
            rows.append(model_row(labels[name], d))
            loads.append(load)
    load = max(loads, key=lambda rec: rec.background)   # the busiest arm's record heads the JSON
    settings = {"text_models": {n: labels[n] for n in args.text_models}, "reps": args.reps,
                "finetune_layers": "all (text_finetune_layers=0)"}
    path = write_result(out_dir_for(args), NAME, title="Frozen + cached text features vs fine-tuned text encoder",
                        quick=args.quick, rows=rows, settings=settings, details=details, load=load,
                        started=started)
    print_rows(rows, load, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
