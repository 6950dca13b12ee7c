"""``python -m core.data --data SPEC [--format F]``: load (or build and cache) a dataset, print its summary.

Exit status 2 with one clear message on bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from . import DataError, load_corpus


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.data", description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="synthetic", help="'synthetic[:n=..,people=..,seed=..]' or a path")
    ap.add_argument("--format", default=None,
                    help="humanml3d | kitml | tmr | folder | joints | bvh | bandai (default: auto-detect)")
    ap.add_argument("--cache-dir", default=None, help="processed-dataset cache (default ~/.cache/motion-retrieval-search)")
    ap.add_argument("--refresh", action="store_true", help="rebuild even if a cache entry exists")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        corpus = load_corpus(args.data, args.format, args.cache_dir, refresh=args.refresh)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = corpus.summary()
    summary["load_seconds"] = round(time.perf_counter() - t0, 3)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"dataset   {summary['name']}")
    print(f"motions   {summary['motions']}   captions {summary['captions']} "
          f"({summary['captions_per_motion']} per motion)   label groups {summary['label_groups']}")
    print(f"features  D={summary['D']} ({summary['feature_kind']}, mirror={'yes' if summary['can_mirror'] else 'no'})"
          f" at {summary['fps']:g} fps")
    lf = summary["length_frames"]
    print(f"length    frames min {lf['min']} / mean {lf['mean']} / median {lf['median']:g} / max {lf['max']}"
          f"   (mean {summary['length_seconds_mean']} s; {summary['frames']} frames in all)")
    print("splits    " + "   ".join(f"{k} {v}" for k, v in summary["splits"].items()))
    print("examples  " + "\n          ".join(summary["example_captions"]))
    print(f"cache     {summary['content_hash']}   loaded in {summary['load_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
