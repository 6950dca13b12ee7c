#!/usr/bin/env python
"""How decisive is the default evaluation? Paired 95 % CI half-widths of test R@1 differences.

Trains three reasonable models on the embedded default (the trainer's default config, seeds 0 and 1, and
the GRU encoder with seed 0), encodes the test split once per model and reports, for each pair, the
paired-bootstrap CI of the difference in official R@1 (30 x 32), full-split R@1 and the label/caption-
equivalent R@1, on the whole test split and on random subsets of it (how the width shrinks with N).

    python bench/ci_width.py --threads 2          # ~6 min on 2 cores
    python bench/ci_width.py --quick              # code-path check in seconds
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import LoadRecord, load_avg, out_dir_for, print_rows, row, write_result
from bench.train_config import parse_model_bench_args, train_flat

NAME = "ci_width"
GOAL_POINTS = 2.5

MODELS = {"tmr_seed0": {"seed": 0}, "tmr_seed1": {"seed": 1}, "gru_seed0": {"seed": 0, "motion_encoder": "gru"}}
PAIRS = (("tmr_seed0", "tmr_seed1"), ("tmr_seed0", "gru_seed0"))
METRICS = ("recall_at_1", "full_t2m_R1", "eq_recall_at_1")


def train_last_checkpoint(config: dict, out: Path) -> list[dict]:
    """Train one config; keep the last epoch's checkpoint folder (the full-length model) at ``out``; return the
    per-epoch history."""
    from core.train import train_retrieval

    def keep(metrics: dict, checkpoint_dir: str | None) -> None:
        if checkpoint_dir:
            shutil.rmtree(out, ignore_errors=True)
            shutil.copytree(checkpoint_dir, out)

    return train_retrieval(config, keep)


def test_embeddings(checkpoint: Path):
    from core.inference import encode_split, load_checkpoint_model, open_data

    loaded = load_checkpoint_model(checkpoint, "cpu")
    return encode_split(loaded, open_data(loaded.config, loaded.mean, loaded.std), "test"), loaded.config.runtime


def test_credits(emb, runtime, subset: np.ndarray, eval_batches: int) -> dict:
    """Per-query credit of the test split (or a subset of it) under ``eval_batches`` batches of 32."""
    from dataclasses import replace

    from core.evaluate import evaluate_split

    result = evaluate_split(emb.text[subset], emb.motion[subset], [emb.captions[i] for i in subset],
                            [emb.groups[i] for i in subset], replace(runtime, eval_batches=eval_batches))
    return result.credits


def main(argv=None) -> int:
    def batches_flag(ap):
        ap.add_argument("--batches", type=int, nargs="+", default=[30, 125, 0],
                        help="eval_batches (of 32) to compare; 30 = the seed's official protocol, 0 = auto (the "
                             "default: ~16 draws per query)")

    args = parse_model_bench_args(argv, __doc__, epochs=4, quick_epochs=1, set_help="config override for every model",
                                  epochs_help="epochs per model (the main job's --max-epochs)", add_flags=batches_flag)
    from core.bootstrap import paired_difference

    base = train_flat(args, epochs=args.epochs)
    work = Path(tempfile.mkdtemp(prefix="ci-width-"))
    t0, checkpoints, load = time.perf_counter(), {}, LoadRecord(load_avg(), own=args.threads)
    for name, changes in MODELS.items():
        print(f"training {name} ...", flush=True)
        train_last_checkpoint({**base, **changes}, work / name)
        checkpoints[name] = work / name
    embs = {m: test_embeddings(checkpoints[m]) for m in MODELS}
    n_test = len(embs["tmr_seed0"][0].ids)
    sizes = sorted({n for n in (100, 200, 300, 500, 1000) if n < n_test} | {n_test})
    rows, details = [], {"sizes": sizes, "batches": args.batches, "pairs": {}}
    rng = np.random.default_rng(0)
    subsets = {n: (np.arange(n_test) if n == n_test else np.sort(rng.choice(n_test, n, replace=False))) for n in sizes}
    credits = {(m, n, b): test_credits(*embs[m], subsets[n], b) for m in MODELS for n in sizes for b in args.batches}
    for a, b in PAIRS:
        per = details["pairs"][f"{a} - {b}"] = {}
        for n in sizes:
            for batches in args.batches:
                for key in METRICS:
                    if key not in credits[(a, n, batches)] or (key == "full_t2m_R1" and batches != args.batches[0]):
                        continue
                    name = key if key == "full_t2m_R1" else f"{key} @{batches} batches"
                    diff = paired_difference(credits[(a, n, batches)][key], credits[(b, n, batches)][key])
                    per.setdefault(name, {})[n] = {"diff": diff.value, "low": diff.low, "high": diff.high,
                                                   "half_width": diff.half_width}
        for batches in args.batches:
            full = per[f"recall_at_1 @{batches} batches"][n_test]
            kind = "auto batches, ~16 draws per query" if batches == 0 else f"{batches} x 32"
            rows.append(row(f"paired test R@1 CI ({kind}), {a} vs {b}", f"half-width <= {GOAL_POINTS:g} pt",
                            f"diff {full['diff']:+.2f} [{full['low']:+.2f}, {full['high']:+.2f}] on {n_test} test "
                            "motions", round(full["half_width"], 2), full["half_width"] <= GOAL_POINTS,
                            ratio_text=f"+-{full['half_width']:.2f} pt"))
    for a, b in PAIRS:
        print(f"\n{a} - {b}: paired 95 % CI half-width (points) by test size")
        for key, by_n in details["pairs"][f"{a} - {b}"].items():
            print(f"  {key:<30}" + "  ".join(f"N={n}: {v['diff']:+.1f} +-{v['half_width']:.2f}" for n, v in by_n.items()))
    details["models"] = {m: {f"{k} @{b}": c.value for b in args.batches for k, c in credits[(m, n_test, b)].items()}
                         for m in MODELS}
    shutil.rmtree(work, ignore_errors=True)
    path = write_result(out_dir_for(args), NAME, title="Paired CI half-width of test R@1 differences on the default "
                        "split", quick=args.quick, rows=rows,
                        settings={"epochs": base["epochs"], "data": base["data"], "models": MODELS,
                                  "batches": args.batches},
                        details=details, load=load.finish(), started=t0)
    print_rows(rows, load, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
