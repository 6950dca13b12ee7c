#!/usr/bin/env python
"""Scale: what a search costs as the corpus, the number of trials and W&B grow, measured side by side.

Every part runs ``run_search.py`` as a subprocess (as a user would), with a fresh experiment folder, and samples
the PSS of the driver and of every process it started (Ray daemons, trial workers, W&B) every 0.5 s. PSS splits a
shared page (Ray's object store, a memory-mapped cache, libraries) among the processes that map it, so a corpus
that trials read from shared memory counts once, however many trials map it.

  (a) memory   per-trial-worker, driver and total peak PSS at 1x and 4x the corpus (``synthetic:n=2400`` and
               ``n=9600``, default model, 2 concurrent one-epoch trials, warm dataset/text cache): the slope of
               per-trial PSS against corpus bytes should be ~0.
  (b) wandb    64 smoke trials x 3 epochs (FIFO, 2 concurrent): wall and tuning-loop time with W&B offline vs
               ``--no-wandb``; Ray's "operation took" warnings; W&B logging actors seen.
  (c) state    64 / 256 / 1,024 tiny trials x 2 epochs (FIFO): tuning-loop seconds per trial and Tune's
               experiment-state bytes per trial, checkpoint bytes per trial.
  (d) main     README command 1 (``run_search.py --space aligned_loss``, cold cache): wall and peak PSS.

The tuning loop is read from the trials' own records (first trial start to last record update), so it excludes
Ray's start and the post-processing, and it reads the same way for older versions of the code (``--repo``).

    python bench/scale.py                        # all parts (~40 min on 2 cores)
    python bench/scale.py --parts a c            # some of them
    python bench/scale.py --repo /tmp/old-clone  # measure another checkout's run_search.py (before/after)
    python bench/scale.py --quick                # code-path check: tiny sizes, seconds
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (QUICK_DATA, QUICK_SETS, REPO, LoadRecord, add_common_flags, apply_quick, out_dir_for,
                          print_rows, row, run_dir, setup_environment, wait_for_quiet, write_result)
from bench.memory import ProcessTreeSampler

NAME = "scale"
MIB = 2**20
COMMON = ["--space", "aligned_loss", "--scheduler", "fifo", "--max-concurrent", "2", "--refit-top-k", "0",
          "--ensemble-top-k", "0"]
SLOW_OP = re.compile(r"operation took [\d.]+ s")
# goals of the scale issue
GOAL_EXTRA_PER_TRIAL_GB = 0.5
GOAL_WANDB_RATIO = 1.15
GOAL_STATE_KB = 8.0
GOAL_LOOP_RATIO = 1.2
GOAL_MAIN_S, GOAL_MAIN_GB = 300.0, 4.0


def run_measured(repo: Path, flags: list[str], cwd: Path, env: dict[str, str], interval: float,
                 label: str) -> dict[str, Any]:
    """One ``run_search.py`` with the process tree sampled; its log, wall time and memory by role."""
    cwd.mkdir(parents=True, exist_ok=True)
    log_path = cwd / f"{label}.log"
    command = [sys.executable, str(repo / "run_search.py"), *flags]
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = ProcessTreeSampler(proc.pid, interval)
        sampler.start()
        rc = proc.wait()
        sampler.stop()
    wall = time.perf_counter() - t0
    text = log_path.read_text(encoding="utf-8", errors="replace")
    if rc != 0:
        print(text[-4000:])
        raise SystemExit(f"{label}: run_search.py exited with {rc}; log: {log_path}")
    roles, private = sampler.peaks_by_role(), sampler.peaks_by_role("peak_uss")
    return {"label": label, "wall_s": wall, "rc": rc, "log": str(log_path),
            "total_peak_pss_mib": sampler.peak_bytes / MIB, "peaks_by_role_mib": roles,
            "peak_uss_by_role_mib": private,
            "driver_peak_pss_mib": (roles.get("driver") or [0.0])[0],
            "driver_median_pss_mib": sampler.median_pss("driver"),
            "trial_worker_peak_pss_mib": (roles.get("trial worker") or [0.0])[0],
            "trial_worker_peak_uss_mib": (private.get("trial worker") or [0.0])[0],
            "logging_actors_seen": len(roles.get("W&B logging actor", [])),
            "slow_operation_warnings": len(SLOW_OP.findall(text)),
            "memory_kind": "PSS" if sampler.pss_available else "RSS", "cpu_s": sampler.cpu_seconds,
            "log_tail": text[-1500:]}


def experiment_facts(experiment: Path) -> dict[str, Any]:
    """Trials, tuning-loop span (trial records), Tune state bytes and checkpoint bytes of one experiment."""
    records = []
    for path in experiment.glob("*/trial.json"):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    starts = [r["start_time"] for r in records if isinstance(r.get("start_time"), (int, float))]
    ends = [r["updated"] for r in records if isinstance(r.get("updated"), (int, float))]
    states = sorted(experiment.glob("experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    state_bytes = states[-1].stat().st_size if states else 0
    checkpoints = [d for d in experiment.glob("*/checkpoint_*") if d.is_dir()]
    ckpt_bytes = sum(f.stat().st_size for d in checkpoints for f in d.rglob("*") if f.is_file())
    n = max(len(records), 1)
    return {"trials": len(records), "tuning_loop_s": (max(ends) - min(starts)) if starts and ends else None,
            "state_bytes": state_bytes, "state_kb_per_trial": state_bytes / 1024 / n,
            "checkpoints": len(checkpoints), "checkpoint_bytes": ckpt_bytes,
            "checkpoint_mib_per_trial": ckpt_bytes / MIB / n,
            "trial_json_kb_per_trial": sum(p.stat().st_size for p in experiment.glob("*/trial.json")) / 1024 / n}


def corpus_mib(cache: Path) -> float:
    """Bytes of the cached corpus frames (the largest frames.npy in the cache)."""
    sizes = [p.stat().st_size for p in cache.glob("corpus/*/frames.npy")]
    return max(sizes, default=0) / MIB


def warm_cache(repo: Path, flags: list[str], env: dict[str, str], cwd: Path) -> None:
    """Parse the corpus and compute its frozen text features once, outside the measured run."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from search.cli import args_from_argv; "
            "from search.trial_config import preflight; from search.run import prepare_shared_inputs; "
            "args = args_from_argv(sys.argv[2:]); base, cols = preflight(args); "
            "prepare_shared_inputs(base, cols, args.eval)")
    subprocess.run([sys.executable, "-c", code, str(repo), *flags], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL)


