#!/usr/bin/env python
"""P4: Ray Tune overhead. The same N short trials in a plain Python loop vs through Tune, one at a time.

Configs: N samples of the ``aligned_loss`` space (Optuna RandomSampler, seeded) over search's base config
(``search.trial_config.base_config``: defaults + --set + --max-epochs, 1 thread per trial). Corpus and frozen
text features are prepared once and shared by both arms, as a search does.

  loop        ``train_retrieval(cfg, reporter, shared=shared)`` for each config (run before AND after
              tune; the mean counts), with a reporter that keeps what Tune keeps (each epoch's checkpoint
              directory copied to disk + the metrics): equal work
  loop-bare   the same with ``reporter=None`` (no checkpoint at all): pure compute
  tune        the search trainable (``search.trainable.build_trainable``) + search's RunConfig, FIFO, the
              same configs via BasicVariantGenerator(points_to_evaluate), 1 trial at a time, reuse_actors;
              timed around ``Tuner.fit()`` on a running Ray (starting Ray is reported separately)

Goal: tune / loop <= 1.2x (wall time). Per-trial overhead in seconds is reported too: ratio = 1 + overhead /
trial time. And CPU time (loop: this process; tune: the driver, Ray's daemons and the trial workers, sampled
with psutil): on a busy machine wall time favours the arm with more processes, CPU time does not.

    python bench/p4_tune_overhead.py
    python bench/p4_tune_overhead.py --quick
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from bench.common import (QUICK_DATA, QUICK_SETS, LoadRecord, add_common_flags, apply_quick, run_dir, out_dir_for,
                          print_rows, row, setup_environment, wait_for_quiet, write_result)
from bench.memory import ProcessTreeSampler

NAME = "p4_tune_overhead"
GOAL = 1.2
MODEL_SETS = ["hidden_dim=128", "latent_dim=128", "num_layers=2", "num_heads=4", "max_frames=100"]


class CopyReporter:
    """Keeps what a Tune trial keeps: each epoch's checkpoint dir copied into ``root`` + metrics lines."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def __call__(self, metrics: dict, checkpoint_dir: str | None) -> None:
        if checkpoint_dir:
            shutil.copytree(checkpoint_dir, self.root / f"checkpoint_{int(metrics['epoch']):06d}")
        with open(self.root / "result.json", "a", encoding="utf-8") as f:
            f.write(json.dumps(metrics) + "\n")


def sample_configs(args, search_args) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    import optuna

    from core.config import TrainConfig
    from search.trial_config import base_config
    from spaces import get_space, sample_space

    base = base_config(search_args)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=args.seed))
    samples = []
    for _ in range(args.trials):
        trial = study.ask()
        sample = sample_space(get_space(args.space), trial)
        TrainConfig.from_flat({**base, **sample})
        samples.append(sample)
        study.tell(trial, 0.0)
    return base, samples


def run_loop(base, samples, shared, root: Path | None) -> tuple[float, list[float], float]:
    """(wall s, wall s per trial, CPU s of this process) of the plain loop."""
    from core.train import train_retrieval

    per_trial, t0, cpu0 = [], time.perf_counter(), time.process_time()
    for i, sample in enumerate(samples):
        t = time.perf_counter()
        reporter = CopyReporter(root / f"trial_{i}") if root is not None else None
        train_retrieval({**base, **sample}, reporter, shared=shared)
        per_trial.append(time.perf_counter() - t)
    return time.perf_counter() - t0, per_trial, time.process_time() - cpu0


