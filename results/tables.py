"""Build the per-trial and per-epoch Arrow tables from parsed trial records.

`best_<metric>` is the value of that metric at the trial's best epoch (the earliest epoch with the highest
recall_at_1), so one row describes one consistent model; `last_<metric>` is the value at the last report.
`best_recall_at_1_lo` / `_hi` are that epoch's 95 % bootstrap CI over the val queries (core/bootstrap.py).

A trial whose loss became NaN/inf ends normally for Tune (TERMINATED: the trainable reports R@1 = 0 and
``diverged`` = 1, see search/trainable.py); its row says so: ``diverged`` True and ``error`` = the
NonFiniteLossError message.  ABANDONED trials (see experiment_dir) are listed but never ranked.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa

from results.experiment_dir import ABANDONED, TrialRecord
from results.trial_record import RETIRED_FILE

PRIMARY_METRIC = "recall_at_1"  # higher is better; the contract's PRIMARY validation metric
# Always present as best_/last_ columns (null when a trainer did not report them) so readers can rely on them.
SUMMARY_METRICS = ("recall_at_1", "recall_at_1_lo", "recall_at_1_hi", "weighted_recall", "medr", "full_t2m_R1",
                   "train_loss")
# Keys Ray adds to every report; they are bookkeeping, not metrics.
RAY_KEYS = frozenset({
    "training_iteration", "trial_id", "done", "timestamp", "date", "time_this_iter_s", "time_total_s", "pid",
    "hostname", "node_ip", "config", "time_since_restore", "iterations_since_restore", "experiment_tag",
    "checkpoint_dir_name", "should_checkpoint", "experiment_id", "timesteps_total", "episodes_total",
    "timesteps_since_restore", "warmup_time",
})
EPOCH_TIME_KEYS = ("time_this_iter_s", "time_total_s", "timestamp", "date", "checkpoint_dir_name",
                   "node_ip", "hostname", "pid")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def flatten_config(config: dict[str, Any], prefix: str = "config/") -> dict[str, Any]:
    """{'a': 1, 'model': {'dim': 8}} -> {'config/a': 1, 'config/model/dim': 8} (values keep their types)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(flatten_config(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def metric_keys(trials: Iterable[TrialRecord]) -> list[str]:
    """Numeric reported metrics in first-seen order, SUMMARY_METRICS first."""
    seen: dict[str, None] = dict.fromkeys(SUMMARY_METRICS)
    for trial in trials:
        for row in trial.rows:
            for key, value in row.items():
                if key not in RAY_KEYS and key != "epoch" and is_number(value):
                    seen.setdefault(key)
    return list(seen)


def trial_rank_key(best_metric: float, best_weighted_recall: Any, trial_id: str) -> tuple[float, float, str]:
    """THE order of trials everywhere (trials.parquet's rank, the leaderboard, ensemble members, the search's
    summary): best val R@1 down, then best weighted recall down, then trial id."""
    weighted = best_weighted_recall if is_number(best_weighted_recall) and math.isfinite(best_weighted_recall) \
        else float("-inf")
    return (-best_metric, -weighted, str(trial_id))


def best_row(rows: list[dict[str, Any]], metric: str = PRIMARY_METRIC) -> dict[str, Any] | None:
    """The earliest report with the highest finite `metric` (None if it was never reported)."""
    scored = [r for r in rows if is_number(r.get(metric)) and math.isfinite(r[metric])]
    if not scored:
        return None
    top = max(r[metric] for r in scored)
    return min((r for r in scored if r[metric] == top), key=lambda r: r["epoch"])


def holds_model(checkpoint_dir: Path) -> bool:
    """A checkpoint folder that still holds its model: search/retention.py empties superseded ones in place."""
    return checkpoint_dir.is_dir() and not (checkpoint_dir / RETIRED_FILE).exists()


def best_checkpoint(trial: TrialRecord, metric: str = PRIMARY_METRIC) -> tuple[Path, int] | tuple[None, None]:
    """(absolute checkpoint dir, its epoch) of the best-scoring report whose checkpoint still exists."""
    if trial.trial_dir is None:
        return None, None
    candidates = []
    for row in trial.rows:
        name = row.get("checkpoint_dir_name")
        if isinstance(name, str) and is_number(row.get(metric)) and holds_model(trial.trial_dir / name):
            candidates.append(row)
    chosen = best_row(candidates, metric)
    if chosen is None:
        return None, None
    return (trial.trial_dir / chosen["checkpoint_dir_name"]).resolve(), int(chosen["epoch"])


def last_checkpoint(trial: TrialRecord) -> Path | None:
    """The checkpoint of the trial's last report, if it still exists (a full-length run's final model)."""
    if trial.trial_dir is None or not trial.rows:
        return None
    name = trial.rows[-1].get("checkpoint_dir_name")
    path = trial.trial_dir / name if isinstance(name, str) else None
    return path.resolve() if path is not None and holds_model(path) else None


def _max_epochs(trial: TrialRecord, fallback: int) -> int:
    epochs = trial.config.get("epochs")
    return int(epochs) if is_number(epochs) and epochs >= 1 else fallback


def trial_rows(trials: list[TrialRecord], metric: str = PRIMARY_METRIC) -> list[dict[str, Any]]:
    """One dict per trial, ranked: best `metric` descending, ties by trial_id; trials without it last."""
    metrics = metric_keys(trials)
    longest = max((t.rows[-1]["epoch"] for t in trials if t.rows), default=0)
    out = []
    for trial in trials:
        best = best_row(trial.rows, metric)
        last = trial.rows[-1] if trial.rows else {}
        epochs_run = int(last.get("epoch", 0))
        max_epochs = _max_epochs(trial, longest)
        ckpt, ckpt_epoch = best_checkpoint(trial, metric)
        diverged = bool(_num(last.get("diverged")))
        error = trial.error
        if diverged:  # what ended the trial; an earlier recovered crash stays in error.txt
            reason = last.get("diverged_reason")
            error = reason if isinstance(reason, str) and reason else "diverged: the loss became NaN/inf"
        wall = (trial.last_result_time - trial.start_time
                if trial.start_time is not None and trial.last_result_time is not None else None)
        row: dict[str, Any] = {
            "rank": None,
            "trial_id": trial.trial_id,
            "status": trial.status,
            "error": error,
            "diverged": diverged,
            "num_failures": trial.num_failures,
            "epochs_run": epochs_run,
            "max_epochs": max_epochs,
            # ASHA (or the trainer's own patience) ended it before its epoch budget; errors are not "stopped".
            "stopped_early": trial.status == "TERMINATED" and epochs_run < max_epochs and not diverged,
            "best_epoch": int(best["epoch"]) if best else None,
        }
        for key in metrics:
            row[f"best_{key}"] = _num(best.get(key)) if best else None
        for key in metrics:
            row[f"last_{key}"] = _num(last.get(key))
        last_ckpt = last_checkpoint(trial)
        row.update({
            "best_checkpoint": str(ckpt) if ckpt else None,
            "best_checkpoint_epoch": ckpt_epoch,
            "last_checkpoint": str(last_ckpt) if last_ckpt else None,
            "node_ip": last.get("node_ip"),
            "hostname": last.get("hostname"),
            "wall_seconds": wall if wall is not None else _num(last.get("time_total_s")),
            "train_seconds": _num(last.get("time_total_s")),
            "trial_dir": str(trial.trial_dir) if trial.trial_dir else None,
            "in_experiment_state": trial.in_state,
        })
        row.update(flatten_config(trial.config))
        out.append(row)

    def rankable(r: dict[str, Any]) -> bool:
        return r[f"best_{metric}"] is not None and r["status"] != ABANDONED

    ranked = sorted((r for r in out if rankable(r)), key=lambda r: trial_rank_key(
        r[f"best_{metric}"], r.get("best_weighted_recall"), r["trial_id"]))
    for i, r in enumerate(ranked, start=1):
        r["rank"] = i
    unranked = sorted((r for r in out if not rankable(r)), key=lambda r: r["trial_id"])
    return ranked + unranked


def epoch_rows(trials: list[TrialRecord]) -> list[dict[str, Any]]:
    metrics = metric_keys(trials)
    extra: dict[str, None] = {}
    for trial in trials:  # non-numeric scalar reports (e.g. a device name) are kept too
        for r in trial.rows:
            for key, value in r.items():
                if key not in RAY_KEYS and key != "epoch" and key not in metrics and isinstance(value, (str, bool)):
                    extra.setdefault(key)
    out = []
    for trial in trials:
        for r in trial.rows:
            row = {"trial_id": trial.trial_id, "epoch": int(r["epoch"]),
                   "training_iteration": r.get("training_iteration")}
            row.update({k: _num(r.get(k)) for k in metrics})
            row.update({k: r.get(k) for k in extra})
            row.update({k: r.get(k) for k in EPOCH_TIME_KEYS})
            out.append(row)
    return out


def to_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> pa.Table:
    """Column-wise conversion: keeps int/float/bool/str types; a column of mixed kinds becomes strings."""
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    return pa.table({c: _column([r.get(c) for r in rows]) for c in columns})


def _column(values: list[Any]) -> pa.Array:
    if any(isinstance(v, float) for v in values) and all(v is None or is_number(v) for v in values):
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v, default=str)
                         for v in values], type=pa.string())


def _num(value: Any) -> int | float | None:
    return value if is_number(value) else None
