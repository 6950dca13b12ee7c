#!/usr/bin/env python
"""Ensemble vs its best single member, on the embedded default corpus and on Bandai-Namco (real mocap),
over several independent searches (search seeds): the whole pipeline of run_search.py (search -> refit of
the top configs over seeds -> automatic ensemble), then every fusion of the refit members on TEST vs the
best member (chosen on val), with paired 95 % bootstrap CIs (read from the experiment's ensemble/metrics.json).

  embedded  the README main job (`run_search.py --space aligned_loss --seed S`: synthetic default corpus,
            default model, 8 trials x <= 4 epochs, refit 2 configs x 2 seeds); seed 0 reuses the experiment
            P5 recorded in <out>/p5_main_job.json when it is still on disk (--embedded-experiment PATH too)
  bandai    the Bandai-Namco archive with val=0.2,test=0.2 (~580 motions each), eval_equivalence=true (the
            motions of one content+style label group count as correct), a CPU-sized model, same pipeline

    python bench/ensemble_vs_member.py                  # ~1 h on 2 cores
    python bench/ensemble_vs_member.py --quick          # tiny embedded search only
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


def recorded_experiment(out_dir: Path, quick: bool) -> Path | None:
    """The README main job's experiment P5 recorded in ``out_dir`` (search seed 0), if it is still on disk
    with an ensemble study of this version (ensemble/metrics.json with its fusion variants)."""
    try:
        data = json.loads((out_dir / "p5_main_job.json").read_text(encoding="utf-8"))
        path = Path((data.get("details") or {})["experiment"])
        study = json.loads((path / "ensemble" / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if bool(data.get("quick")) == quick and "variants" in study else None


def pipeline_search(name: str, storage: Path, data: str, fmt: str | None, sets: list[str], seed: int,
                    quick: bool) -> Path:
    """run_search.py's whole pipeline (search, refit, automatic ensemble) with its defaults, in this process."""
    from bench.tune_runs import run_variant

    flags: dict[str, Any] = {"space": "aligned_loss", "data": data, "seed": seed, "storage": str(storage),
                             "name": name, "overrides": sets, "refit_top_k": 2, "ensemble_top_k": 5}
    if quick:
        flags.update(num_samples=3, max_epochs=1, refit_top_k=2, refit_seeds=2)
    if fmt:
        flags["format"] = fmt
    return Path(run_variant(flags).experiment_path)


def compare(experiment: Path) -> dict[str, Any]:
    """The experiment's ensemble study (ensemble/metrics.json): best member vs every fusion, on test."""
    metrics = json.loads((experiment / "ensemble" / "metrics.json").read_text(encoding="utf-8"))
    best = metrics["members"][metrics["best_single_member"]]
    views = [k for k in ("recall_at_1", "eq_recall_at_1") if k in best["minus_best_member"]["test"]]
    return {"experiment": str(experiment), "source": metrics["source"], "split_sizes": metrics["split_sizes"],
            "members": metrics["labels"], "best_member": metrics["best_member_label"],
            "best_member_test": {k: [best["test"][k], best["test"].get(f"{k}_lo"), best["test"].get(f"{k}_hi")]
                                 for k in ("recall_at_1", "eq_recall_at_1", "full_t2m_R1") if k in best["test"]},
            "fusions": {v["label"]: {k: v["minus_best_member"]["test"][k] for k in views} for v in metrics["variants"]},
            "chosen": metrics["chosen"]["label"], "fallback": metrics["fallback"], "reason": metrics["reason"],
            "chosen_test_gain": {k: metrics["ensemble_minus_best_member"]["test"].get(k) for k in views},
            "miss_correlation_test": (metrics.get("diversity") or {}).get("test", {}).get("mean_correlation")}


DEFAULT_FUSION = "mean_sim, equal-weighted, greedy on val"


