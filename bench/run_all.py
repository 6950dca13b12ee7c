#!/usr/bin/env python
"""Run every benchmark (one after the other: they would disturb each other) and regenerate SUMMARY.md.

    python bench/run_all.py                      # everything, ~2 h on 2 cores
    python bench/run_all.py --only p1 p2         # a subset (names or prefixes)
    python bench/run_all.py --summary-only       # just rebuild SUMMARY.md (+ README's table) from the JSON files
    python bench/run_all.py --quick              # seconds-long code-path check into a temp folder

Order: P1, P1b, P2, P4, P3, P5, scale, kill points, ensemble (reuses P5's experiment as search seed 0), CI width, ensemble
diversity, gpu (exits cleanly without CUDA).
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import argparse
import subprocess
import sys
import time

from bench.common import BENCH_DIR, REPO, RESULTS_DIR, out_dir_for
from bench.summary import update_readme, write_summary

SCRIPTS = ("p1_step_throughput", "p1b_cpu_bf16", "p2_frozen_text", "p4_tune_overhead", "p3_asha_fifo_tpe", "p5_main_job",
           "scale", "kill_points", "ensemble_vs_member", "ci_width", "ensemble_diversity", "encoders", "gpu")


def selected(only: list[str] | None, skip: list[str] | None) -> list[str]:
    def match(name: str, keys: list[str]) -> bool:
        return any(name == k or name.startswith(k) for k in keys)

    names = [s for s in SCRIPTS if not only or match(s, only)]
    return [s for s in names if not skip or not match(s, skip)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", help="benchmarks to run (names or prefixes, e.g. p1 p3 ensemble)")
    ap.add_argument("--skip", nargs="+", help="benchmarks to leave out")
    ap.add_argument("--quick", action="store_true", help="each script's --quick mode, results into a temp folder")
    ap.add_argument("--out", help="results folder (default bench/results; --quick: a temp folder)")
    ap.add_argument("--summary-only", action="store_true", help="only regenerate SUMMARY.md")
    args = ap.parse_args(argv)
    out = out_dir_for(args)
    failed = []
    if not args.summary_only:
        for name in selected(args.only, args.skip):
            cmd = [sys.executable, str(BENCH_DIR / f"{name}.py"), "--out", str(out)]
            if args.quick:
                cmd.append("--quick")
                if name == "gpu":
                    cmd.append("--allow-cpu")
            print(f"\n### {name}: {' '.join(cmd[1:])}", flush=True)
            t0 = time.perf_counter()
            rc = subprocess.call(cmd, cwd=REPO)
            print(f"### {name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
            if rc != 0:
                failed.append(name)
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
