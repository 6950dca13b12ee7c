#!/usr/bin/env python
"""Ensemble vs its best single member, on the embedded default corpus and on Bandai-Namco (real mocap).

For each experiment: ``results.ensemble.build_ensemble(exp, top_k=K, method=M)`` for M in (borda, mean_sim)
over all top-K members, and with ``select="greedy"`` (what run_search builds after a search);
reported on the TEST split: R@1 and weighted recall (official protocol, 30 x 32) of the best member (by
val R@1, the member build_ensemble names) vs the Borda-count and the mean-z-scored-similarity ensemble.

  embedded  --embedded-experiment PATH, else the README main job's experiment recorded by P5
            (<out>/p5_main_job.json: synthetic default corpus, default model, 8 trials), else P3's ASHA
            experiment (<out>/p3_asha_fifo_tpe.json), else a small search run here
  bandai    --bandai-experiment PATH, else a small search run here: the Bandai-Namco archive,
            ``eval_equivalence=true`` (motions of the same label group count as correct), CPU-sized model

    python bench/ensemble_vs_member.py
    python bench/ensemble_vs_member.py --quick     # tiny embedded search only
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.common import (QUICK_DATA, QUICK_SETS, REPO, LoadRecord, add_common_flags, apply_quick, run_dir,
                          out_dir_for, print_rows, row, setup_environment, usable_cores, wait_for_quiet,
                          write_result)

NAME = "ensemble_vs_member"
BANDAI = REPO.parent / "shared" / "data" / "bandai-namco-motiondataset-2.tar.xz"
MODEL_SETS = ["hidden_dim=128", "latent_dim=128", "num_layers=2", "num_heads=4", "max_frames=100"]
# (key, method, select): the two ways to vote over all top-K, and what run_search does after a search
# (greedy forward selection of members on val, then Borda).
VARIANTS = (("borda", "borda", None), ("mean_sim", "mean_sim", None), ("borda_greedy", "borda", "greedy"))
KEYS = ("recall_at_1", "weighted_recall")


def recorded_experiment(out_dir: Path, quick: bool) -> Path | None:
    """The experiment a P5 (else P3) run recorded in ``out_dir`` left behind, if still on disk: the README
    main job's search (embedded default corpus, default model) is the natural one to ensemble."""
    for name, key in (("p5_main_job", ("experiment",)), ("p3_asha_fifo_tpe", ("asha+tpe", "experiment_path"))):
        try:
            data = json.loads((out_dir / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        value: Any = data.get("details") or {}
        for k in key:
            value = value.get(k) if isinstance(value, dict) else None
        if value and bool(data.get("quick")) == quick and Path(value).is_dir():
            return Path(value)
    return None


def small_search(name: str, storage: Path, data: str, fmt: str | None, sets: list[str], num_samples: int,
                 max_epochs: int, seed: int) -> Path:
    from bench.tune_runs import run_variant

    flags = {"space": "aligned_loss", "data": data, "num_samples": num_samples, "max_epochs": max_epochs,
             "max_concurrent": 2, "cpus_per_trial": 1.0, "seed": seed, "storage": str(storage), "name": name,
             "overrides": sets}
    if fmt:
        flags["format"] = fmt
    return Path(run_variant(flags).experiment_path)


def compare(experiment: Path, top_k: int) -> dict[str, Any]:
    """Best member vs each ensemble method on val and test."""
    from results.ensemble import build_ensemble

    out: dict[str, Any] = {"experiment": str(experiment)}
    for key, method, select in VARIANTS:
        res = build_ensemble(experiment, top_k=top_k, method=method, select=select, quiet=True)
        best = res.metrics["best_single_member"]
        out["best_member"] = best
        out["members"] = res.candidates
        out["protocol"] = res.metrics["protocol"]
        out["split_sizes"] = res.metrics["split_sizes"]
        for split in ("val", "test"):
            out.setdefault("best_member_metrics", {})[split] = {k: res.metrics["members"][best][split][k] for k in KEYS}
            out.setdefault(key, {})[split] = {k: res.metrics["ensemble"][split][k] for k in KEYS}
        out.setdefault("kept", {})[key] = list(res.selected)
        out.setdefault("all_members_test", {m: {k: v["test"][k] for k in KEYS}
                                            for m, v in res.metrics["members"].items()})
    return out


def describe(label: str, cmp: dict[str, Any]) -> dict[str, Any]:
    b, bo, ms = cmp["best_member_metrics"]["test"], cmp["borda"]["test"], cmp["mean_sim"]["test"]
    gr, kept = cmp["borda_greedy"]["test"], len(cmp["kept"]["borda_greedy"])
    measured = (f"test R@1 / wR: best member {b['recall_at_1']:.1f} / {b['weighted_recall']:.1f}, "
                f"Borda {bo['recall_at_1']:.1f} / {bo['weighted_recall']:.1f}, "
                f"mean_sim {ms['recall_at_1']:.1f} / {ms['weighted_recall']:.1f} (all {len(cmp['members'])} "
                f"members); greedy+Borda (run_search's default, kept {kept}) {gr['recall_at_1']:.1f} / "
                f"{gr['weighted_recall']:.1f}; {cmp['split_sizes']['test']} test motions")
    gain = bo["recall_at_1"] - b["recall_at_1"]
    return row(f"Ensemble vs best member: {label}", "(report)", measured, None, None,
               ratio_text=f"Borda {gain:+.1f}, mean_sim {ms['recall_at_1'] - b['recall_at_1']:+.1f}, greedy "
                          f"{gr['recall_at_1'] - b['recall_at_1']:+.1f} pt R@1")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embedded-experiment", type=Path, help="experiment dir on the embedded corpus")
    ap.add_argument("--bandai-experiment", type=Path, help="experiment dir on Bandai-Namco")
    ap.add_argument("--bandai", type=Path, default=BANDAI, help="Bandai-Namco archive or folder")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--num-samples", type=int, default=8, help="trials of the searches run here")
    ap.add_argument("--max-epochs", type=int, default=6, help="epochs of the searches run here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-bandai", action="store_true")
    ap.add_argument("--workdir", type=Path, help="where searches run here go (default $TMPDIR/mrs-bench)")
    add_common_flags(ap, retries=0)
    args = ap.parse_args(argv)
    if args.quick:
        args.num_samples, args.max_epochs, args.top_k, args.skip_bandai = 2, 1, 2, True
    apply_quick(args)
    setup_environment()
    started = time.perf_counter()
    from bench.tune_runs import start_local_ray

    storage = run_dir(args, "ensemble")
    sets = QUICK_SETS if args.quick else MODEL_SETS
    load = LoadRecord(wait_for_quiet(args.max_load, args.wait_load), own=2.0, max_per_core=args.max_load)
    started_ray = False
    sources: dict[str, str] = {}
    try:
        embedded = args.embedded_experiment or recorded_experiment(out_dir_for(args), args.quick)
        if embedded is None:
            started_ray = start_local_ray(usable_cores())
            data = QUICK_DATA if args.quick else "synthetic"
            embedded = small_search("embedded", storage, data, None, sets, args.num_samples, args.max_epochs, args.seed)
            sources["embedded"] = (f"search run here: {data}, {args.num_samples} trials x <= {args.max_epochs} "
                                   f"epochs, {sets}")
        else:
            sources["embedded"] = f"existing experiment {embedded}"
        bandai = args.bandai_experiment
        if bandai is None and not args.skip_bandai:
            if not args.bandai.exists():
                raise SystemExit(f"Bandai-Namco data not found at {args.bandai}; pass --bandai PATH or --skip-bandai.")
            started_ray = start_local_ray(usable_cores()) or started_ray
            bandai = small_search("bandai", storage, str(args.bandai), "bandai", [*sets, "eval_equivalence=true"],
                                  args.num_samples, args.max_epochs, args.seed)
            sources["bandai"] = (f"search run here: {args.bandai.name} (eval_equivalence=true), {args.num_samples} "
                                 f"trials x <= {args.max_epochs} epochs, {sets}")
        elif bandai is not None:
            sources["bandai"] = f"existing experiment {bandai}"
    finally:
        if started_ray:
            import ray
            ray.shutdown()
    details: dict[str, Any] = {"embedded": compare(embedded, args.top_k)}
    rows = [describe("embedded default corpus", details["embedded"])]
    if bandai is not None:
        details["bandai"] = compare(bandai, args.top_k)
        rows.append(describe("Bandai-Namco, label-equivalent", details["bandai"]))
    load.finish()
    settings = {"top_k": args.top_k, "variants": [list(v) for v in VARIANTS], "sources": sources, "seed": args.seed}
    path = write_result(out_dir_for(args), NAME, title="Ensemble (Borda / mean_sim) vs best single member",
                        quick=args.quick, rows=rows, settings=settings, details=details, load=load, started=started)
    print_rows(rows, load, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
