#!/usr/bin/env python
"""P1: training-step throughput of our trainer vs a bare PyTorch loop of the same model and batches.

ours  = ``core.train._Trainer.train_epoch`` (the exact inner loop of ``train_retrieval``: batch building
        with augmentation, frozen-text lookup, autocast context, loss, NaN guard, backward, grad clipping,
        AdamW, LR schedule, loss bookkeeping), on the first ``--steps`` batches of the train split.
bare  = the same ``RetrievalModel`` and loss with plain ``torch.optim.AdamW`` on PRE-BUILT padded tensors:
        the very batches ``ours`` sees (same seed, same length bucketing, same shapes), no data pipeline.
Passes alternate bare/ours (ABBA) so drifting background load hits both; the ratio is the median over
the back-to-back pairs. Goal: ours >= 0.9x bare.

Also: the machine's matmul GFLOP/s in the step's precision (fp32, or bf16 where amp runs bf16 autocast;
torch.mm, same thread count as a trial) and the step's achieved
GFLOP/s (FLOPs of every timed batch counted with torch.utils.flop_counter.FlopCounterMode: matmuls and
attention only, so "achieved" is a lower bound). When the goal is missed, cProfile + torch.profiler
tables of both loops are stored under details.profile.

    python bench/p1_step_throughput.py                 # default corpus + default model, 1 thread
    python bench/p1_step_throughput.py --quick
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import argparse
import cProfile
import io
import pstats
import statistics
import time
from typing import Any

import torch

from bench.common import (add_common_flags, apply_quick, measured_with_load_guard, out_dir_for, print_rows, row,
                          setup_environment, write_result)
from bench.train_config import add_train_flags, train_flat

NAME = "p1_step_throughput"
GOAL = 0.9


def build_config(args) -> dict[str, Any]:
    from core.config import TrainConfig

    return TrainConfig.from_flat(train_flat(args, epochs=1)).to_flat()


class Setup:
    """The trainer (ours) and the bare model + pre-built batches, ready to time."""

    def __init__(self, flat: dict, steps: int):
        from core.config import TrainConfig
        from core.losses import build_loss
        from core.model import build_model
        from core.train import _seed_epoch, _Trainer, prepare_shared

        cfg = TrainConfig.from_flat(flat)
        self.cfg = cfg
        shared = prepare_shared(flat, progress=False)
        self.trainer = _Trainer(cfg, flat, shared)
        if self.trainer.frozen is None:
            raise SystemExit("P1 measures the frozen-text path (text_mode=frozen); P2 covers fine-tuning.")
        bs = cfg.optim.batch_size
        self.full_train_idx = self.trainer.train_idx
        self.train_idx = self.full_train_idx[: steps * bs]   # the first `steps` batches of the real split
        self.trainer.train_idx = self.train_idx
        # The batches ours will see: train_epoch seeds epoch self.epoch + 1 = 1 and never advances here.
        rng = _seed_epoch(cfg.optim.seed, 1)
        b = self.trainer.builder
        self.batches = []
        for idx in b.epoch_batches(self.train_idx, bs, rng, bucket=cfg.data.bucket_by_length):
            batch = b.build(idx, rng)
            self.batches.append((batch.motion, batch.mask, self.trainer.frozen.lookup(batch.texts)))
        self.samples = sum(len(m) for m, _, _ in self.batches)
        torch.manual_seed(cfg.optim.seed)
        self.model = build_model(cfg, shared.corpus.dim, self.trainer.frozen.dim)
        self.model.train()
        self.loss_fn = build_loss(cfg.loss)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.optim.lr,
                                           weight_decay=cfg.optim.weight_decay)
        self.num_params = sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def bare_step(self, motion, mask, text_features, step: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        # the same precision as ours: bf16 autocast where the trainer uses it (amp on a native-bf16 CPU)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.trainer.amp):
            text = self.model.encode_text(text_features=text_features)                 # (B, latent)
            emb = self.model.encode_motion(motion, mask)["embedding"]                   # (B, latent)
        loss = self.loss_fn(text.float(), emb.float(), temperature=self.model.temperature())["total"]
        loss.backward()
        if step:
            self.optimizer.step()

    def bare_pass(self) -> float:
        t0 = time.perf_counter()
        for motion, mask, text_features in self.batches:
            self.bare_step(motion, mask, text_features)
        return time.perf_counter() - t0

    def ours_pass(self) -> float:
        t0 = time.perf_counter()
        stats = self.trainer.train_epoch()
        elapsed = time.perf_counter() - t0
        assert stats["_samples"] == self.samples, (stats["_samples"], self.samples)
        return elapsed

    def pipeline_seconds(self) -> float:
        """Time of ours' data pipeline alone (batch building + augmentation + frozen lookup)."""
        from core.train import _seed_epoch

        rng = _seed_epoch(self.cfg.optim.seed, 1)
        b, t0 = self.trainer.builder, time.perf_counter()
        for idx in b.epoch_batches(self.train_idx, self.cfg.optim.batch_size, rng,
                                   bucket=self.cfg.data.bucket_by_length):
            self.trainer.frozen.lookup(b.build(idx, rng).texts)
        return time.perf_counter() - t0

    def warm_up(self) -> None:
        full = self.trainer.train_idx
        self.trainer.train_idx = full[: 2 * self.cfg.optim.batch_size]
        self.trainer.train_epoch()
        self.trainer.train_idx = full
        for motion, mask, text_features in self.batches[:2]:
            self.bare_step(motion, mask, text_features)

    def count_flops(self) -> float:
        """FLOPs of forward + backward over every timed batch (matmul/attention ops only)."""
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            for motion, mask, text_features in self.batches:
                self.bare_step(motion, mask, text_features, step=False)
        return float(counter.get_total_flops())


