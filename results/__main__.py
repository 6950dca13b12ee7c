"""python -m results <experiment_dir> [--top N]: re-render tables, leaderboard, refit ranking and plots of a search."""
from __future__ import annotations

import argparse
import os
import sys

from core.errors import error_line
from results.errors import ResultsError
from results.refit import has_refit, summarize_refit
from results.report import write_results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m results", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("experiment_dir", help="the folder Ray Tune wrote for one search: <storage_path>/<name>")
    parser.add_argument("--top", type=int, default=10, help="leaderboard rows (default 10)")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error(f"--top {args.top}: must be >= 1 (how many leaderboard rows to print).")
    try:
        write_results(args.experiment_dir, top=args.top)
        if has_refit(args.experiment_dir):   # the configs retrained over seeds, ranked by their mean
            print()
            summarize_refit(args.experiment_dir)
    except BrokenPipeError:  # `python -m results DIR | head`: the files are written, the reader left early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (ResultsError, OSError) as exc:
        line = error_line(exc, (ResultsError,))
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
