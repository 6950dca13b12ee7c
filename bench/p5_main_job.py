#!/usr/bin/env python
"""P5: the README's main job, ``python run_search.py --space aligned_loss`` with its defaults.

Runs it as a subprocess exactly as a user would (cwd = a fresh folder, so ``./experiments`` lands there; an
empty dataset/text-feature cache, as on a fresh machine, unless --warm-cache) and measures:

  wall time   process start to exit (goal <= 10 min on 2 cores)
  CPU time    user + system seconds of every process of the tree; / cores = the wall it would need at best
              on an idle machine (the shared development machine is rarely idle: see the load columns)
  peak memory the largest sum of PSS over the driver and ALL its descendants (Ray's GCS, raylet, workers,
              W&B service, ...), sampled with psutil every 0.5 s: shared pages (libraries, Ray's object
              store) split among the processes that map them, i.e. what the job really occupies. The RSS
              sum (every shared page counted once per process) is kept in the details for comparison.

    python bench/p5_main_job.py
    python bench/p5_main_job.py --quick      # run_search.py --smoke-test, 2 one-epoch trials, tiny corpus, no W&B
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (QUICK_DATA, REPO, LoadRecord, add_common_flags, apply_quick, run_dir, out_dir_for,
                          usable_cores, print_rows, row, setup_environment, wait_for_quiet, write_result)
from bench.memory import ProcessTreeSampler

NAME = "p5_main_job"
GOAL_SECONDS = 600.0
QUICK_FLAGS = ["--smoke-test", "--data", QUICK_DATA, "--num-samples", "2", "--max-epochs", "1", "--no-wandb"]


def parse_log(text: str) -> dict[str, Any]:
    def find(pattern: str, cast=str):
        m = re.search(pattern, text)
        return cast(m.group(1)) if m else None

    return {
        "shared_inputs_seconds": find(r"shared inputs .*? ready in ([\d.]+)s", float),
        "search_line": find(r"(=== search .*? ===)"),
        "search_seconds": find(r"=== search .*?; search (\d+)s", float),
        "refit_seconds": find(r"=== search .*?, refit (\d+)s", float),
        "trials": find(r"=== search .*?: (\d+) trials", int),
        "errored": find(r"(\d+) errored", int),
        "best_line": find(r"(best trial \S+: recall_at_1=.*)"),
        "best_recall_at_1": find(r"best trial \S+: recall_at_1=([\d.]+)", float),
        "experiment": find(r"^experiment: (.+)$".replace("^", "(?m)^")),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warm-cache", action="store_true",
                    help="reuse the default dataset/text cache instead of an empty one (a second run)")
    ap.add_argument("--interval", type=float, default=0.5, help="memory sampling period, s")
    ap.add_argument("--workdir", type=Path, help="cwd of the job (default $TMPDIR/mrs-bench/p5/<time>)")
    add_common_flags(ap, retries=0)
    args = ap.parse_args(argv)
    apply_quick(args)
    setup_environment()
    started = time.perf_counter()
    cwd = run_dir(args, "p5")
    cwd.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if not args.warm_cache:
        env["MOTION_SEARCH_CACHE"] = str(cwd / "cache")
    command = [sys.executable, str(REPO / "run_search.py"), "--space", "aligned_loss",
               *(QUICK_FLAGS if args.quick else [])]
    log_path = cwd / "run_search.log"
    load = LoadRecord(wait_for_quiet(args.max_load, args.wait_load), own=2.0, max_per_core=args.max_load)
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = ProcessTreeSampler(proc.pid, args.interval)
        sampler.start()
        rc = proc.wait()
        sampler.stop()
    wall = time.perf_counter() - t0
    load.finish()
    text = log_path.read_text(encoding="utf-8", errors="replace")
    if rc != 0:
        print(text[-4000:])
        raise SystemExit(f"run_search.py exited with {rc}; log: {log_path}")
    parsed = parse_log(text)
    peak_mib = sampler.peak_bytes / 2**20
    kind = "PSS" if sampler.pss_available else "RSS"
    cpu_s = sampler.cpu_seconds
    alone = cpu_s / usable_cores()   # the wall it needs at best on an idle machine with these cores
    rows = [row("P5 README main job: wall time", f"<= {GOAL_SECONDS / 60:.0f} min on {usable_cores()} cores",
                f"{wall:.0f} s ({wall / 60:.1f} min), peak {kind} sum {peak_mib:.0f} MiB over {sampler.peak_processes} "
                f"processes; {cpu_s:.0f} CPU-s (>= {alone:.0f} s wall on idle cores); best val R@1 "
                f"{parsed['best_recall_at_1']}", wall / GOAL_SECONDS, wall <= GOAL_SECONDS,
                ratio_text=f"{wall / GOAL_SECONDS:.2f} of budget")]
    details = {"wall_seconds": wall, "cpu_seconds": cpu_s, "idle_machine_wall_lower_bound_s": alone,
               "peak_memory_kind": kind, "peak_pss_sum_mib": peak_mib,
               "peak_rss_sum_mib": sampler.peak_rss_bytes / 2**20, "peak_processes": sampler.peak_processes,
               "max_processes": sampler.max_processes, "memory_samples": sampler.samples,
               f"peak_{kind.lower()}_by_process_name_mib": sampler.peak_breakdown, **parsed, "log": str(log_path),
               "log_tail": text[-3000:]}
    settings = {"command": " ".join(["python", "run_search.py", *command[2:]]), "cwd": str(cwd),
                "cache": "warm (default cache)" if args.warm_cache else "cold (empty MOTION_SEARCH_CACHE)",
                "sample_interval_s": args.interval}
    path = write_result(out_dir_for(args), NAME, title="README main job: wall time and peak memory",
                        quick=args.quick, rows=rows, settings=settings, details=details, load=load, started=started)
    print(parsed.get("search_line") or "")
    print_rows(rows, load, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