# ----------------------------------------------------------------------------- parts

# --quick measures the search alone: --smoke-test would refit and ensemble after each of the seven searches (~12 s
# each on 2 cores), and what (a)-(c) measure is the search (P5 --quick runs the refit and ensemble).
QUICK_SEARCH_ONLY = ["--refit-top-k", "0", "--ensemble-top-k", "0"]

def part_memory(args, repo: Path, root: Path, env: dict[str, str]) -> tuple[list[dict], dict]:
    sizes = [120, 240] if args.quick else [2400, 9600]
    extra = (["--smoke-test", *QUICK_SEARCH_ONLY, *[x for s in QUICK_SETS for x in ("--set", s)]] if args.quick else [])
    runs = []
    for n in sizes:
        cwd = root / f"memory-{n}"
        cache = cwd / "cache"
        run_env = {**env, "MOTION_SEARCH_CACHE": str(cache)}
        flags = [*COMMON, *extra, "--data", f"synthetic:n={n}", "--num-samples", "1" if args.quick else "2",
                 "--max-epochs", "1",
                 "--no-wandb", "--storage", str(cwd / "experiments"), "--name", f"mem-{n}"]
        if not args.quick:   # --quick checks the code path: the run may build its cache itself
            warm_cache(repo, flags, run_env, cwd.parent)
        run = run_measured(repo, flags, cwd, run_env, args.interval, f"memory-{n}")
        run.update(n=n, corpus_mib=corpus_mib(cache), **experiment_facts(cwd / "experiments" / f"mem-{n}"))
        runs.append(run)
        print(f"  (a) n={n}: corpus {run['corpus_mib']:.0f} MiB, trial worker {run['trial_worker_peak_pss_mib']:.0f} "
              f"MiB PSS ({run['trial_worker_peak_uss_mib']:.0f} private), driver {run['driver_peak_pss_mib']:.0f} MiB "
              f"(median {run['driver_median_pss_mib']:.0f}), total {run['total_peak_pss_mib']:.0f} MiB PSS", flush=True)
    small, large = runs[0], runs[-1]
    d_corpus = large["corpus_mib"] - small["corpus_mib"]

    def slope_of(key: str) -> float:
        return (large[key] - small[key]) / d_corpus if d_corpus else float("nan")

    slope, private_slope = slope_of("trial_worker_peak_pss_mib"), slope_of("trial_worker_peak_uss_mib")
    total_slope = slope_of("total_peak_pss_mib")
    extra_gb = (large["trial_worker_peak_pss_mib"] - small["trial_worker_peak_pss_mib"]) / 1024
    driver_over = (large["driver_peak_pss_mib"] - large["corpus_mib"]) / 1024
    rows = [
        row("Scale (a) trial-worker peak PSS, 1x -> 4x corpus", "slope ~0; <= +0.5 GB beyond the model",
            f"{small['trial_worker_peak_pss_mib']:.0f} -> {large['trial_worker_peak_pss_mib']:.0f} MiB for a corpus of "
            f"{small['corpus_mib']:.0f} -> {large['corpus_mib']:.0f} MiB (slope {slope:+.3f} MiB per corpus MiB; its "
            f"private part {small['trial_worker_peak_uss_mib']:.0f} -> {large['trial_worker_peak_uss_mib']:.0f} MiB, "
            f"slope {private_slope:+.3f}); all processes {small['total_peak_pss_mib']:.0f} -> "
            f"{large['total_peak_pss_mib']:.0f} MiB ({total_slope:.2f} corpus copies)",
            slope, extra_gb <= GOAL_EXTRA_PER_TRIAL_GB, ratio_text=f"{slope:+.3f}/MiB"),
        row("Scale (a) driver peak PSS at 4x corpus", "<= corpus + 1.5 GB",
            f"{large['driver_peak_pss_mib']:.0f} MiB, corpus {large['corpus_mib']:.0f} MiB "
            f"(corpus + {driver_over:.2f} GB; median over the run {large['driver_median_pss_mib']:.0f} MiB)",
            driver_over, driver_over <= 1.5, ratio_text=f"corpus + {driver_over:.2f} GB"),
        row("Scale (a) checkpoint bytes per trial, default model", "(report)",
            f"{large['checkpoint_mib_per_trial']:.1f} MiB per one-epoch trial", None, None),
    ]
    return rows, {"runs": runs, "slope_mib_per_corpus_mib": slope}


