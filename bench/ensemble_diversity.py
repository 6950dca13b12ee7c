#!/usr/bin/env python
"""What makes ensemble members diverse enough to help? Fusion gain vs the best member by member source.

Trains one pool of members on the embedded default (trainer defaults: TMR 4 x 256, frozen MiniLM, InfoNCE;
``--epochs`` each, two processes at a time) that differ in ONE way per group, and evaluates every group
with results/fusion.py on val and test (the same protocol, paired CIs):

* seeds: the same config with training seeds 0, 1, 2 (what the refit stage produces);
* snapshots: epochs E-2, E-1, E of the seed-0 run (free: one training);
* losses: InfoNCE vs the aligned loss (what a refit of the `aligned_loss` space varies);
* text features: mean- vs CLS-pooled MiniLM features;
* architectures: TMR vs transformer vs GRU motion encoders (the `architecture` space);
* seeds + architectures, and everything.

Per group: the best member (chosen on val), every fusion variant of results/fusion.py (each method over all
members with equal / val weights, and over greedily chosen members) with its val and test gain and their
paired 95 % CIs, what the automatic rule keeps, and the mean pairwise correlation of the members'
per-query misses (full-split R@1).

    python bench/ensemble_diversity.py            # ~15 min on 2 cores
    python bench/ensemble_diversity.py --quick
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    try:
        import _repo_path  # noqa: F401
    except ModuleNotFoundError:   # a spawned training worker: it inherits the repository on sys.path
        pass

import multiprocessing
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.common import LoadRecord, load_avg, out_dir_for, print_rows, row, write_result
from bench.train_config import parse_model_bench_args, train_flat

NAME = "ensemble_diversity"
POOL = {"tmr_s0": {"seed": 0}, "tmr_s1": {"seed": 1}, "tmr_s2": {"seed": 2},
        "transformer_s0": {"motion_encoder": "transformer"}, "gru_s0": {"motion_encoder": "gru"},
        "tmr_s0_cls_text": {"text_pooling": "cls"}, "tmr_s0_aligned": {"loss": "aligned"}}


def groups(epochs: int) -> dict[str, list[str]]:
    snaps = [f"tmr_s0@{e}" for e in range(max(1, epochs - 2), epochs + 1)]
    return {"seeds": ["tmr_s0", "tmr_s1", "tmr_s2"], "snapshots": snaps, "losses": ["tmr_s0", "tmr_s0_aligned"],
            "text features": ["tmr_s0", "tmr_s0_cls_text"], "architectures": ["tmr_s0", "transformer_s0", "gru_s0"],
            "seeds + architectures": ["tmr_s0", "tmr_s1", "tmr_s2", "transformer_s0", "gru_s0"],
            "everything": list(POOL)}


def train_member(name: str, config: dict, out: str) -> dict[int, str]:
    """Train one member; keep every epoch's checkpoint (snapshots) under out/<name>@<epoch>."""
    import torch

    from core.train import train_retrieval

    torch.set_num_threads(int(config["num_threads"]))
    kept: dict[int, str] = {}

    def keep(metrics: dict, checkpoint_dir: str | None) -> None:
        if checkpoint_dir:
            target = Path(out) / f"{name}@{int(metrics['epoch'])}"
            shutil.copytree(checkpoint_dir, target, dirs_exist_ok=True)
            kept[int(metrics["epoch"])] = str(target)

    train_retrieval(config, keep)
    return kept


