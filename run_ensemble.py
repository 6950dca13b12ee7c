"""Ensemble of a search's models (refit runs or top trials): every fusion studied, the best kept only if it helps.

    python run_ensemble.py EXPERIMENT_DIR                      # auto: refit members, every fusion reported
    python run_ensemble.py EXPERIMENT_DIR --method rrf --weighting val --select all --members search --top-k 5
    python run_ensemble.py EXPERIMENT_DIR --query "a person hands an object to another" [--split test]
    python run_ensemble.py path/to/trial/checkpoint_000004 --query "a person waves"   # one model
    python run_ensemble.py --smoke-test [DIR]   # trains 3 tiny members on synthetic data, builds, queries

Builds ``EXPERIMENT_DIR/ensemble/`` (manifest.json, metrics.json, predictions_test.csv,
members_vs_ensemble.png) and prints members and fusions on val and test with 95 % CIs and the paired
gain over the best member.  With --method auto (the default) a fusion is kept only when its val gain
is decided (paired CI above 0); otherwise the ensemble is the best member and it says so.
run_search.py does the same automatically after a search (--ensemble-top-k, 0 = off).  Asking for
more members than there are finished trials is an error here unless --allow-fewer.  Exit status:
0 ok, 2 bad input.  See results/ensemble.py, results/fusion.py and core/ensemble.py (methods, ties).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

SMOKE_DATA = "synthetic:n=300"
SMOKE_BASE = {"data": SMOKE_DATA, "hidden_dim": 32, "latent_dim": 32, "num_layers": 1, "num_heads": 2,
              "batch_size": 32, "epochs": 2, "max_frames": 64, "num_threads": 1, "lr": 1e-3, "device": "cpu"}
SMOKE_MEMBERS = ({"motion_encoder": "tmr", "seed": 0}, {"motion_encoder": "gru", "seed": 1},
                 {"motion_encoder": "transformer", "seed": 2})


def write_demo_experiment(directory: str | Path, configs: Sequence[dict[str, Any]]) -> Path:
    """Train each flat config with core.train.train_retrieval (no Ray) into a Ray-Tune-shaped experiment folder:
    one ``train_trial_<id>_<n>_demo`` folder per trial with params.json, result.json (one JSON line per epoch,
    checkpoint_dir_name pointing at checkpoint_<k>/), and an experiment_state-*.json marking it TERMINATED."""
    from core.train import prepare_shared, train_retrieval

    directory = Path(directory).expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    shared, state = None, []
    for n, config in enumerate(configs):
        trial_id = hashlib.sha1(json.dumps([n, config], sort_keys=True, default=str).encode()).hexdigest()[:8]
        trial_dir = directory / f"train_trial_{trial_id}_{n + 1}_demo"
        trial_dir.mkdir(exist_ok=True)
        (trial_dir / "params.json").write_text(json.dumps(config, indent=1))
        shared = shared if shared is not None else prepare_shared(config, progress=False)
        rows: list[dict] = []
        start = time.time()

        def reporter(metrics: dict, checkpoint_dir: str | None) -> None:
            name = f"checkpoint_{len(rows):06d}"
            shutil.copytree(checkpoint_dir, trial_dir / name, dirs_exist_ok=True)
            rows.append({**metrics, "trial_id": trial_id, "training_iteration": metrics["epoch"],
                         "checkpoint_dir_name": name, "done": False, "time_total_s": time.time() - start})

        train_retrieval(config, reporter, shared=shared)
        rows[-1]["done"] = True
        (trial_dir / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
        state.append([json.dumps({"trial_id": trial_id, "status": "TERMINATED", "config": config,
                                  "relative_logdir": trial_dir.name}),
                      json.dumps({"start_time": start, "last_result_time": time.time(), "num_failures": 0})])
    (directory / "experiment_state-demo.json").write_text(json.dumps({"trial_data": state}))
    return directory


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
    from core.ensemble import METHODS
    from results.ensemble import SELECTIONS
    from results.ensemble_members import SOURCES
    from results.fusion import WEIGHTINGS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
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
    ap.add_argument("--split", default="test", choices=["train", "val", "test"], help="--query candidates")
    ap.add_argument("--top", type=int, default=10, help="--query: how many motions to print")
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
    args.weights = _weights(args.weights)
    return args


def print_hits(source: str, text: str, hits) -> None:
    print(f"query: {text!r}  ({source})")
    print(f"{'rank':>4}  {'score':>9}  {'motion id':<20} first caption")
    for h in hits:
        print(f"{h.rank:>4}  {h.score:9.4f}  {h.motion_id:<20} {h.caption}")


def smoke_test(args: argparse.Namespace) -> int:
    from results.ensemble import build_ensemble, query

    out = Path(args.target) if args.target else Path(tempfile.mkdtemp(prefix="ensemble-smoke-"))
    t0 = time.perf_counter()
    write_demo_experiment(out, [{**SMOKE_BASE, **m} for m in SMOKE_MEMBERS])
    print(f"trained {len(SMOKE_MEMBERS)} members in {time.perf_counter() - t0:.1f} s into {out}")
    result = build_ensemble(out, top_k=len(SMOKE_MEMBERS), method=args.method, select=args.select,
                            weighting=args.weighting, weights=args.weights, members=args.members,
                            allow_fewer=False, device=args.device, quiet=args.quiet)
    text = args.query or "a person walks forward"
    print_hits(f"ensemble of {', '.join(result.selected)}", text, query(out, text, args.split, args.top, args.device))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from core.config import ConfigError
    from core.data import DataError
    from core.errors import write_failure
    from core.inference import is_checkpoint_dir
    from results.ensemble import build_ensemble, query
    from results.errors import ResultsError

    try:
        if args.smoke_test:
            return smoke_test(args)
        if args.query is not None:
            hits = query(args.target, args.query, args.split, args.top, args.device)
            print_hits(str(args.target), args.query, hits)
            return 0
        if is_checkpoint_dir(args.target):
            raise ResultsError("a checkpoint dir holds one model: it can be queried (--query TEXT) but not "
                               "ensembled.", where=args.target, fix="pass the experiment dir to build an ensemble.")
        build_ensemble(args.target, top_k=args.top_k, method=args.method, select=args.select, quiet=args.quiet,
                       weighting=args.weighting, weights=args.weights, members=args.members,
                       allow_fewer=args.allow_fewer, device=args.device)
        return 0
    except (ResultsError, ConfigError, DataError, ValueError, FileNotFoundError) as e:
        print(f"run_ensemble.py: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if write_failure(e) is None:
            raise
        print(f"run_ensemble.py: error: {write_failure(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
