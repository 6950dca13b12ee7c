"""Searches for the benchmarks, through the real ``search`` package (what ``run_search.py`` runs).

``run_variant(flags, scheduler="fifo", sampler="random")`` calls ``search.run.run(resolve_args(flags))``
with ``--scheduler`` / ``--sampler`` set (preflight, shared inputs in the object store, the search
trainable, the Tuner, results tables; no refit and no ensemble unless ``flags`` ask for them), then
reads the experiment back with ``results``: epochs trained
(rows of epochs.parquet), best val R@1, trial start order.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class VariantResult:
    label: str
    scheduler: str
    sampler: str
    experiment_path: str
    wall_seconds: float
    num_trials: int
    num_errors: int
    epochs_trained: int                     # rows of epochs.parquet
    best_recall_at_1: float | None          # best val R@1 over all trials and epochs
    best_weighted_recall: float | None
    trial_best_in_start_order: list[float | None] = field(default_factory=list)
    trial_epochs_in_start_order: list[int] = field(default_factory=list)

    def best_so_far(self) -> list[float | None]:
        out, best = [], None
        for value in self.trial_best_in_start_order:
            if value is not None:
                best = value if best is None else max(best, value)
            out.append(best)
        return out

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "best_so_far": self.best_so_far()}


def run_variant(flags: dict[str, Any], *, scheduler: str = "asha", sampler: str = "tpe",
                label: str | None = None) -> VariantResult:
    """One search through run_search's code path with --scheduler/--sampler; read back its tables."""
    from search.args import resolve_args
    from search.run import run as search_run   # the package attribute `search.run` is shadowed by the module

    args = resolve_args({"wandb": False, "ensemble_top_k": 0, "refit_top_k": 0, **flags, "scheduler": scheduler,
                         "sampler": sampler})
    t0 = time.perf_counter()
    outcome = search_run(args)
    wall = time.perf_counter() - t0
    return read_variant(Path(outcome.experiment_path), label or f"{scheduler}+{sampler}", scheduler, sampler,
                        wall, outcome.num_trials, outcome.num_errors)


def read_variant(path: Path, label: str, scheduler: str, sampler: str, wall: float, num_trials: int,
                 num_errors: int) -> VariantResult:
    import pyarrow.parquet as pq

    from results import load_trials, read_experiment

    trials = load_trials(path)            # (re)writes trials.parquet and epochs.parquet
    epochs = pq.read_table(path / "epochs.parquet")
    best = [v for v in trials.column("best_recall_at_1").to_pylist() if v is not None] \
        if "best_recall_at_1" in trials.column_names else []
    wr = [v for v in trials.column("best_weighted_recall").to_pylist() if v is not None] \
        if "best_weighted_recall" in trials.column_names else []
    by_id = {r["trial_id"]: r for r in trials.to_pylist()}
    records = sorted(read_experiment(path).trials, key=lambda t: (t.start_time or float("inf"), t.trial_id))
    return VariantResult(
        label=label, scheduler=scheduler, sampler=sampler, experiment_path=str(path), wall_seconds=wall,
        num_trials=num_trials, num_errors=num_errors, epochs_trained=epochs.num_rows,
        best_recall_at_1=max(best) if best else None, best_weighted_recall=max(wr) if wr else None,
        trial_best_in_start_order=[by_id.get(t.trial_id, {}).get("best_recall_at_1") for t in records],
        trial_epochs_in_start_order=[int(by_id.get(t.trial_id, {}).get("epochs_run") or 0) for t in records])


def start_local_ray(num_cpus: int, num_gpus: float | None = None) -> bool:
    """One local Ray for all searches of a benchmark (search.run reuses it). True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"address": "local", "num_cpus": num_cpus, "include_dashboard": False,
                              "log_to_driver": True}
    if num_gpus is not None:
        kwargs["num_gpus"] = num_gpus
    ray.init(**kwargs)
    return True
