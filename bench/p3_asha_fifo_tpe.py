#!/usr/bin/env python
"""P3: search efficiency over several search seeds: how many epochs each scheduler needs to reach FIFO's answer.

Per search seed, every arm searches the ``aligned_loss`` space with the same data, model, num_samples,
max_epochs and concurrency through ``search.run`` (what run_search.py runs; no W&B, refit or ensemble):

  fifo+tpe          no early stopping, Optuna TPE: the reference
  fifo+random       no early stopping, random search (TPE vs random at equal compute)
  asha(rf R,g G)    ASHA with reduction factor R and grace period G, TPE (the searcher sees PRUNED trials)
  hyperband(rf R)   Ray's synchronous HyperBand (trials pause at rungs; no concurrency limiter)

Time-to-target of an arm = epochs trained (all trials, in the order they were reported) until the best-so-far
val R@1 is within 1 point of fifo+tpe's final best val R@1 for that seed.  Goal: <= 35 % of FIFO's epochs.
Reported per arm: the median over seeds with the min..max spread, how many seeds reached the target, total
epochs, and the best val R@1 with the 95 % bootstrap CI of that trial-epoch.  Plot: best-so-far against
cumulative epochs for every arm and seed (``p3_best_so_far.png``).

    python bench/p3_asha_fifo_tpe.py                  # 3 seeds x 7 arms x 12 trials; ~40 min on 2 cores
    python bench/p3_asha_fifo_tpe.py --quick
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (QUICK_DATA, QUICK_SETS, LoadRecord, add_common_flags, apply_quick, run_dir, out_dir_for,
                          print_rows, row, setup_environment, usable_cores, wait_for_quiet, write_result)

NAME = "p3_asha_fifo_tpe"
GOAL_FRACTION, GOAL_POINTS = 0.35, 1.0
# CPU-sized model; val holds 500 motions (the floor for telling 1 point apart), train 500.
MODEL_SETS = ["hidden_dim=128", "latent_dim=128", "num_layers=2", "num_heads=4", "max_frames=100"]
DATA = "synthetic:n=1100,val=500,test=100"


@dataclass(frozen=True)
class Arm:
    scheduler: str
    sampler: str = "tpe"
    rf: float = 2.0
    grace: int = 1

    @property
    def label(self) -> str:
        if self.scheduler == "fifo":
            return f"fifo+{self.sampler}"
        if self.scheduler == "hyperband":
            return f"hyperband(rf {self.rf:g})+{self.sampler}"
        return f"asha(rf {self.rf:g},g {self.grace})+{self.sampler}"


ARMS = (Arm("fifo"), Arm("fifo", "random"), Arm("asha", rf=2), Arm("asha", rf=3), Arm("asha", rf=4),
        Arm("asha", rf=3, grace=2), Arm("hyperband", rf=3))
QUICK_ARMS = (Arm("fifo"), Arm("asha", rf=2), Arm("hyperband", rf=2), Arm("fifo", "random"))


def epoch_curve(path: Path) -> list[tuple[float, float, float, float]]:
    """Every reported epoch of an experiment in report order: (time, R@1, R@1 low, R@1 high)."""
    import pyarrow.parquet as pq

    from results import load_trials, read_experiment

    load_trials(path)                                   # (re)writes trials.parquet and epochs.parquet
    starts = {t.trial_id: t.start_time or 0.0 for t in read_experiment(path).trials}
    rows = pq.read_table(path / "epochs.parquet").to_pylist()
    # a report's time: its trial's start + the training time it reported (finer than Tune's whole-second stamp)
    out = [(starts.get(r["trial_id"], 0.0) + float(r.get("time_total_s") or 0.0), float(r["recall_at_1"]),
            float(r.get("recall_at_1_lo") or r["recall_at_1"]), float(r.get("recall_at_1_hi") or r["recall_at_1"]))
           for r in rows if r.get("recall_at_1") is not None]
    return sorted(out)


def time_to_target(curve, target: float) -> int | None:
    """Epochs (1-based count in report order) until the best-so-far R@1 >= target; None if never."""
    best = float("-inf")
    for n, (_, r1, _, _) in enumerate(curve, 1):
        best = max(best, r1)
        if best >= target:
            return n
    return None


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}..{max(values):.2f}]"


def plot_curves(curves: dict[str, dict[int, list]], path: Path, title: str) -> Path:
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    from results.plots import save_figure

    seeds = sorted({s for per in curves.values() for s in per})
    fig = Figure(figsize=(5.2 * len(seeds), 4.2))
    colors = colormaps["tab10"]
    for k, seed in enumerate(seeds):
        ax = fig.add_subplot(1, len(seeds), k + 1)
        for i, (label, per_seed) in enumerate(curves.items()):
            curve = per_seed.get(seed) or []
            best, ys = float("-inf"), []
            for _, r1, _, _ in curve:
                best = max(best, r1)
                ys.append(best)
            ax.step(range(1, len(ys) + 1), ys, where="post", color=colors(i % 10), lw=1.6,
                    ls="-" if "fifo" not in label else "--", label=label)
        ax.set_xlabel("cumulative epochs trained")
        ax.set_ylabel("best val R@1 so far (%)")
        ax.set_title(f"search seed {seed}", fontsize=9)
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="aligned_loss")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--num-samples", type=int, default=12)
    ap.add_argument("--max-epochs", type=int, default=6)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--max-concurrent", type=int, default=2)
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="fixed config (default: a CPU-sized TMR)")
    ap.add_argument("--from-dir", type=Path, help="re-read the experiments of an earlier run (its workdir) instead of "
                                                   "searching; arms or seeds it lacks are left out")
    add_common_flags(ap, retries=0)
    args = ap.parse_args(argv)
    arms = ARMS
    if args.quick:
        args.data, args.num_samples, args.max_epochs, args.seeds, arms = QUICK_DATA, 2, 2, [0], QUICK_ARMS
    apply_quick(args)
    setup_environment()
    started = time.perf_counter()
    from bench.tune_runs import read_variant, run_variant, start_local_ray

    sets = args.set or (QUICK_SETS if args.quick else MODEL_SETS)
    storage = run_dir(args, "p3")
    load = LoadRecord(wait_for_quiet(args.max_load, args.wait_load), own=args.max_concurrent,
                      max_per_core=args.max_load)
    started_ray = start_local_ray(usable_cores()) if args.from_dir is None else False
    runs: dict[str, dict[int, Any]] = {a.label: {} for a in arms}
    curves: dict[str, dict[int, list]] = {a.label: {} for a in arms}
    if args.from_dir is not None:
        storage = args.from_dir
        for seed in args.seeds:
            for arm in arms:
                path = storage / f"{arm.label.replace(' ', '').replace(',', '-')}-s{seed}"
                if (path / "search_args.json").is_file() and (path / "optuna.db").is_file():
                    curves[arm.label][seed] = epoch_curve(path)
                    runs[arm.label][seed] = read_variant(path, arm.label, arm.scheduler, arm.sampler, float("nan"),
                                                         0, 0)
        args.seeds = [s for s in args.seeds if all(s in curves[a.label] for a in arms[:1])]
    try:
        for seed in ([] if args.from_dir is not None else args.seeds):
            for arm in arms:
                flags = {"space": args.space, "data": args.data, "num_samples": args.num_samples,
                         "max_epochs": args.max_epochs, "grace_period": min(arm.grace, args.max_epochs),
                         "reduction_factor": arm.rf, "max_concurrent": args.max_concurrent, "cpus_per_trial": 1.0,
                         "seed": seed, "storage": str(storage), "overrides": list(sets),
                         "name": f"{arm.label.replace(' ', '').replace(',', '-')}-s{seed}"}
                print(f"=== seed {seed}: {arm.label}", flush=True)
                res = run_variant(flags, scheduler=arm.scheduler, sampler=arm.sampler, label=arm.label)
                runs[arm.label][seed] = res
                curves[arm.label][seed] = epoch_curve(Path(res.experiment_path))
    finally:
        if started_ray:
            import ray
            ray.shutdown()
    load.finish()

    reference = arms[0].label                 # fifo+tpe
    table, rows = {}, []
    for arm in arms:
        per_seed = {}
        for seed in [s for s in args.seeds if s in curves[arm.label]]:
            ref_curve, curve = curves[reference][seed], curves[arm.label][seed]
            target = max(r for _, r, _, _ in ref_curve) - GOAL_POINTS
            fifo_epochs = len(ref_curve)
            reached = time_to_target(curve, target)
            best = max(curve, key=lambda c: c[1])
            per_seed[seed] = {"epochs_to_target": reached, "fraction_of_fifo": reached / fifo_epochs if reached else None,
                              "total_epochs": len(curve), "total_fraction": len(curve) / fifo_epochs,
                              "best_val_r1": best[1], "best_val_r1_ci": [best[2], best[3]], "target": target,
                              "wall_seconds": runs[arm.label][seed].wall_seconds,
                              "errors": runs[arm.label][seed].num_errors}
        table[arm.label] = per_seed
        reached = [v["fraction_of_fifo"] for v in per_seed.values() if v["fraction_of_fifo"] is not None]
        totals = [v["total_fraction"] for v in per_seed.values()]
        bests = [v["best_val_r1"] for v in per_seed.values()]
        # Unreached seeds count as "all its epochs and more": the median is taken over reached seeds only
        # when every seed reached, else the arm fails the goal.
        ok = bool(per_seed) and len(reached) == len(per_seed)
        median = statistics.median(reached) if ok else None
        rows.append(row(f"P3 {arm.label}: epochs to FIFO+TPE's best - {GOAL_POINTS:g} pt",
                        f"<= {GOAL_FRACTION:.0%} of FIFO's epochs in every seed" if arm.label != reference else "reference",
                        f"to target: {spread([100 * r for r in reached]) + ' %' if reached else 'never'} "
                        f"({len(reached)}/{len(per_seed)} seeds reached); total {spread([100 * t for t in totals])} % "
                        f"of FIFO; best val R@1 {spread(bests)}" if per_seed else "not run", median,
                        (median is not None and median <= GOAL_FRACTION) if arm.label != reference else None,
                        ratio_text=f"{100 * median:.0f} % of FIFO epochs" if median is not None else "not reached"))
    if table.get("fifo+random"):
        diffs = [table[reference][s]["best_val_r1"] - table["fifo+random"][s]["best_val_r1"] for s in table["fifo+random"]]
        rows.append(row("P3 TPE vs random (FIFO, all trials): best val R@1 difference", f"(report; {len(args.seeds)} seeds)",
                        f"TPE - random per seed {[round(d, 2) for d in diffs]}, median {statistics.median(diffs):+.2f}",
                        None, None, ratio_text=f"{statistics.median(diffs):+.2f} pt"))
    candidates = [(r["ratio"], r["benchmark"]) for r in rows[1:] if r.get("ratio") is not None and "random" not in r["benchmark"]]
    choice = min(candidates)[1] if candidates else None
    out = out_dir_for(args)
    png = plot_curves(curves, out / "p3_best_so_far.png",
                      f"{args.space} on {args.data}, {args.num_samples} trials x <= {args.max_epochs} epochs")
    settings = {"space": args.space, "data": args.data, "num_samples": args.num_samples, "max_epochs": args.max_epochs,
                "seeds": args.seeds, "max_concurrent": args.max_concurrent, "overrides": list(sets),
                "arms": [a.label for a in arms], "workdir": str(storage)}
    details = {"per_arm": table, "plot": str(png), "fastest_arm_to_target": choice}
    path = write_result(out, NAME, title="Schedulers to FIFO+TPE's answer, over search seeds", quick=args.quick,
                        rows=rows, settings=settings, details=details, load=load, started=started)
    print_rows(rows, load, path)
    print(f"fastest to target (median over seeds): {choice}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
