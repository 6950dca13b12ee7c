"""Each trial's own record, ``<trial folder>/trial.json``, in a format this project owns (results/trial_record.py
reads it): config, status, every epoch's metrics with its checkpoint folder, failures, and the driver session
that last wrote it. Written by the driver through Tune's public ``Callback`` API, atomically, on every
start, epoch, end and failure, so results/ need not parse Tune's experiment state (the failure messages
stay in Tune's plain-text error.txt beside it).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ray import tune

from results.trial_record import (CONTINUED, FINAL_STATUSES, RECORD_FILE, RECORD_FORMAT, REPORT_FILE, last_of_chain,
                                  record_row)

from . import storage
from .retention import apply_retention
from .continuation import CONTINUES_KEY, STOPPED_KEY


def trial_folder(trial, experiment_path: str) -> str:
    """The trial's folder in the experiment's storage (Tune's trial path has no scheme on cloud storage)."""
    trial_dir = Path(trial.path)
    if trial_dir.is_absolute() and not storage.is_uri(experiment_path):
        return str(trial_dir)
    return storage.join(experiment_path, trial_dir.name)


class TrialRecords(tune.Callback):
    """Keeps ``trial.json`` of every trial current, and its checkpoints to their purpose (search/retention.py).
    ``experiment_path`` is where the records go when Tune's trial path is not a local folder (cloud storage:
    Tune's path there has no scheme); ``keep_best``: keep each trial's best model besides its latest checkpoint
    (the search; the refit keeps the latest only)."""

    def __init__(self, experiment_path: str, base_config: dict[str, Any] | None = None, keep_best: bool = True) -> None:
        self.experiment_path = experiment_path
        self.base_config = dict(base_config or {})   # the constants Tune's sampled trial configs go over
        self.keep_best = keep_best
        self.session_start = time.time()
        self._records: dict[str, dict[str, Any]] = {}
        self._ended_before: set[str] = set()
        self._reconciled = False

    def setup(self, **info: Any) -> None:
        # Called once per driver session (a --resume restores this object from tuner.pkl, then calls setup):
        # a record the newest session never wrote to belongs to a trial that session did not continue.
        self.session_start = time.time()
        self._records = {}
        self._ended_before = set()   # trials an earlier session's record calls TERMINATED (see _live_status)
        self._reconciled = False

    def on_step_begin(self, iteration, trials, **info) -> None:
        """Once per session: a trial Tune's restored state has finished, whose record a killed driver left
        RUNNING (it died between the trial's end and writing it), gets its final status now; otherwise results/
        would take it for abandoned."""
        if self._reconciled:
            return
        self._reconciled = True
        for trial in trials:
            if trial.status in FINAL_STATUSES:
                existing = _read_existing(self._target(trial))
                if existing is not None and existing.get("status") != trial.status:
                    self._write(trial, trial.status)

    def __getstate__(self) -> dict[str, Any]:
        # no per-session state in tuner.pkl
        return {"experiment_path": self.experiment_path, "base_config": self.base_config, "keep_best": self.keep_best}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["experiment_path"], state.get("base_config"), state.get("keep_best", True))

    def _folder(self, trial) -> str:
        return trial_folder(trial, self.experiment_path)

    def _target(self, trial) -> str:
        return storage.join(self._folder(trial), RECORD_FILE)

    def _record(self, trial) -> dict[str, Any]:
        record = self._records.get(trial.trial_id)
        if record is None:
            sampled = {k: v for k, v in trial.config.items() if k not in (CONTINUES_KEY, STOPPED_KEY)}
            record = self._records[trial.trial_id] = {
                "format": RECORD_FORMAT, "trial_id": trial.trial_id, "config": {**self.base_config, **sampled},
                "start_time": time.time(), "epochs": [], "num_failures": 0}
            previous = _read_existing(self._target(trial))   # a resumed trial keeps its earlier epochs
            if previous is not None:
                for key in ("start_time", "epochs", "num_failures"):
                    record[key] = previous.get(key, record[key])
                if previous.get("status") == "TERMINATED":
                    self._ended_before.add(trial.trial_id)
            elif isinstance(trial.config.get(CONTINUES_KEY), str):
                self._take_over(trial, record, trial.config[CONTINUES_KEY])
        return record

    def _take_over(self, trial, record: dict[str, Any], earlier_id: str) -> None:
        """This trial continues one a killed driver left (search/study.py: same study trial, same params): its
        record starts with the earlier one's epochs (their checkpoints stay in the earlier folder), and the
        earlier record says where it went, so results/ lists the trial once."""
        def path_of(trial_id: str) -> str:
            return storage.join(storage.join(self.experiment_path, f"trial_{trial_id}"), RECORD_FILE)

        earlier_id = last_of_chain(earlier_id, lambda t: _read_existing(path_of(t)), me=trial.trial_id)
        earlier = path_of(earlier_id)
        old = _read_existing(earlier)
        if old is None:
            return
        record.update(continues=earlier_id, start_time=old.get("start_time", record["start_time"]),
                      epochs=[{**e, "checkpoint_dir_name": _from_sibling(earlier_id, e["checkpoint_dir_name"])}
                              if isinstance(e.get("checkpoint_dir_name"), str) else e for e in old["epochs"]])
        old.update(status=CONTINUED, continued_as=trial.trial_id, updated=time.time())
        try:
            storage.write_json(earlier, old)
        except OSError:
            pass

    def _full_report(self, trial, result: dict[str, Any]) -> dict[str, Any]:
        name = result.get("checkpoint_dir_name")
        if not isinstance(name, str) or not name:
            return {}
        path = storage.join(storage.join(self._folder(trial), name), REPORT_FILE)
        try:
            report = storage.read_json(path)
        except (OSError, ValueError):   # gone or torn: the record keeps the lean row (results/ shows fewer metrics)
            return {}
        return report if isinstance(report, dict) else {}

    def _write(self, trial, status: str) -> None:
        record = self._record(trial)
        record.update(status=status, session_start=self.session_start, updated=time.time())
        try:
            storage.write_json(self._target(trial), record)
        except OSError:
            pass   # a full or read-only disk: Tune's own files report it; results/ falls back to them

    def _live_status(self, trial) -> str:
        """RUNNING, unless an earlier session's record says the trial had ended: a driver killed before Tune's
        saved state knew that starts the trial again, and the trainable reads this record to report where it
        ended instead of training it anew (search/trainable.py). Writing RUNNING here would hide that from it."""
        self._record(trial)
        return "TERMINATED" if trial.trial_id in self._ended_before else "RUNNING"

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._write(trial, self._live_status(trial))

    def on_trial_restore(self, iteration, trials, trial, **info) -> None:
        self._write(trial, self._live_status(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        record = self._record(trial)
        # Tune was told the lean keys only; the full metrics are in the report.json of the checkpoint folder the
        # trial had persisted before this result was sent (search/trainable.py).
        row = {**self._full_report(trial, result), **record_row(result)}
        # a restored trial repeats an epoch: the later report replaces the earlier; an ended trial that Tune
        # started anew reports its last epoch again without a checkpoint (search/trainable.py): it keeps its own
        earlier = [e for e in record["epochs"] if e.get("epoch") == row.get("epoch")]
        if earlier and not row.get("checkpoint_dir_name"):
            row = {**earlier[-1], **{k: v for k, v in row.items() if v is not None}}
        record["epochs"] = [e for e in record["epochs"] if e.get("epoch") != row.get("epoch")] + [row]
        record["last_result_time"] = time.time()
        self._write(trial, self._live_status(trial))

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info) -> None:
        """Tune registers a result's checkpoint in a save step after the result: only then may the older ones be
        brought to their purpose. Earlier, a Ctrl+C between the two left Tune's saved state naming an emptied
        folder; the trial then continued from the newer one while Tune counted from the older (its next
        checkpoint overwrote a folder the record names, and its iteration count fell one short)."""
        folder, newest = self._folder(trial), Path(str(getattr(checkpoint, "path", "") or "")).name
        if newest.startswith("checkpoint_") and not storage.is_uri(folder):
            apply_retention(Path(folder), self._record(trial)["epochs"], newest, keep_best=self.keep_best)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._write(trial, "TERMINATED")

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:   # failed, Tune retries it
        record = self._record(trial)
        record["num_failures"] = int(record.get("num_failures") or 0) + 1
        self._write(trial, "RUNNING")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:   # failed for good (the message: error.txt)
        record = self._record(trial)
        record["num_failures"] = int(record.get("num_failures") or 0) + 1
        self._write(trial, "ERROR")


def _from_sibling(trial_id: str, name: str) -> str:
    """A checkpoint folder of sibling trial ``trial_id`` as seen from another trial's folder."""
    return name if name.startswith("../") else f"../trial_{trial_id}/{name}"


def _read_existing(target: str) -> dict[str, Any] | None:
    try:
        data = storage.read_json(target) if storage.exists(target) else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == RECORD_FORMAT else None