def describe(label: str, cmp: dict[str, Any]) -> dict[str, Any]:
    """One row: the best member, the default fusion's test gain, the range over the other fusions, the outcome."""
    r1 = cmp["best_member_test"]["recall_at_1"]
    gains = {name.split(" (")[0]: g["recall_at_1"] for name, g in cmp["fusions"].items()}

    def fmt(ci: dict) -> str:
        return f"{ci['value']:+.2f} [{ci['low']:+.1f}, {ci['high']:+.1f}]"

    default = gains.get(DEFAULT_FUSION)
    others = [g["value"] for name, g in gains.items() if name != DEFAULT_FUSION]
    kept = cmp["chosen_test_gain"]["recall_at_1"]
    outcome = ("automatic: fallback to the best member (its val gain was not decided)" if cmp["fallback"]
               else f"automatic: kept {cmp['chosen'].split(' (')[0]}, test {fmt(kept)}")
    corr = cmp["miss_correlation_test"]
    measured = (f"{len(cmp['members'])} {cmp['source']} members, {cmp['split_sizes']['test']} test motions; best member "
                f"test R@1 {r1[0]:.1f} [{r1[1]:.1f}, {r1[2]:.1f}]; default fusion ({DEFAULT_FUSION}) "
                f"{fmt(default) if default else 'kept one member'}; other fusions "
                f"{min(others):+.1f} .. {max(others):+.1f}; {outcome}"
                + (f"; member miss correlation {corr:.2f}" if corr is not None else ""))
    value = default["value"] if default else 0.0
    return row(f"Ensemble vs best member: {label}", "(report)", measured, round(value, 2), None,
               ratio_text=f"{value:+.2f} pt (default fusion, test)")


def rewrite_rows(path: Path) -> None:
    """Recompute the rows of a recorded result from its details (after a change of this description)."""
    from core.atomic import atomic_write_text

    data = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for key, cmp in data["details"].items():
        dataset, _, seed = key.partition(" seed ")
        label = "embedded default corpus" if dataset == "embedded" else "Bandai-Namco, label-equivalent"
        rows.append(describe(f"{label}, search seed {seed}", cmp))
    data["rows"] = rows
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embedded-experiment", type=Path, nargs="*", default=[],
                    help="existing experiment dir(s) on the embedded corpus, one per search seed")
    ap.add_argument("--bandai-experiment", type=Path, nargs="*", default=[], help="existing Bandai experiment dir(s)")
    ap.add_argument("--bandai", type=Path, default=BANDAI, help="Bandai-Namco archive or folder")
    ap.add_argument("--seeds", type=int, default=2, help="independent searches per dataset (seeds 0..N-1)")
    ap.add_argument("--skip-bandai", action="store_true")
    ap.add_argument("--workdir", type=Path, help="where searches run here go (default $TMPDIR/mrs-bench)")
    add_common_flags(ap, retries=0)
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.skip_bandai = 1, True
    apply_quick(args)
    setup_environment()
    started = time.perf_counter()
    from bench.tune_runs import start_local_ray

    storage = run_dir(args, "ensemble")
    load = LoadRecord(wait_for_quiet(args.max_load, args.wait_load), own=2.0, max_per_core=args.max_load)
    experiments: dict[str, list[Path]] = {"embedded": list(args.embedded_experiment), "bandai": list(args.bandai_experiment)}
    recorded = recorded_experiment(out_dir_for(args), args.quick)
    if not experiments["embedded"] and recorded is not None:
        experiments["embedded"].append(recorded)
    started_ray = False
    try:
        data = QUICK_DATA if args.quick else "synthetic"
        sets = QUICK_SETS if args.quick else []
        for seed in range(len(experiments["embedded"]), args.seeds):
            started_ray = start_local_ray(usable_cores()) or started_ray
            experiments["embedded"].append(pipeline_search(f"embedded-seed{seed}", storage, data, None, sets, seed,
                                                           args.quick))
        if not args.skip_bandai:
            if not args.bandai.exists():
                raise SystemExit(f"Bandai-Namco data not found at {args.bandai}; pass --bandai PATH or --skip-bandai.")
            for seed in range(len(experiments["bandai"]), args.seeds):
                started_ray = start_local_ray(usable_cores()) or started_ray
                experiments["bandai"].append(pipeline_search(
                    f"bandai-seed{seed}", storage, f"{args.bandai}:val=0.2,test=0.2", "bandai",
                    [*MODEL_SETS, "eval_equivalence=true"], seed, False))
    finally:
        if started_ray:
            import ray
            ray.shutdown()
    details: dict[str, Any] = {}
    rows = []
    for dataset, paths in experiments.items():
        for seed, path in enumerate(paths):
            details[f"{dataset} seed {seed}"] = compare(path)
            label = ("embedded default corpus" if dataset == "embedded" else "Bandai-Namco, label-equivalent")
            rows.append(describe(f"{label}, search seed {seed}", details[f"{dataset} seed {seed}"]))
    load.finish()
    settings = {"seeds": args.seeds, "bandai_model": MODEL_SETS, "experiments": {k: [str(p) for p in v]
                                                                                 for k, v in experiments.items()}}
    path = write_result(out_dir_for(args), NAME, title="Ensemble (every fusion) vs best single member, paired CIs",
                        quick=args.quick, rows=rows, settings=settings, details=details, load=load, started=started)
    print_rows(rows, load, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
