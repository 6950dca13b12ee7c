#!/usr/bin/env python
"""Run every benchmark (one after the other: they would disturb each other) and regenerate SUMMARY.md.

    python bench/run_all.py                      # everything, ~2 h on 2 cores
    python bench/run_all.py --only p1 p2         # a subset (names or prefixes)
    python bench/run_all.py --summary-only       # just rebuild SUMMARY.md (+ README's table) from the JSON files
    python bench/run_all.py --quick              # seconds-long code-path check into a temp folder
    python bench/run_all.py --quick --jobs 2     # the same, two scripts at a time (the test suite's way)

Order: P1, P1b, P2, P4, P3, P5, scale, kill points, ensemble (reuses P5's experiment as search seed 0), CI width, ensemble
diversity, encoders, retrieval index, gpu (exits cleanly without CUDA).
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import argparse
import subprocess
from concurrent.futures import ThreadPoolExecutor
import sys
import time

from bench.common import BENCH_DIR, REPO, RESULTS_DIR, out_dir_for
from bench.summary import update_readme, write_summary

SCRIPTS = ("p1_step_throughput", "p1b_cpu_bf16", "p2_frozen_text", "p4_tune_overhead", "p3_asha_fifo_tpe", "p5_main_job",
           "scale", "kill_points", "ensemble_vs_member", "ci_width", "ensemble_diversity", "encoders", "retrieval_index",
           "gpu")


def selected(only: list[str] | None, skip: list[str] | None) -> list[str]:
    def match(name: str, keys: list[str]) -> bool:
        return any(name == k or name.startswith(k) for k in keys)

    names = [s for s in SCRIPTS if not only or match(s, only)]
    return [s for s in names if not skip or not match(s, skip)]


# ensemble_vs_member reads P5's experiment: it runs after P5, in the same stream.
AFTER = {"ensemble_vs_member": "p5_main_job"}


def split_streams(names: list[str], jobs: int) -> list[list[str]]:
    """``jobs`` lists of scripts, each run in order; scale (the longest --quick run by far, ~half of the total) gets
    a stream of its own when there are two or more."""
    if jobs <= 1 or len(names) <= 1:
        return [names]
    streams: list[list[str]] = [[] for _ in range(jobs)]
    alone = "scale" in names
    if alone:
        streams[0].append("scale")
    rest = [n for n in names if n != "scale"]
    for i, name in enumerate(rest):
        streams[(1 + i % (jobs - 1)) if alone else i % jobs].append(name)
    for name, before in AFTER.items():   # keep a dependent script behind the one it reads
        holder = next((s for s in streams if before in s), None)
        owner = next((s for s in streams if name in s), None)
        if holder is not None and owner is not None and holder is not owner:
            owner.remove(name)
            holder.append(name)
    return [s for s in streams if s]


def run_stream(names: list[str], out, quick: bool, tagged: bool) -> list[str]:
    """Each script in turn as its own process; returns those that failed. ``tagged``: streams run side by side, so
    their output is kept per script and printed whole when it ends."""
    failed = []
    for name in names:
        cmd = [sys.executable, str(BENCH_DIR / f"{name}.py"), "--out", str(out)]
        if quick:
            cmd.append("--quick")
            if name == "gpu":
                cmd.append("--allow-cpu")
        t0 = time.perf_counter()
        if tagged:
            proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            rc = proc.returncode
            print(f"\n### {name}: {' '.join(cmd[1:])}\n{proc.stdout}", flush=True)
        else:
            print(f"\n### {name}: {' '.join(cmd[1:])}", flush=True)
            rc = subprocess.call(cmd, cwd=REPO)
        print(f"### {name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc != 0:
            failed.append(name)
    return failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", help="benchmarks to run (names or prefixes, e.g. p1 p3 ensemble)")
    ap.add_argument("--skip", nargs="+", help="benchmarks to leave out")
    ap.add_argument("--quick", action="store_true", help="each script's --quick mode, results into a temp folder")
    ap.add_argument("--out", help="results folder (default bench/results; --quick: a temp folder)")
    ap.add_argument("--summary-only", action="store_true", help="only regenerate SUMMARY.md")
    ap.add_argument("--jobs", type=int, default=1,
                    help="--quick only: scripts run at a time (measurements stay one at a time: they would disturb "
                         "each other)")
    args = ap.parse_args(argv)
    if args.jobs < 1 or (args.jobs > 1 and not args.quick):
        ap.error(f"--jobs {args.jobs}: 1, or more with --quick only (a measurement runs alone)")
    out = out_dir_for(args)
    failed = []
    if not args.summary_only:
        streams = split_streams(selected(args.only, args.skip), args.jobs)
        with ThreadPoolExecutor(len(streams) or 1) as pool:
            for stream_failed in pool.map(lambda names: run_stream(names, out, args.quick, args.jobs > 1), streams):
                failed += stream_failed
    path = write_summary(out, include_quick=args.quick)
    if not args.quick and out.resolve() == RESULTS_DIR.resolve():
        update_readme(BENCH_DIR / "README.md", out)   # its "last measured" table
    print(f"\n{path.read_text(encoding='utf-8')}\nwrote {path}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
