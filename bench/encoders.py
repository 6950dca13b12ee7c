#!/usr/bin/env python
"""Motion encoders side by side, same budget: test R@1 (official and label-equivalent) with 95 % CIs, the paired
difference to the first encoder, and the CPU epoch time of each.

Every encoder in ``--encoders`` trains the trainer's default config (seed 0, ``--epochs``) on the embedded
default with 1 thread; its last checkpoint encodes the 700-motion test split once. Equivalent R@1 counts a
motion with the same caption group as a hit (the embedded corpus has ~3 motions per group, so plain full-split
R@1 is capped near 1/3).

    python bench/encoders.py --threads 2                 # tmr vs parts vs ssm vs gru, ~20 min on 2 cores
    python bench/encoders.py --encoders tmr ssm --quick  # code-path check in seconds
    python bench/encoders.py --encoders tmr parts parts:part_weight=0 ssm   # an arm may set config keys

An arm is ``ENCODER[:key=value,...]`` (e.g. ``parts:part_weight=0``, the part model without its part loss).
"""
from __future__ import annotations

if __package__ in (None, ""):
    import _repo_path  # noqa: F401

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.ci_width import test_credits, test_embeddings, train_last_checkpoint
from bench.common import LoadRecord, load_avg, out_dir_for, print_rows, row, write_result
from bench.train_config import parse_model_bench_args, train_flat

NAME = "encoders"
METRICS = ("recall_at_1", "eq_recall_at_1")


def main(argv=None) -> int:
    args = parse_model_bench_args(
        argv, __doc__, epochs=4, quick_epochs=1, set_help="config override for every encoder",
        epochs_help="epochs per encoder (the main job's --max-epochs)",
        add_flags=lambda ap: ap.add_argument("--encoders", nargs="+", default=["tmr", "parts", "ssm", "gru"],
                                             help="arms ENCODER[:key=value,...] to compare; the first is the "
                                                  "reference"))
    from core.config import parse_set_pairs
    from core.bootstrap import interval, paired_difference

    base = train_flat(args, epochs=args.epochs)
    work = Path(tempfile.mkdtemp(prefix="encoders-"))
    t0, load = time.perf_counter(), LoadRecord(load_avg(), own=args.threads)
    credits, details, rows = {}, {}, []
    for encoder in args.encoders:
        print(f"training {encoder} ...", flush=True)
        name, _, extra = encoder.partition(":")
        overrides = parse_set_pairs(extra.split(",")) if extra else {}
        folder = work / encoder.replace(":", "_").replace("=", "-").replace(",", "_")
        history = train_last_checkpoint({**base, "motion_encoder": name, "seed": 0, **overrides}, folder)
        emb, runtime = test_embeddings(folder)
        credits[encoder] = test_credits(emb, runtime, np.arange(len(emb.ids)), runtime.eval_batches)
        epoch_seconds = [h["epoch_seconds"] for h in history if "epoch_seconds" in h]
        details[encoder] = {
            "test": {k: {"value": i.value, "low": i.low, "high": i.high}
                     for k, c in credits[encoder].items() if k in METRICS for i in [interval(c)]},
            "val_recall_at_1_last_epoch": history[-1].get("recall_at_1"),
            "epoch_seconds_median": statistics.median(epoch_seconds) if epoch_seconds else None,
            "n_test": len(emb.ids)}
    reference = args.encoders[0]
    for encoder in args.encoders:
        d = details[encoder]
        for key in METRICS:
            c = d["test"].get(key)
            if c is None:
                continue
            text = f"{c['value']:.2f} [{c['low']:.2f}, {c['high']:.2f}] on {d['n_test']} test motions"
            if encoder != reference and key in credits[reference]:
                diff = paired_difference(credits[encoder][key], credits[reference][key])
                d.setdefault("paired_vs_" + reference, {})[key] = {"diff": diff.value, "low": diff.low,
                                                                   "high": diff.high}
                text += f"; vs {reference} {diff.value:+.2f} [{diff.low:+.2f}, {diff.high:+.2f}]"
            rows.append(row(f"{encoder}: test {key}", "reported with its CI", text, None, None))
        seconds = d["epoch_seconds_median"]
        rows.append(row(f"{encoder}: CPU epoch time ({args.threads} thread(s))", "reported",
                        f"{seconds:.1f} s" if seconds else "n/a", None, None))
    # every other pair too (e.g. parts with vs without its part loss), paired on the same test queries
    pairs = {}
    for i, a in enumerate(args.encoders):
        for b in args.encoders[i + 1:]:
            for key in METRICS:
                if key in credits[a] and key in credits[b] and reference not in (a, b):
                    diff = paired_difference(credits[a][key], credits[b][key])
                    pairs.setdefault(f"{a} - {b}", {})[key] = {"diff": diff.value, "low": diff.low, "high": diff.high}
                    rows.append(row(f"{a} - {b}: test {key}", "paired difference with its CI",
                                    f"{diff.value:+.2f} [{diff.low:+.2f}, {diff.high:+.2f}]", None, None))
    details["paired_pairs"] = pairs
    shutil.rmtree(work, ignore_errors=True)
    path = write_result(out_dir_for(args), NAME, title="Motion encoders side by side on the default split",
                        quick=args.quick, rows=rows,
                        settings={"epochs": base["epochs"], "data": base["data"], "encoders": args.encoders},
                        details=details, load=load.finish(), started=t0)
    print_rows(rows, load, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