def part_wandb(args, repo: Path, root: Path, env: dict[str, str]) -> tuple[list[dict], dict]:
    trials, epochs = (2, 1) if args.quick else (64, 3)
    data = ["--data", QUICK_DATA] if args.quick else []
    runs: dict[str, list[dict]] = {"no-wandb": [], "wandb-offline": []}
    order = ["no-wandb", "wandb-offline"] * args.repeats
    for i, arm in enumerate(order):
        cwd = root / f"wandb-{i}-{arm}"
        run_env = {**env, "MOTION_SEARCH_CACHE": str(root / "cache-smoke")}
        run_env.pop("WANDB_API_KEY", None)
        run_env["WANDB_MODE"] = "offline"
        flags = [*COMMON, "--smoke-test", *data, *(QUICK_SEARCH_ONLY if args.quick else []),
                 "--num-samples", str(trials), "--max-epochs", str(epochs),
                 "--storage", str(cwd / "experiments"), "--name", arm, *(["--no-wandb"] if arm == "no-wandb" else [])]
        if i == 0 and not args.quick:
            warm_cache(repo, flags, run_env, root)
        run = run_measured(repo, flags, cwd, run_env, args.interval, arm)
        run.update(arm=arm, **experiment_facts(cwd / "experiments" / arm))
        run["wandb_run_dirs"] = len(list((cwd / "experiments" / arm / "wandb").glob("offline-run-*")))
        runs[arm].append(run)
        print(f"  (b) {arm}: wall {run['wall_s']:.1f} s, tuning loop {run['tuning_loop_s']:.1f} s, "
              f"{run['slow_operation_warnings']} 'operation took' warnings, {run['logging_actors_seen']} logging actors, "
              f"{run['wandb_run_dirs']} W&B runs", flush=True)

    def median(arm: str, key: str) -> float:
        values = sorted(r[key] for r in runs[arm])
        return values[len(values) // 2]

    wall = median("wandb-offline", "wall_s") / median("no-wandb", "wall_s")
    loop = median("wandb-offline", "tuning_loop_s") / median("no-wandb", "tuning_loop_s")
    warnings = max(r["slow_operation_warnings"] for r in runs["wandb-offline"])
    actors = max(r["logging_actors_seen"] for r in runs["wandb-offline"])
    w_runs = min(r["wandb_run_dirs"] for r in runs["wandb-offline"])
    rows = [row(f"Scale (b) W&B offline / --no-wandb, {trials} smoke trials x {epochs} epochs",
                f"<= {GOAL_WANDB_RATIO}x wall, no 'operation took', no logging actors",
                f"wall {median('wandb-offline', 'wall_s'):.0f} vs {median('no-wandb', 'wall_s'):.0f} s, tuning loop "
                f"{median('wandb-offline', 'tuning_loop_s'):.0f} vs {median('no-wandb', 'tuning_loop_s'):.0f} s "
                f"({loop:.2f}x); {warnings} slow-operation warnings, {actors} logging actors, {w_runs} W&B runs "
                f"(median of {args.repeats})",
                wall, wall <= GOAL_WANDB_RATIO and warnings == 0 and actors == 0)]
    return rows, {"runs": runs, "wall_ratio": wall, "tuning_loop_ratio": loop}


def part_state(args, repo: Path, root: Path, env: dict[str, str]) -> tuple[list[dict], dict]:
    counts = [2, 4] if args.quick else [64, 256, 1024]
    runs = []
    for n in counts:
        cwd = root / f"state-{n}"
        run_env = {**env, "MOTION_SEARCH_CACHE": str(root / "cache-tiny")}
        flags = [*COMMON, "--smoke-test", "--data", QUICK_DATA, *(QUICK_SEARCH_ONLY if args.quick else []),
                 *[x for s in QUICK_SETS for x in ("--set", s)],
                 "--num-samples", str(n), "--max-epochs", "2", "--no-wandb", "--storage", str(cwd / "experiments"),
                 "--name", f"state-{n}"]
        if n == counts[0] and not args.quick:
            warm_cache(repo, flags, run_env, root)
        run = run_measured(repo, flags, cwd, run_env, args.interval, f"state-{n}")
        run.update(n=n, **experiment_facts(cwd / "experiments" / f"state-{n}"))
        run["loop_s_per_trial"] = run["tuning_loop_s"] / max(run["trials"], 1)
        runs.append(run)
        print(f"  (c) {n} trials: tuning loop {run['tuning_loop_s']:.1f} s ({run['loop_s_per_trial']:.3f} s/trial), "
              f"state {run['state_kb_per_trial']:.1f} KB/trial, checkpoints {run['checkpoint_mib_per_trial']:.2f} "
              f"MiB/trial", flush=True)
    first, last = runs[0], runs[-1]
    loop_ratio = last["loop_s_per_trial"] / first["loop_s_per_trial"]
    rows = [
        row(f"Scale (c) Tune state per trial at {last['n']} trials", f"<= {GOAL_STATE_KB:.0f} KB",
            ", ".join(f"{r['n']}: {r['state_kb_per_trial']:.1f} KB ({r['state_bytes'] / MIB:.1f} MiB)" for r in runs),
            last["state_kb_per_trial"], last["state_kb_per_trial"] <= GOAL_STATE_KB,
            ratio_text=f"{last['state_kb_per_trial']:.1f} KB"),
        row(f"Scale (c) tuning loop per trial, {last['n']} vs {first['n']} trials", f"<= {GOAL_LOOP_RATIO}x",
            ", ".join(f"{r['n']}: {r['loop_s_per_trial']:.3f} s" for r in runs), loop_ratio,
            loop_ratio <= GOAL_LOOP_RATIO),
        row("Scale (c) checkpoint bytes per trial, tiny model", "(report)",
            f"{last['checkpoint_mib_per_trial']:.2f} MiB per 2-epoch trial", None, None),
    ]
    return rows, {"runs": runs, "loop_ratio": loop_ratio}


def part_main(args, repo: Path, root: Path, env: dict[str, str]) -> tuple[list[dict], dict]:
    cwd = root / "main"
    run_env = {**env, "MOTION_SEARCH_CACHE": str(cwd / "cache")}   # cold: as on a fresh machine
    flags = (["--space", "aligned_loss", "--smoke-test", "--data", QUICK_DATA, "--num-samples", "1",
              "--max-epochs", "1", "--no-wandb", "--refit-top-k", "0", "--ensemble-top-k", "0"] if args.quick
             else ["--space", "aligned_loss"])   # --quick: the search alone (P5 --quick runs the refit and ensemble)
    run = run_measured(repo, flags, cwd, run_env, args.interval, "main")
    best = re.search(r"best trial \S+: recall_at_1=([\d.]+)", (cwd / "main.log").read_text())
    run["best_recall_at_1"] = float(best.group(1)) if best else None
    gb = run["total_peak_pss_mib"] / 1024
    rows = [row("Scale (d) README main job, cold cache", f"<= {GOAL_MAIN_S / 60:.0f} min and <= {GOAL_MAIN_GB:.0f} GB PSS",
                f"{run['wall_s']:.0f} s, peak PSS {gb:.2f} GB (driver {run['driver_peak_pss_mib']:.0f} MiB, trial "
                f"worker {run['trial_worker_peak_pss_mib']:.0f} MiB); best val R@1 {run['best_recall_at_1']}",
                run["wall_s"] / GOAL_MAIN_S, run["wall_s"] <= GOAL_MAIN_S and gb <= GOAL_MAIN_GB,
                ratio_text=f"{run['wall_s'] / GOAL_MAIN_S:.2f} of 5 min")]
    return rows, {"run": run}


PARTS = {"a": part_memory, "b": part_wandb, "c": part_state, "d": part_main}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", nargs="+", choices=sorted(PARTS), default=sorted(PARTS))
    ap.add_argument("--repo", type=Path, default=REPO, help="checkout whose run_search.py is measured (default: this one)")
    ap.add_argument("--repeats", type=int, default=1, help="(b): runs per arm, interleaved (default 1)")
    ap.add_argument("--interval", type=float, default=0.5, help="memory sampling period, s")
    ap.add_argument("--workdir", type=Path, help="where experiments and caches go (default $TMPDIR/mrs-bench/scale/<time>)")
    ap.add_argument("--name", default=NAME, help="result file name (default scale; e.g. scale_before)")
    add_common_flags(ap, retries=0)
    args = ap.parse_args(argv)
    apply_quick(args)
    setup_environment()
    started = time.perf_counter()
    root = run_dir(args, "scale")
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(args.repo.resolve())}
    load = LoadRecord(wait_for_quiet(args.max_load, args.wait_load), own=2.0, max_per_core=args.max_load)
    rows, details = [], {}
    for part in args.parts:
        print(f"scale part ({part}) ...", flush=True)
        part_rows, details[part] = PARTS[part](args, args.repo.resolve(), root, env)
        rows += part_rows
    load.finish()
    commit = subprocess.run(["git", "-C", str(args.repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(args.repo), "status", "--porcelain"], capture_output=True,
                           text=True).stdout.strip()
    settings = {"parts": args.parts, "repo": str(args.repo), "commit": commit + ("+changes" if dirty else ""),
                "workdir": str(root), "sample_interval_s": args.interval, "repeats": args.repeats}
    path = write_result(out_dir_for(args), args.name, title="Scale: memory, W&B, Tune state, main job",
                        quick=args.quick, rows=rows, settings=settings, details=details, load=load, started=started)
    print_rows(rows, load, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