def main(argv=None) -> int:
    args = parse_model_bench_args(
        argv, __doc__, epochs=4, quick_epochs=2, set_help="config override for every member",
        epochs_help="epochs per member (the main job's --max-epochs)",
        add_flags=lambda ap: ap.add_argument("--workers", type=int, default=2,
                                             help="members trained at once (1 thread each)"))
    from core.evaluate import equivalence_views, protocol_settings
    from core.metrics import similarity_matrix
    from core.train import prepare_shared
    from results.ensemble_members import Candidate, encode_candidates
    from results.fusion import Evaluator, study

    base = train_flat(args, epochs=args.epochs)
    prepare_shared(base, progress=False)                    # data and both text-feature caches, once
    prepare_shared({**base, "text_pooling": "cls"}, progress=False)
    work = Path(tempfile.mkdtemp(prefix="ens-diversity-"))
    t0, load = time.perf_counter(), LoadRecord(load_avg(), own=args.workers)
    checkpoints: dict[str, str] = {}
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {name: pool.submit(train_member, name, {**base, **changes}, str(work)) for name, changes in POOL.items()}
        for name, future in futures.items():
            kept = future.result()
            checkpoints[name] = kept[max(kept)]
            checkpoints.update({f"{name}@{e}": path for e, path in kept.items()})
            print(f"trained {name} ({time.perf_counter() - t0:.0f} s)", flush=True)
    train_seconds = time.perf_counter() - t0
    names = sorted({n for g in groups(args.epochs).values() for n in g})
    encoded = dict(zip(names, encode_candidates([Candidate(n, n, Path(checkpoints[n]), "TERMINATED", 0.0, None)
                                                 for n in names])))
    rows, details = [], {"groups": {}, "train_seconds": round(train_seconds, 1)}
    for group, members in groups(args.epochs).items():
        enc = [encoded[m] for m in members]
        sims = {s: [similarity_matrix(e.splits[s].text, e.splits[s].motion) for e in enc] for s in ("val", "test")}
        views = {s: equivalence_views(enc[0].splits[s].captions, enc[0].splits[s].groups, enc[0].runtime)
                 for s in ("val", "test")}
        evaluator = Evaluator(sims, protocol_settings(enc[0].runtime), views)
        auto = study(evaluator, members)       # every variant reported, the default choice kept only if it helps
        best = auto.members[auto.best_member]
        record = {"members": members, "best_member": best.label,
                  "best_member_test_R1": best.metrics["test"]["recall_at_1"],
                  "mean_miss_correlation_test": auto.diversity["test"]["mean_correlation"],
                  "oracle_full_R1_test": auto.diversity["test"]["oracle_full_R1"],
                  "variants": {v.label: {s: {k: vars(ci) for k, ci in v.gains[s].items()} for s in ("val", "test")}
                               for v in auto.variants},
                  "fusions": {v.method: {k: vars(ci) for k, ci in v.gains["test"].items()} for v in auto.variants
                              if v.select == "all" and v.weighting == "equal"},
                  "auto": {"chosen": auto.chosen.label, "fallback": auto.fallback, "reason": auto.reason,
                           "test_gain": {k: vars(ci) for k, ci in auto.chosen.gains["test"].items()}}}
        details["groups"][group] = record
        gains = "; ".join(f"{m} {v['recall_at_1']['value']:+.2f} [{v['recall_at_1']['low']:+.1f}, "
                          f"{v['recall_at_1']['high']:+.1f}]" for m, v in record["fusions"].items())
        auto_gain = record["auto"]["test_gain"]["recall_at_1"]
        rows.append(row(f"fusion gain on test, {group} ({len(members)})", "(report)",
                        f"best member {best.label} {record['best_member_test_R1']:.2f}; {gains}; miss corr "
                        f"{record['mean_miss_correlation_test']:.2f}; auto: {'fallback' if auto.fallback else auto.chosen.label}"
                        f" {auto_gain['value']:+.2f}", round(auto_gain["value"], 2), None,
                        ratio_text=f"{auto_gain['value']:+.2f} pt"))
    shutil.rmtree(work, ignore_errors=True)
    path = write_result(out_dir_for(args), NAME, title="Ensemble gain over the best member by member source",
                        quick=args.quick, rows=rows,
                        settings={"epochs": args.epochs, "data": base["data"], "pool": POOL},
                        details=details, load=load.finish(), started=t0)
    print_rows(rows, load, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
