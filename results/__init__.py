"""Read what a Ray Tune search wrote (from disk, no Ray cluster): per-trial/per-epoch Parquet, leaderboard, plots.

    from results import write_results, load_trials
    res = write_results("~/ray_results/my_search")   # trials.parquet, epochs.parquet, plots/*.png
    res.best_trial_id, res.best_config, res.best_checkpoint
    top5 = load_trials("~/ray_results/my_search").slice(0, 5)   # rows are ranked by best recall_at_1

CLI: python -m results <experiment_dir> [--top N]
"""
from __future__ import annotations

import importlib
from typing import Any

# Names load on first use (PEP 562): importing one submodule, such as results.trial_record in every trial worker
# or the ensemble CLI parsing its flags, must not pull in matplotlib, pyarrow and the report (~0.6 s each time).
_WHERE = {"ResultsError": "results.errors", "ExperimentDir": "results.experiment_dir",
          "TrialRecord": "results.experiment_dir", "read_experiment": "results.experiment_dir",
          "format_leaderboard": "results.leaderboard", "ExperimentResults": "results.report",
          "load_trials": "results.report", "write_results": "results.report", "PRIMARY_METRIC": "results.tables"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'results' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value   # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
