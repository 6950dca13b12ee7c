"""Ensemble of a search's models (refit runs or top trials): every fusion studied, the best kept only if it helps.

    python run_ensemble.py EXPERIMENT_DIR                      # auto: refit members, every fusion reported
    python run_ensemble.py EXPERIMENT_DIR --method rrf --weighting val --select all --members search --top-k 5
    python run_ensemble.py EXPERIMENT_DIR --query "a person hands an object to another" [--split test]
    python run_ensemble.py path/to/trial/checkpoint_000004 --query "a person waves"   # one model
    python run_ensemble.py --smoke-test [DIR]   # trains 3 tiny members on synthetic data, builds, queries
    python run_ensemble.py EXPERIMENT_DIR --eval-data /data/bvh --eval-format bvh   # + another dataset's test split
    python run_ensemble.py EXPERIMENT_DIR --index synthetic:n=10000    # encode a library once: EXP/index/<name>/
    python run_ensemble.py EXPERIMENT_DIR --index synthetic:n=10000 --query "two people hug" [--model MEMBER_ID]
    python run_ensemble.py EXPERIMENT_DIR --serve [--port 8765]       # the retrieval page, until Ctrl+C

Builds ``EXPERIMENT_DIR/ensemble/`` (manifest.json, metrics.json, predictions_test.csv,
members_vs_ensemble.png) and prints members and fusions on val and test with 95 % CIs and the paired
gain over the best member.  With --method auto (the default) a fusion is kept only when its val gain
is decided (paired CI above 0); otherwise the ensemble is the best member and it says so.
run_search.py does the same automatically after a search (--ensemble-top-k, 0 = off).  Asking for
more members than there are finished trials is an error here unless --allow-fewer.  --eval-data SPEC
[--eval-format F] [--eval-data-split test|val|all] also scores every member and fusion on another dataset of
the same feature layout (core/crossdata.py; reported, never chosen on).  --index SPEC encodes a library (a data
spec; --split picks one split, default every motion) with every model into an on-disk index that --query and
--serve then search in milliseconds (results/motion_index.py: exact; Borda and RRF rank the whole library, or with
--candidates C rerank each model's top C only, approximate).  --serve starts a local page
(results/page.py) showing the top motions of a query animated, over the val/test split and every index built.
Exit status: 0 ok, 2 bad input.  See results/ensemble.py, results/fusion.py and core/ensemble.py (methods, ties).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from .demo_experiment import SMOKE_BASE, SMOKE_DATA, SMOKE_MEMBERS, write_demo_experiment


def _weights(values: Sequence[str] | None) -> list[float] | None:
    if not values:
        return None
    parts = [p for v in values for p in v.replace(",", " ").split()]
    try:
        return [float(p) for p in parts]
    except ValueError:
        print(f"run_ensemble.py: error: --weights {' '.join(values)}: expected numbers, one per member in rank "
              "order (e.g. --weights 2 1 1).", file=sys.stderr)
        raise SystemExit(2) from None   # exit status 2 = bad input, as for every other error


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from core.crossdata import add_eval_data_flags
    from core.data.splits import ALL_MOTIONS
    from core.ensemble import METHODS
    from core.index import BACKENDS
    from results.retrieval_models import ENSEMBLE
    from results.ensemble import SELECTIONS
    from results.ensemble_members import SOURCES
    from results.fusion import WEIGHTINGS

    ap = argparse.ArgumentParser(prog="run_ensemble.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("target", nargs="?", help="experiment dir (or, with --query, a checkpoint dir); "
                                              "with --smoke-test: where to write the demo (default: a temp dir)")
    ap.add_argument("--top-k", type=int, default=5,
                    help="members: the top K search trials by val R@1, or the refit runs of its top K configs (default 5)")
    ap.add_argument("--members", choices=SOURCES, default="auto",
                    help="refit runs, search trials, or auto: refit when the experiment has one (default)")
    ap.add_argument("--method", choices=("auto", *METHODS), default="auto",
                    help="fusion to keep; with everything on auto: mean_sim, kept only if it beats the best member "
                         "on val (default); every method is reported either way")
    ap.add_argument("--weighting", choices=("auto", *WEIGHTINGS), default="auto",
                    help="equal (auto), or proportional to each member's val R@1")
    ap.add_argument("--select", choices=SELECTIONS, default="auto",
                    help="greedy forward selection on val R@1 (auto), or all members")
    ap.add_argument("--weights", nargs="+", help="one weight per member in rank order (replaces --weighting)")
    ap.add_argument("--allow-fewer", action="store_true", help="use all finished trials when there are fewer than K")
    ap.add_argument("--query", help="print the top motions for this text instead of building")
    ap.add_argument("--split", default=None, choices=["train", "val", "test", ALL_MOTIONS],
                    help="--query / --serve: the split ranked (default test); --index: the library's motions indexed "
                         "(default all)")
    ap.add_argument("--top", type=int, default=10, help="--query: how many motions to print (--serve: the page's k)")
    ap.add_argument("--model", default=ENSEMBLE, help="--query: rank with the ensemble (default) or one member, by id")
    ap.add_argument("--index", metavar="SPEC", help="alone: encode this library (a data spec) into EXP/index/<name>/; "
                                                    "with --query / --serve: search that index (name, spec or folder)")
    ap.add_argument("--index-format", default=None, help="loader of --index's library (default: auto-detect)")
    ap.add_argument("--candidates", type=int, default=None,
                    help="Borda / RRF over an index: rerank each model's top C only (faster, approximate: see "
                         "bench/retrieval_index.py); default: the whole library, exact")
    ap.add_argument("--backend", choices=BACKENDS, default="auto", help="index search: FAISS when installed (auto)")
    ap.add_argument("--serve", action="store_true", help="start the retrieval page (Ctrl+C stops it)")
    ap.add_argument("--host", default="127.0.0.1", help="--serve: the address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8765, help="--serve: the port (default 8765; 0 = a free one)")
    add_eval_data_flags(ap, "also score members and fusions on this dataset (same feature layout, each member's training normalization; reported, never chosen on)")
    ap.add_argument("--device", default=None, help="cpu, cuda[:N] (default: CUDA when visible)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--smoke-test", action="store_true",
                    help=f"train {len(SMOKE_MEMBERS)} tiny members on {SMOKE_DATA!r}, build their ensemble, query it")
    args = ap.parse_args(argv)
    if args.target is None and not args.smoke_test:
        ap.error("give an EXPERIMENT_DIR (or a checkpoint dir with --query), or --smoke-test.")
    if args.query is not None and not args.query.strip():
        ap.error("--query: the text is empty; give the words to search for, e.g. --query 'a person waves'.")
    if args.top < 1:
        ap.error(f"--top {args.top}: must be >= 1 (how many motions to print).")
    if (args.query is not None or args.serve or args.index is not None) and args.eval_data is not None:
        ap.error("--eval-data scores a built ensemble; --query, --index and --serve search: use separate commands.")
    if args.serve and args.query is not None:
        ap.error("--serve starts the page, --query prints one answer: use one of them.")
    if args.smoke_test and (args.serve or args.index is not None):
        ap.error("--smoke-test builds a demo experiment: --index / --serve it afterwards with its folder.")
    if args.index_format is not None and args.index is None:
        ap.error("--index-format is given without --index; add --index SPEC, or drop it.")
    if args.model != ENSEMBLE and args.query is None:
        ap.error(f"--model {args.model}: picks the model of --query (the page offers every model); add --query TEXT.")
    if args.candidates is not None and args.query is None and not args.serve:
        ap.error("--candidates reranks the answers of --query or --serve; add one of them, or drop it.")
    if args.candidates is not None and args.candidates < 1:
        ap.error(f"--candidates {args.candidates}: must be >= 1 (motions per model reranked).")
    if not 0 <= args.port <= 65535:
        ap.error(f"--port {args.port}: must be 0..65535 (0 picks a free port).")
    if args.split is not None and args.query is None and not args.serve and args.index is None:
        ap.error(f"--split {args.split}: picks the motions --query, --serve or --index search; building the "
                 "ensemble scores val and test always. Add --query TEXT, or drop it.")
    if args.split == ALL_MOTIONS and args.index is None:
        ap.error("--split all: every motion is searched through an index; build one with --index SPEC (a data spec).")
    args.weights = _weights(args.weights)
    return args


def print_hits(source: str, text: str, hits) -> None:
    print(f"query: {text!r}  ({source})")
    print(f"{'rank':>4}  {'score':>9}  {'motion id':<20} first caption")
    for h in hits:
        print(f"{h.rank:>4}  {h.score:9.4f}  {h.motion_id:<20} {h.caption}")


def smoke_test(args: argparse.Namespace, eval_data=None) -> int:
    from results.ensemble import build_ensemble, query

    out = Path(args.target) if args.target else Path(tempfile.mkdtemp(prefix="ensemble-smoke-"))
    t0 = time.perf_counter()
    write_demo_experiment(out, [{**SMOKE_BASE, **m} for m in SMOKE_MEMBERS])
    print(f"trained {len(SMOKE_MEMBERS)} members in {time.perf_counter() - t0:.1f} s into {out}")
    result = build_ensemble(out, top_k=len(SMOKE_MEMBERS), method=args.method, select=args.select,
                            weighting=args.weighting, weights=args.weights, members=args.members,
                            allow_fewer=False, device=args.device, quiet=args.quiet, eval_data=eval_data)
    text = args.query or "a person walks forward"
    print_hits(f"ensemble of {', '.join(result.selected)}", text,
               query(out, text, args.split or "test", args.top, args.device))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from core.crossdata import EvalData
    from core.errors import error_line
    from core.inference import is_checkpoint_dir
    from results import retrieval_cli
    from results.ensemble import build_ensemble
    from results.errors import ResultsError

    try:
        eval_data = EvalData.from_flags(args.eval_data, args.eval_format, args.eval_data_split)
        if args.smoke_test:
            return smoke_test(args, eval_data)
        if args.query is not None:
            return retrieval_cli.run_query(args)
        if args.serve:
            return retrieval_cli.run_serve(args)
        if args.index is not None:
            return retrieval_cli.run_build(args)
        if is_checkpoint_dir(args.target):
            raise ResultsError("a checkpoint dir holds one model: it can be queried (--query TEXT) but not "
                               "ensembled.", where=args.target, fix="pass the experiment dir to build an ensemble.")
        build_ensemble(args.target, top_k=args.top_k, method=args.method, select=args.select, quiet=args.quiet,
                       weighting=args.weighting, weights=args.weights, members=args.members,
                       allow_fewer=args.allow_fewer, device=args.device, eval_data=eval_data)
        return 0
    except (ValueError, OSError) as e:   # ResultsError, ConfigError and DataError are ValueErrors
        line = error_line(e, (ValueError, FileNotFoundError))
        if line is None:
            raise
        print(f"run_ensemble.py: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:   # ensemble/ and index/<name>/ are swapped in whole or not at all
        what = "index/<name>/" if args.index is not None else "ensemble/"
        print(f"\ninterrupted; {args.target} is as it was before this run ({what} is written in one swap). "
              "Run the same command again to build it.", file=sys.stderr)
        return 130
