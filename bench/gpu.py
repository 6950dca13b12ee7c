#!/usr/bin/env python
"""P6 (GPU): trials per hour with fractional GPUs, and bf16 autocast (amp=true) vs fp32 step time.

Needs CUDA. On a machine without it, prints why and exits 0 having measured nothing (no JSON written).

  fractional  for each --gpus-per-trial f in 1, 0.5, 0.25, 0.125 (1, 2, 4, 8 trials per GPU): one search of
              the aligned_loss space through search.run (FIFO: every trial trains --epochs epochs; Optuna
              RandomSampler with the same seed, so every f trains the SAME configs) with --max-concurrent =
              trials per GPU x GPUs and --cpus-per-trial = cores / concurrent trials.
              trials/hour = trials / (last report - first trial start), from the experiment's records.
  amp         core.train._Trainer.train_epoch on the first --amp-steps batches, amp=true (bf16 autocast)
              vs amp=false (fp32), interleaved, torch.cuda.synchronize() around each pass.

    python bench/gpu.py                        # on a CUDA machine
    python bench/gpu.py --allow-cpu --quick    # CPU: checks the code path only. Ray is told there is 1 GPU
                                               # (ray.init(num_gpus=1)) so fractional scheduling runs; trials
                                               # see no CUDA and train on CPU; amp has no effect on CPU.
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import (QUICK_DATA, QUICK_SETS, LoadRecord, add_common_flags, apply_quick, run_dir, out_dir_for,
                          print_rows, row, setup_environment, usable_cores, wait_for_quiet, write_result)
from bench.train_config import parse_overrides

NAME = "gpu"
NO_CUDA = ("bench/gpu.py: no CUDA device is visible (torch.cuda.is_available() is False), so there is nothing "
           "to measure here. Run it on a machine with an NVIDIA GPU and a CUDA build of PyTorch, or pass "
           "--allow-cpu --quick to check the code path on CPU.")


def trials_per_hour(experiment: Path) -> dict[str, Any]:
    from results import read_experiment

    trials = read_experiment(experiment).trials
    starts = [t.start_time for t in trials if t.start_time is not None]
    ends = [t.last_result_time for t in trials if t.last_result_time is not None]
    span = max(ends) - min(starts) if starts and ends else None
    done = sum(t.status == "TERMINATED" for t in trials)
    return {"trials": len(trials), "terminated": done, "span_seconds": span,
            "trials_per_hour": done / span * 3600 if span else None}


def fractional(args, storage: Path, gpus: int) -> list[dict[str, Any]]:
    from bench.tune_runs import run_variant

    cores = usable_cores()
    out = []
    for f in args.gpus_per_trial:
        per_gpu = round(1 / f)
        concurrent = per_gpu * gpus
        flags = {"space": "aligned_loss", "data": args.data, "num_samples": concurrent * args.waves,
                 "max_epochs": args.epochs, "max_concurrent": concurrent, "gpus_per_trial": f,
                 "cpus_per_trial": float(max(1, cores // concurrent)) if cores >= concurrent else cores / concurrent,
                 "seed": args.seed, "storage": str(storage), "name": f"gpu-frac-{per_gpu}",
                 "overrides": list(args.set or (QUICK_SETS if args.quick else []))}
        res = run_variant(flags, scheduler="fifo", sampler="random", label=f"{per_gpu} per GPU")
        tph = trials_per_hour(Path(res.experiment_path))
        out.append({"gpus_per_trial": f, "trials_per_gpu": per_gpu, "concurrent": concurrent,
                    "cpus_per_trial": flags["cpus_per_trial"], "num_samples": flags["num_samples"],
                    "wall_seconds": res.wall_seconds, "best_recall_at_1": res.best_recall_at_1,
                    "errors": res.num_errors, **tph})
        print(f"{per_gpu} trial(s) per GPU: {tph['trials_per_hour'] or 0:.1f} trials/hour", flush=True)
    return out


def amp_vs_fp32(args) -> dict[str, Any]:
    import torch

    from core.config import TrainConfig, default_flat
    from core.train import _Trainer, prepare_shared

    flat = {**default_flat(), "epochs": 1, "data": args.data}
    if args.quick:
        flat.update(parse_overrides(QUICK_SETS))
    flat.update(parse_overrides(args.set))
    shared = prepare_shared(flat, progress=False)
    trainers = {}
    for amp in (True, False):
        cfg_flat = TrainConfig.from_flat({**flat, "amp": amp}).to_flat()
        trainer = _Trainer(TrainConfig.from_flat(cfg_flat), cfg_flat, shared)
        trainer.train_idx = trainer.train_idx[: args.amp_steps * trainer.cfg.optim.batch_size]
        trainers["bf16" if amp else "fp32"] = trainer
    cuda = torch.cuda.is_available()

    def timed(trainer) -> float:
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        trainer.train_epoch()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    for t in trainers.values():   # warm-up: kernels, allocator, autotuning
        timed(t)
    times: dict[str, list[float]] = {"bf16": [], "fp32": []}
    order = ("bf16", "fp32")
    for r in range(args.amp_reps):
        for label in (order if r % 2 == 0 else order[::-1]):
            times[label].append(timed(trainers[label]))
    fp32 = trainers["fp32"]
    steps = max(1, len(fp32.train_idx) // fp32.cfg.optim.batch_size)   # train_epoch drops the last partial batch
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"device": str(trainers["fp32"].device), "autocast_active": trainers["bf16"].amp,
            "bf16_supported": bool(cuda and torch.cuda.is_bf16_supported()), "steps": steps,
            "seconds": times, "bf16_step_seconds": med["bf16"] / steps, "fp32_step_seconds": med["fp32"] / steps,
            "speedup_fp32_over_bf16": med["fp32"] / med["bf16"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gpus-per-trial", type=lambda s: [float(x) for x in s.split(",")], default=[1, 0.5, 0.25, 0.125],
                    help="comma-separated fractions (default 1,0.5,0.25,0.125)")
    ap.add_argument("--waves", type=int, default=2, help="trials per concurrent slot (default %(default)s)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per trial (default %(default)s)")
    ap.add_argument("--data", default="synthetic")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="fixed config for every trial")
    ap.add_argument("--amp-steps", type=int, default=20, help="batches per timed AMP/fp32 pass")
    ap.add_argument("--amp-reps", type=int, default=4)
    ap.add_argument("--allow-cpu", action="store_true", help="run without CUDA (code-path check only)")
    ap.add_argument("--workdir", type=Path, help="where the searches go (default $TMPDIR/mrs-bench)")
    add_common_flags(ap, retries=0)
    args = ap.parse_args(argv)
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        print(NO_CUDA)
        return 0
    if args.quick:
        args.gpus_per_trial, args.waves, args.epochs = [0.5], 1, 1   # one fractional search
        args.data, args.amp_steps, args.amp_reps = QUICK_DATA, 2, 2
    apply_quick(args)
    setup_environment()
    started = time.perf_counter()
    from bench.tune_runs import start_local_ray

    gpus = torch.cuda.device_count() if cuda else 1
    if not cuda:  # Ray gets one pretend GPU; search's own "no GPU on this machine" check is told the same
        import search.args
        search.args.visible_gpus = lambda: 1   # validate() looks it up in search.args
    storage = run_dir(args, "gpu")
    load = LoadRecord(wait_for_quiet(args.max_load, args.wait_load), own=usable_cores(), max_per_core=args.max_load)
    started_ray = start_local_ray(usable_cores(), num_gpus=gpus)
    try:
        frac = fractional(args, storage, gpus)
    finally:
        if started_ray:
            import ray
            ray.shutdown()
    amp = amp_vs_fp32(args)
    load.finish()
    base = frac[0]["trials_per_hour"] or float("nan")
    rows = [row(f"P6 trials/hour, {d['trials_per_gpu']} trial(s) per GPU (--gpus-per-trial {d['gpus_per_trial']:g})",
                "(report) vs 1 per GPU",
                f"{d['trials_per_hour'] or 0:.1f} trials/h ({d['terminated']}/{d['num_samples']} trials, "
                f"{d['span_seconds'] or 0:.0f} s)", (d["trials_per_hour"] or 0) / base, None)
            for d in frac]
    rows.append(row("P6 AMP bf16 autocast vs fp32: step time", "(report)",
                    f"{amp['bf16_step_seconds'] * 1e3:.1f} vs {amp['fp32_step_seconds'] * 1e3:.1f} ms/step on "
                    f"{amp['device']}" + ("" if amp["autocast_active"] else " (autocast inactive: not CUDA)"),
                    amp["speedup_fp32_over_bf16"], None))
    settings = {"gpus": gpus, "cuda": cuda, "allow_cpu": args.allow_cpu, "waves": args.waves, "epochs": args.epochs,
                "data": args.data, "overrides": args.set or (QUICK_SETS if args.quick else []),
                "amp_steps": args.amp_steps, "amp_reps": args.amp_reps}
    path = write_result(out_dir_for(args), NAME, title="GPU: fractional trials per GPU and AMP", quick=args.quick,
                        rows=rows, settings=settings, details={"fractional": frac, "amp": amp}, load=load,
                        started=started)
    print_rows(rows, load, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
