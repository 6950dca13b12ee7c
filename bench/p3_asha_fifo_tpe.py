#!/usr/bin/env python
"""P3: search efficiency. ASHA vs FIFO (no early stopping), and Optuna TPE vs random search.

Three searches of the ``aligned_loss`` space with the same data, model, seed, num_samples, max_epochs and
concurrency, each through ``search.run`` (what run_search.py runs; ``--no-wandb --ensemble-top-k 0``):

  asha+tpe     search's defaults (ASHA, grace period / reduction factor as given)
  fifo+tpe     the same with Ray's FIFOScheduler: every trial trains all --max-epochs
  fifo+random  FIFO with Optuna's RandomSampler (same seed) instead of TPE
  asha+random  ASHA with the random sampler: early stopping without TPE steering later trials to good regions
  asha(rf=R)   ASHA+TPE with another reduction factor (--extra-reduction-factors, default 4): how much
               more aggressive stopping buys

Goal: ASHA trains <= 35 % of FIFO's epochs (rows of epochs.parquet) and its best val R@1 is within
1 point of FIFO's. TPE vs random: best-so-far val R@1 against trials started (plot
``p3_best_so_far.png`` next to the JSON); one seed only, so read it as an illustration, not a verdict.

    python bench/p3_asha_fifo_tpe.py          # ~20-25 min on 2 cores
    python bench/p3_asha_fifo_tpe.py --quick
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import argparse
import time
from pathlib import Path
from typing import Any

from bench.common import (QUICK_DATA, QUICK_SETS, LoadRecord, add_common_flags, apply_quick, run_dir, out_dir_for,
                          print_rows, row, setup_environment, usable_cores, wait_for_quiet, write_result)

NAME = "p3_asha_fifo_tpe"
GOAL_FRACTION, GOAL_POINTS = 0.35, 1.0
# CPU-sized model: a trial epoch takes ~1-2 s on synthetic:n=600, so the 5 searches fit in ~20-25 min.
# 24 trials: asynchronous ASHA promotes the first trials of every rung unconditionally (nothing to compare
# with yet), so its saving only approaches synchronous halving's as num_samples grows.
MODEL_SETS = ["hidden_dim=128", "latent_dim=128", "num_layers=2", "num_heads=4", "max_frames=100"]
VARIANTS = (("asha", "tpe"), ("fifo", "tpe"), ("fifo", "random"), ("asha", "random"))


def plot_best_so_far(results: list, path: Path, title: str) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    styles = ("-", "--", ":", "-.")   # curves often coincide (same seeded first trials): keep all visible
    for i, res in enumerate(results):
        ys = res.best_so_far()
        ax.step(range(1, len(ys) + 1), [y if y is not None else float("nan") for y in ys], where="post",
                linestyle=styles[i % len(styles)], linewidth=2.2 - 0.3 * i, marker="o", markersize=3,
                label=f"{res.label} ({res.epochs_trained} epochs)")
    ax.set_xlabel("trials started")
    ax.set_ylabel("best val R@1 so far (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def sha_fraction(max_t: int, grace: int, rf: float) -> float:
    """Epochs of ideal synchronous successive halving / epochs of FIFO: decisions at grace * rf^k < max_t,
    each keeping 1/rf of the trials (Ray's ASHA milestones); the last survivors train to max_t."""
    milestones, m = [], float(grace)
    while m < max_t:
        milestones.append(m)
        m *= rf
    epochs, alive, prev = 0.0, 1.0, 0.0
    for m in milestones:
        epochs += alive * (m - prev)
        alive, prev = alive / rf, m
    return (epochs + alive * (max_t - prev)) / max_t


def versus_fifo(asha, fifo) -> tuple[float, float, bool]:
    """(ASHA epochs / FIFO epochs, FIFO best R@1 - ASHA best R@1, goal met)."""
    fraction = asha.epochs_trained / fifo.epochs_trained
    gap = (fifo.best_recall_at_1 or 0.0) - (asha.best_recall_at_1 or 0.0)
    return fraction, gap, fraction <= GOAL_FRACTION and gap <= GOAL_POINTS


def asha_row(label: str, asha, fifo, ideal: float) -> dict[str, Any]:
    fraction, gap, passed = versus_fifo(asha, fifo)
    return row(label, f"<= {GOAL_FRACTION:.0%} of FIFO's epochs, R@1 within {GOAL_POINTS:g} pt",
               f"{asha.epochs_trained} vs {fifo.epochs_trained} epochs (synchronous SHA: {ideal:.0%}); best val R@1 "
               f"{asha.best_recall_at_1:.2f} vs {fifo.best_recall_at_1:.2f}; wall {asha.wall_seconds:.0f} vs "
               f"{fifo.wall_seconds:.0f} s",
               fraction, passed, ratio_text=f"{fraction:.0%} of epochs, {-gap:+.2f} pt")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="aligned_loss")
    ap.add_argument("--data", default="synthetic:n=600")
    ap.add_argument("--num-samples", type=int, default=24)
    ap.add_argument("--max-epochs", type=int, default=8)
    ap.add_argument("--grace-period", type=int, default=1)
    ap.add_argument("--reduction-factor", type=float, default=2.0)
    ap.add_argument("--extra-reduction-factors", type=float, nargs="*", default=[4.0],
                    help="also run ASHA+TPE with these reduction factors (default 4; none with --quick)")
    ap.add_argument("--max-concurrent", type=int, default=2)
    ap.add_argument("--cpus-per-trial", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="fixed config (default: a CPU-sized TMR)")
    ap.add_argument("--workdir", type=Path, help="where the experiments go (default $TMPDIR/mrs-bench)")
    add_common_flags(ap, retries=0)
    args = ap.parse_args(argv)
    if args.quick:
        args.data, args.num_samples, args.max_epochs = QUICK_DATA, 2, 2
        args.extra_reduction_factors = []
    apply_quick(args)
    setup_environment()
    started = time.perf_counter()
    from bench.tune_runs import run_variant, start_local_ray

    sets = args.set or (QUICK_SETS if args.quick else MODEL_SETS)
    storage = run_dir(args, "p3")
    flags = {"space": args.space, "data": args.data, "num_samples": args.num_samples, "max_epochs": args.max_epochs,
             "grace_period": args.grace_period, "reduction_factor": args.reduction_factor,
             "max_concurrent": args.max_concurrent, "cpus_per_trial": args.cpus_per_trial, "seed": args.seed,
             "storage": str(storage), "overrides": list(sets)}
    load = LoadRecord(wait_for_quiet(args.max_load, args.wait_load), own=args.max_concurrent * args.cpus_per_trial,
                      max_per_core=args.max_load)
    started_ray = start_local_ray(usable_cores())
    try:
        results = [run_variant({**flags, "name": f"{sched}-{samp}"}, scheduler=sched, sampler=samp)
                   for sched, samp in VARIANTS]
        extra = [run_variant({**flags, "reduction_factor": rf, "name": f"asha-rf{rf:g}-tpe"}, scheduler="asha",
                             sampler="tpe", label=f"asha(rf={rf:g})+tpe") for rf in args.extra_reduction_factors]
    finally:
        if started_ray:
            import ray
            ray.shutdown()
    load.finish()
    asha, fifo, rnd, asha_rnd = results
    fraction, gap, passed = versus_fifo(asha, fifo)
    ideal = {rf: sha_fraction(args.max_epochs, args.grace_period, rf)
             for rf in (args.reduction_factor, *args.extra_reduction_factors)}
    out = out_dir_for(args)
    png = plot_best_so_far(results + extra, out / "p3_best_so_far.png",
                           f"{args.space} on {args.data}, {args.num_samples} trials x <= {args.max_epochs} epochs, "
                           f"seed {args.seed}")
    rows = [
        asha_row(f"P3 ASHA (grace {args.grace_period}, rf {args.reduction_factor:g}) vs FIFO, TPE", asha, fifo,
                 ideal[args.reduction_factor]),
        *[asha_row(f"P3 ASHA (grace {args.grace_period}, rf {rf:g}) vs FIFO, TPE", res, fifo, ideal[rf])
          for rf, res in zip(args.extra_reduction_factors, extra)],
        asha_row(f"P3 ASHA (grace {args.grace_period}, rf {args.reduction_factor:g}) vs FIFO, random search",
                 asha_rnd, rnd, ideal[args.reduction_factor]),
        row("P3 TPE vs random (FIFO): best val R@1 after all trials", "(report; 1 seed)",
            f"TPE {fifo.best_recall_at_1:.2f} vs random {rnd.best_recall_at_1:.2f}; best-so-far curve "
            f"{png.name}", None, None,
            ratio_text=f"{fifo.best_recall_at_1 - rnd.best_recall_at_1:+.2f} pt"),
    ]
    settings = {**{k: v for k, v in flags.items() if k != "storage"}, "workdir": str(storage),
                "fifo_via": "run_search --scheduler fifo", "random_via": "run_search --sampler random"}
    details: dict[str, Any] = {r.label: r.to_json() for r in results + extra}
    details.update(asha_fraction_of_fifo_epochs=fraction, r1_gap_fifo_minus_asha=gap, plot=str(png),
                   synchronous_sha_fraction={f"rf={rf:g}": v for rf, v in ideal.items()},
                   extra_reduction_factors=args.extra_reduction_factors)
    path = write_result(out, NAME, title="ASHA vs FIFO and TPE vs random search", quick=args.quick, rows=rows,
                        settings=settings, details=details, load=load, started=started)
    for r in results + extra:
        print(f"{r.label:16s} trials {r.num_trials} errors {r.num_errors} epochs {r.epochs_trained:3d} "
              f"best R@1 {r.best_recall_at_1:.2f} wall {r.wall_seconds:.0f}s  best-so-far "
              f"{[round(x, 1) if x is not None else None for x in r.best_so_far()]}")
    print_rows(rows, load, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