def run_tune(search_args, base, samples, shared) -> tuple[float, dict[str, Any]]:
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from search.trainable import build_trainable
    from search.tuner import build_run_config, trial_name

    tuner = tune.Tuner(
        build_trainable(search_args, shared),
        param_space=dict(base),
        tune_config=tune.TuneConfig(
            search_alg=BasicVariantGenerator(points_to_evaluate=[dict(s) for s in samples], max_concurrent=1),
            scheduler=FIFOScheduler(), num_samples=len(samples), max_concurrent_trials=1, reuse_actors=True,
            trial_name_creator=trial_name, trial_dirname_creator=trial_name),
        run_config=build_run_config(search_args, callbacks=[], param_columns=list(samples[0])),
    )
    sampler = ProcessTreeSampler()   # the driver, Ray's daemons and the trial worker(s)
    sampler.start()
    t0 = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - t0
    cpu = sampler.stop().cpu_seconds
    ran = [{k: r.config[k] for k in samples[0]} for r in grid]
    wanted = [dict(s) for s in samples]
    info = {"num_trials": len(grid), "num_errors": grid.num_errors,
            "same_configs": sorted(map(json.dumps, ran)) == sorted(map(json.dumps, wanted)),
            "epochs_reported": [int(r.metrics.get("training_iteration", 0)) for r in grid], "cpu_seconds": cpu}
    if grid.num_errors or not info["same_configs"]:
        raise RuntimeError(f"Tune arm did not run the intended trials cleanly: {info}")
    return wall, info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="aligned_loss")
    ap.add_argument("--data", default="synthetic:n=600")
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="fixed config (default: a CPU-sized TMR)")
    ap.add_argument("--workdir", type=Path, help="where checkpoints go (default $TMPDIR/mrs-bench)")
    add_common_flags(ap, retries=0)
    args = ap.parse_args(argv)
    if args.quick:
        args.data, args.trials, args.epochs = QUICK_DATA, 2, 1
    apply_quick(args)
    setup_environment()
    started = time.perf_counter()
    import search
    from core.train import prepare_shared

    from bench.tune_runs import start_local_ray

    root = run_dir(args, "p4")
    search_args = search.resolve_args({
        "space": args.space, "data": args.data, "max_epochs": args.epochs, "num_samples": args.trials,
        "max_concurrent": 1, "cpus_per_trial": 1.0, "seed": args.seed, "wandb": False, "ensemble_top_k": 0,
        "refit_top_k": 0,
        "storage": str(root), "name": "tune", "overrides": list(args.set or (QUICK_SETS if args.quick
                                                                                      else MODEL_SETS))})
    base, samples = sample_configs(args, search_args)
    shared = prepare_shared(base, progress=False)

    load = LoadRecord(wait_for_quiet(args.max_load, args.wait_load), own=1.0, max_per_core=args.max_load)
    t0 = time.perf_counter()
    started_ray = start_local_ray(num_cpus=1)   # one CPU: Tune can only ever run one trial at a time
    ray_start = time.perf_counter() - t0
    try:
        # loop, tune, loop (A-B-A): a load change during the run hits both arms alike.
        loop_a, loop_trials, cpu_a = run_loop(base, samples, shared, root / "loop-a")
        tune_wall, tune_info = run_tune(search_args, base, samples, shared)
        loop_b, _, cpu_b = run_loop(base, samples, shared, root / "loop-b")
        bare_wall, bare_trials, bare_cpu = run_loop(base, samples, shared, None)
        loop_wall, loop_cpu = (loop_a + loop_b) / 2, (cpu_a + cpu_b) / 2
    finally:
        if started_ray:
            import ray
            ray.shutdown()
    load.finish()
    ratio = tune_wall / loop_wall
    cpu_ratio = tune_info["cpu_seconds"] / loop_cpu
    overhead = (tune_wall - loop_wall) / len(samples)
    details = {"loop_seconds": loop_wall, "loop_seconds_before_after_tune": [loop_a, loop_b],
               "loop_cpu_seconds": loop_cpu, "loop_cpu_seconds_before_after_tune": [cpu_a, cpu_b],
               "loop_bare_cpu_seconds": bare_cpu, "tune_cpu_seconds": tune_info["cpu_seconds"],
               "cpu_ratio_tune_over_loop": cpu_ratio,
               "loop_trial_seconds": loop_trials, "loop_bare_seconds": bare_wall,
               "loop_bare_trial_seconds": bare_trials, "tune_fit_seconds": tune_wall, "ray_init_seconds": ray_start,
               "tune": tune_info, "ratio_tune_over_loop": ratio, "ratio_tune_over_bare_loop": tune_wall / bare_wall,
               "ratio_tune_plus_ray_init_over_bare_loop": (tune_wall + ray_start) / bare_wall,
               "overhead_seconds_per_trial": overhead,
               "mean_trial_seconds_loop": loop_wall / len(samples), "samples": samples, "workdir": str(root)}
    rows = [row("P4 Ray Tune overhead (1 trial at a time)", f"<= {GOAL:g}x plain loop",
                f"{len(samples)} trials x {args.epochs} epochs: Tune {tune_wall:.1f} s vs loop {loop_wall:.1f} s "
                f"({overhead:+.1f} s/trial; no-checkpoint loop {bare_wall:.1f} s, ray.init {ray_start:.1f} s); "
                f"CPU time {tune_info['cpu_seconds']:.0f} vs {loop_cpu:.0f} s ({cpu_ratio:.2f}x)",
                ratio, ratio <= GOAL)]
    settings = {"space": args.space, "data": args.data, "trials": args.trials, "epochs": args.epochs,
                "seed": args.seed, "overrides": list(search_args.overrides), "cpus_per_trial": 1}
    path = write_result(out_dir_for(args), NAME, title="Ray Tune overhead vs a plain loop", quick=args.quick,
                        rows=rows, settings=settings, details=details, load=load, started=started)
    print_rows(rows, load, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