def matmul_gflops(n: int, repeats: int = 5, dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """(n x n) @ (n x n) in ``dtype`` at the current torch thread count: 2 n^3 FLOPs per product."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    flops = 2.0 * n ** 3
    return {"n": n, "best_gflops": flops / min(times) / 1e9, "median_gflops": flops / statistics.median(times) / 1e9}


def profile(setup: Setup, top: int = 15) -> dict[str, Any]:
    """Where ours spends its time vs bare: cProfile of one ours pass, torch.profiler op tables of both."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    prof = cProfile.Profile()
    prof.enable()
    setup.ours_pass()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(top)
    out = {"cprofile_ours_cumulative": buf.getvalue()}
    for label, fn in (("ours", setup.ours_pass), ("bare", setup.bare_pass)):
        with torch_profile(activities=[ProfilerActivity.CPU]) as p:
            fn()
        out[f"torch_profiler_{label}"] = p.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)
    return out


def measure(setup: Setup, reps: int) -> dict[str, Any]:
    bare, ours = [], []
    for r in range(reps):  # ABBA: bare, ours, ours, bare, ...
        order = (("bare", setup.bare_pass), ("ours", setup.ours_pass))
        for label, fn in (order if r % 2 == 0 else order[::-1]):
            (bare if label == "bare" else ours).append(fn())
    return {"bare_seconds": bare, "ours_seconds": ours}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    add_train_flags(ap)
    ap.add_argument("--steps", type=int, default=8, help="batches per timed pass (default %(default)s)")
    ap.add_argument("--reps", type=int, default=6, help="timed passes of each loop, interleaved (default %(default)s)")
    ap.add_argument("--matmul-n", type=int, default=2048, help="matrix size of the GFLOP/s probe")
    ap.add_argument("--profile", action="store_true", help="store profiles even when the goal is met")
    add_common_flags(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.reps, args.matmul_n = 2, 2, 256
    apply_quick(args)
    setup_environment()
    started = time.perf_counter()
    flat = build_config(args)
    setup = Setup(flat, args.steps)
    setup.warm_up()

    def run() -> dict[str, Any]:
        res = measure(setup, args.reps)
        res["pipeline_seconds"] = setup.pipeline_seconds()
        res["matmul"] = matmul_gflops(args.matmul_n)
        res["matmul_bf16"] = matmul_gflops(args.matmul_n, dtype=torch.bfloat16) if setup.trainer.amp else None
        return res

    res, load, attempts = measured_with_load_guard(run, own=args.threads, retries=args.retries,
                                                   max_per_core=args.max_load, wait_s=args.wait_load)
    flops = setup.count_flops()
    bare_s, ours_s = statistics.median(res["bare_seconds"]), statistics.median(res["ours_seconds"])
    n = setup.samples
    bare_sps, ours_sps = n / bare_s, n / ours_s
    # Headline: median of the per-pair ratios (each pair ran back to back, so slow drifts in the other
    # processes' load cancel); the ratio of the medians is kept in the details.
    pair_ratios = [b / o for b, o in zip(res["bare_seconds"], res["ours_seconds"])]
    ratio = statistics.median(pair_ratios)
    achieved = {"ours_gflops": flops / ours_s / 1e9, "bare_gflops": flops / bare_s / 1e9}
    precision = "bf16" if setup.trainer.amp else "fp32"   # the peak of the precision the step runs in
    peak = (res["matmul_bf16"] if setup.trainer.amp else res["matmul"])["best_gflops"]
    details: dict[str, Any] = {
        **res, "samples_per_pass": n, "steps_per_pass": len(setup.batches), "batch_shapes":
            [list(m.shape) for m, _, _ in setup.batches], "num_params": setup.num_params,
        "ours_samples_per_second": ours_sps, "bare_samples_per_second": bare_sps,
        "ratio_of_medians": ours_sps / bare_sps, "ratio_median_of_pairs": ratio,
        "pair_ratios": pair_ratios, "flops_per_pass": flops, "flops_per_sample": flops / n, **achieved,
        "ours_fraction_of_matmul_peak": achieved["ours_gflops"] / peak,
        "pipeline_fraction_of_ours": res["pipeline_seconds"] / ours_s, "precision": precision,
    }
    if ratio < GOAL or args.profile:
        details["profile"] = profile(setup)
    rows = [
        row("P1 train-step throughput (ours / bare loop)", f">= {GOAL}x",
            f"{ours_sps:.1f} vs {bare_sps:.1f} samples/s", ratio, ratio >= GOAL),
        row(f"P1 achieved GFLOP/s of a step vs {precision} matmul peak", "(report)",
            f"{achieved['ours_gflops']:.1f} of {peak:.1f} GFLOP/s ({args.threads} thread"
            f"{'s' if args.threads > 1 else ''})", achieved["ours_gflops"] / peak, None,
            ratio_text=f"{100 * achieved['ours_gflops'] / peak:.0f}% of peak"),
    ]
    settings = {"config": {k: flat[k] for k in ("data", "motion_encoder", "hidden_dim", "latent_dim", "num_layers",
                                                 "num_heads", "ff_mult", "max_frames", "batch_size", "loss",
                                                 "text_mode", "bucket_by_length", "num_threads")},
                "steps": args.steps, "reps": args.reps, "matmul_n": args.matmul_n}
    path = write_result(out_dir_for(args), NAME, title="Training-step throughput vs a bare PyTorch loop",
                        quick=args.quick, rows=rows, settings=settings, details=details, load=load,
                        attempts=attempts, started=started)
    print(f"per pass ({n} samples, {len(setup.batches)} steps): bare {[round(x, 2) for x in res['bare_seconds']]} s, "
          f"ours {[round(x, 2) for x in res['ours_seconds']]} s; data pipeline {res['pipeline_seconds']:.2f} s")
    print_rows(rows, load, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
