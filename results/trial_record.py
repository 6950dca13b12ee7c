"""``<trial folder>/trial.json``: the record each trial of a search keeps in this project's own format (written by
search/records.py in the driver; results/ reads it before anything Tune wrote).

    {"format": "motion-retrieval-search/trial@1", "trial_id": str, "status": "RUNNING"|"TERMINATED"|"ERROR",
     "config": {flat TrainConfig}, "epochs": [one report per epoch: our metrics, "epoch", "checkpoint_dir_name",
     timings], "num_failures": int, "start_time": unix s, "last_result_time": unix s,
     "session_start": unix s of the driver session that last wrote it}
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

RECORD_FILE = "trial.json"
# In each checkpoint folder of a search's trial: the full metrics of the epoch it was written after (Tune itself
# is told only the few keys its scheduler and searcher read; search/trainable.py).
REPORT_FILE = "report.json"
# What a superseded checkpoint folder of a search holds once search/retention.py emptied it (the folder stays:
# Tune's saved state may name it): which newer checkpoint replaced it, and when.
RETIRED_FILE = "retired.json"
RECORD_FORMAT = "motion-retrieval-search/trial@1"
FINAL_STATUSES = frozenset({"TERMINATED", "ERROR"})
# A trial a killed driver left, continued by a trial of the resumed search (same study trial, same params): its
# record names it in "continued_as", and the continuing record holds its epochs. Not a trial of its own.
CONTINUED = "CONTINUED"


def last_of_chain(trial_id: str, read: Callable[[str], dict[str, Any] | None], me: str | None = None) -> str:
    """The trial that now holds the epochs of ``trial_id``: follow "continued_as" through CONTINUED records (a trial
    continued, and its continuation continued again, by resumed driver sessions), stopping before ``me``."""
    seen = {trial_id}
    while True:
        record = read(trial_id) or {}
        successor = record.get("continued_as")
        if record.get("status") != CONTINUED or not isinstance(successor, str) or successor == me or successor in seen:
            return trial_id
        trial_id = successor
        seen.add(trial_id)


def record_row(result: dict[str, Any]) -> dict[str, Any]:
    """What a record keeps of one Tune report: everything but the config (stored once per record)."""
    return {k: v for k, v in result.items() if k != "config"}


def read_record(trial_dir: Path | None, warnings: list[str]) -> dict[str, Any] | None:
    """The trial's record, or None when it has none (an older experiment, a foreign one) or it is unreadable."""
    if trial_dir is None or not (trial_dir / RECORD_FILE).is_file():
        return None
    try:
        data = json.loads((trial_dir / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        warnings.append(f"{trial_dir.name}/{RECORD_FILE} is unreadable ({type(exc).__name__}); read Tune's files "
                        "instead.")
        return None
    fields_ok = (isinstance(data, dict) and data.get("format") == RECORD_FORMAT and isinstance(data.get("epochs"), list)
                 and isinstance(data.get("config"), dict) and isinstance(data.get("status"), str))
    if not fields_ok:
        warnings.append(f"{trial_dir.name}/{RECORD_FILE} is not a {RECORD_FORMAT} record; read Tune's files instead.")
        return None
    problem = next((p for p in map(_epoch_problem, data["epochs"]) if p), None)
    if problem:
        warnings.append(f"{trial_dir.name}/{RECORD_FILE} is damaged ({problem}); read Tune's files instead.")
        return None
    return data


# The numbers results/ reads in each epoch row (a bool is an int in Python: refused apart)
EPOCH_NUMBERS = ("recall_at_1", "weighted_recall", "time_this_iter_s")


def _epoch_problem(row: Any) -> str | None:
    """Why one epoch row of a record cannot be read as what results/ expects (None: it can)."""
    if not isinstance(row, dict):
        return f"an epoch row is {type(row).__name__}, not an object"
    epoch = row.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        return f"epoch {epoch!r} is not a whole number >= 1"
    for key in EPOCH_NUMBERS:
        value = row.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"epoch {epoch}: {key} {value!r} is not a number"
    name = row.get("checkpoint_dir_name")
    if name is not None and not isinstance(name, str):
        return f"epoch {epoch}: checkpoint_dir_name {name!r} is not a folder name"
    return None
