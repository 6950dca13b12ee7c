#!/usr/bin/env python
"""P1b: bf16 autocast on a CPU with native bf16 (AVX512-BF16 / AMX) vs fp32: epoch time and val R@1.

``amp=true`` (the default) turns on bf16 autocast on CPUs that do bf16 natively (``core/precision.py``).
This trains the same configuration (trainer defaults: embedded corpus, TMR 4 x 256, frozen MiniLM,
batch 64; 1 thread like a search trial) for ``--epochs`` epochs with ``amp=false`` and then ``amp=true``,
same seed, and compares training throughput (samples/s, median over epochs) and validation recall after
every epoch: the speed-up has to come without losing retrieval quality. Exits 0 with a "not applicable"
row on CPUs without native bf16 (there ``amp`` means fp32 and there is nothing to compare).

    python bench/p1b_cpu_bf16.py            # ~5 min on 2 cores
    python bench/p1b_cpu_bf16.py --quick
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import statistics
import time
from typing import Any

from bench.common import LoadRecord, load_avg, measured_with_load_guard, out_dir_for, print_rows, row, write_result
from bench.train_config import parse_model_bench_args, train_flat

NAME = "p1b_cpu_bf16"
QUALITY_POINTS = 2.0   # bf16's best val R@1 may trail fp32's by at most this (one seed, 148 val motions)


def configs(args) -> dict[str, dict[str, Any]]:
    from core.config import TrainConfig

    flat = train_flat(args, epochs=args.epochs, device="cpu")
    return {arm: TrainConfig.from_flat({**flat, "amp": arm == "bf16"}).to_flat() for arm in ("fp32", "bf16")}


def train(config: dict[str, Any], shared) -> list[dict[str, float]]:
    from core.train import train_retrieval

    keep = ("epoch", "epoch_seconds", "samples_per_second", "recall_at_1", "weighted_recall", "train_loss")
    history = train_retrieval(config, shared=shared)
    return [{k: float(h[k]) for k in keep} for h in history]


def main(argv: list[str] | None = None) -> int:
    args = parse_model_bench_args(argv, __doc__, epochs=3, quick_epochs=1, set_help="config override for both arms",
                                  epochs_help="epochs of each arm")
    started = time.perf_counter()
    from core.precision import cpu_has_native_bf16
    from core.train import prepare_shared

    cfgs = configs(args)
    settings = {"config": {k: cfgs["fp32"][k] for k in ("data", "motion_encoder", "hidden_dim", "num_layers",
                                                         "batch_size", "text_mode", "num_threads", "epochs")}}
    if not cpu_has_native_bf16():
        rows = [row("P1b CPU bf16 autocast vs fp32", "(report)", "not applicable: this CPU has no native bf16 "
                    "(AVX512-BF16/AMX); amp=true trains in fp32 here", None, None, ratio_text="-")]
        path = write_result(out_dir_for(args), NAME, title="bf16 autocast vs fp32 on CPU", quick=args.quick,
                            rows=rows, settings=settings, details={"native_bf16": False},
                            load=LoadRecord(load_avg()).finish(), started=started)
        print_rows(rows, None, path)
        return 0
    shared = prepare_shared(cfgs["fp32"], progress=False)   # data + frozen text features cached before timing

    def run() -> dict[str, list[dict[str, float]]]:
        out = {}
        for arm in ("fp32", "bf16"):
            out[arm] = train(cfgs[arm], shared)
            print(f"{arm}: " + ", ".join(f"epoch {h['epoch']:.0f} {h['epoch_seconds']:.1f} s R@1 "
                                         f"{h['recall_at_1']:.2f}" for h in out[arm]), flush=True)
        return out

    res, load, attempts = measured_with_load_guard(run, own=args.threads, retries=args.retries,
                                                   max_per_core=args.max_load, wait_s=args.wait_load)

    def median(arm: str, key: str) -> float:
        return statistics.median(h[key] for h in res[arm])

    def best(arm: str) -> float:
        return max(h["recall_at_1"] for h in res[arm])

    speed = median("bf16", "samples_per_second") / median("fp32", "samples_per_second")
    epoch_ratio = median("fp32", "epoch_seconds") / median("bf16", "epoch_seconds")
    gap = best("fp32") - best("bf16")
    rows = [
        row("P1b CPU bf16 autocast vs fp32: training throughput", "(report)",
            f"{median('bf16', 'samples_per_second'):.1f} vs {median('fp32', 'samples_per_second'):.1f} samples/s; "
            f"epoch incl. validation {median('bf16', 'epoch_seconds'):.1f} vs {median('fp32', 'epoch_seconds'):.1f} s "
            f"({epoch_ratio:.2f}x)", speed, None),
        row("P1b CPU bf16 autocast vs fp32: best val R@1", f"within {QUALITY_POINTS:g} pt of fp32",
            f"{best('bf16'):.2f} vs {best('fp32'):.2f} after {args.epochs} epochs (one seed)", -gap,
            gap <= QUALITY_POINTS, ratio_text=f"{-gap:+.2f} pt"),
    ]
    details = {**res, "native_bf16": True, "train_speedup": speed, "epoch_speedup": epoch_ratio, "r1_gap_fp32_minus_bf16": gap}
    path = write_result(out_dir_for(args), NAME, title="bf16 autocast vs fp32 on CPU", quick=args.quick, rows=rows,
                        settings=settings, details=details, load=load, attempts=attempts, started=started)
    print_rows(rows, load, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
