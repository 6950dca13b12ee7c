"""Read a search's experiment directory from disk: no Ray import, no running cluster, no unpickling.

Each trial folder of a search made by this project holds ``trial.json``, the trial's own record
(results/trial_record.py: status, config, one report per epoch, failures, the driver session that last wrote it).
It is read first and wins; Tune's files below are the fallback for experiments without records (older
versions, other tools) and for the failure messages (error.txt).

Ray 2.60 layout (learned from real runs, see tests/results/test_results.py):

  <storage_path>/<name>/
    experiment_state-<session>.json  the driver's checkpoint, rewritten periodically and at the end; one file per
                                     driver session (a resumed search adds a newer one, the newest name wins):
                                     {"trial_data": [[trial_json_str, run_metadata_json_str], ...], "runner_data", "stats"}
        trial_json:        trial_id, status (PENDING/RUNNING/PAUSED/TERMINATED/ERROR), config (nested as sampled),
                           evaluated_params, relative_logdir (the trial folder name), max_failures
        run_metadata_json: start_time, num_failures, error_filename ('error.txt' or null),
                           pickled_error_filename ('error.pkl' or null), last_result (dict), last_result_time
        A trial started after the last periodic save (driver killed) is missing from it.
    tuner.pkl, basic-variant-state-*.json / searcher-state-*.pkl   (pickles: never loaded here)
    <trainable>_<trial_id>_<n>_<tag>_<date>/   one folder per started trial
        params.json   the trial's config
        result.json   JSON lines, one per tune.report: our metrics + training_iteration, trial_id, done,
                      checkpoint_dir_name, timestamp, date, time_this_iter_s, time_total_s, pid, hostname, node_ip,
                      config, ...  (ASHA-stopped trials also end with done=true, so `done` cannot tell them apart)
        progress.csv  the same rows as CSV
        checkpoint_00000K/  K is the checkpoint *index*, not the epoch: the row's checkpoint_dir_name maps a
                      report to its folder; CheckpointConfig(num_to_keep=...) deletes the others
        error.txt     per failure: "Failure # N (occurred at <date>)\\n<str(exception)>\\n" (appended)
        error.pkl     the cloudpickled exception (not loaded: unpickling runs code and needs Ray)

A trial folder that the newest experiment state does not list is either new (the live driver has not saved
it yet: its status is inferred from the folder) or ABANDONED: it was started by an earlier driver session that
died before saving it (SIGKILL, lost head node), so the resumed session never heard of it and its searcher
suggested a new trial in its place.  The newest state's "stats": {"start_time"} (when that driver session
began) tells the two apart.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from results.errors import ResultsError
from results.trial_record import CONTINUED, FINAL_STATUSES, RECORD_FILE, read_record

STATE_GLOB = "experiment_state-*.json"
TRIAL_FILES = (RECORD_FILE, "params.json", "result.json", "progress.csv", "error.txt")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Trial ids: basic variant generator '<5 hex>_<5 digits>', searchers (Optuna) 8 hex chars; folders are
# '<trainable>_<id>_<n>_<tag>_<date>' by default or a custom name such as 'trial_<id>'.
_TRIAL_ID_IN_DIRNAME = re.compile(r"_([0-9a-f]{5}_\d{5}|[0-9a-f]{8})(?:_\d+_|$)")  # Ray's or 'trial_<id>' 
_FAILURE_HEADER = re.compile(r"^Failure # \d+ \(occurred at [^)]*\)\s*$", re.MULTILINE)
MAX_ERROR_CHARS = 2000
ABANDONED = "ABANDONED"  # not a Tune status: see the module doc


@dataclass
class TrialRecord:
    """Everything known about one trial, merged from the experiment state and the trial folder."""
    trial_id: str
    status: str
    trial_dir: Path | None
    config: dict[str, Any]
    rows: list[dict[str, Any]]          # result.json reports, one per epoch, sorted by epoch
    error: str | None = None            # exception text of the last failure (also for trials Ray retried)
    num_failures: int = 0
    start_time: float | None = None     # unix seconds (experiment state)
    last_result_time: float | None = None
    in_state: bool = True               # False: status was inferred from the folder


@dataclass
class ExperimentDir:
    path: Path
    state_file: Path | None
    trials: list[TrialRecord]
    warnings: list[str] = field(default_factory=list)


def read_experiment(experiment_dir: str | Path) -> ExperimentDir:
    """Parse every trial of the experiment at `experiment_dir`; raise ResultsError if it is not one."""
    path = Path(experiment_dir).expanduser().resolve()
    fix = ("pass the folder Ray Tune wrote for one search: <storage_path>/<name>, which holds "
           f"{STATE_GLOB} and one folder per trial.")
    if not path.exists():
        raise ResultsError("experiment directory does not exist.", where=path, fix=fix)
    if not path.is_dir():
        raise ResultsError("expected an experiment directory, got a file.", where=path, fix=fix)

    warnings: list[str] = []
    state_file = newest_state_file(path)
    state, session_start = _read_state(state_file, warnings) if state_file else ({}, None)
    dirs = _trial_dirs(path)
    if not state and not dirs and state_file is not None and not warnings:
        raise ResultsError(f"the experiment has no trials yet: {state_file.name} lists none and there are no "
                           "trial folders.", where=path,
                           fix="wait until the search has started its first trial, or continue a stopped one "
                               "with run_search.py --resume --name NAME.")
    if not state and not dirs:
        nested = sorted(p.name for p in path.iterdir()   # hidden: the search's own copy of Tune's state
                        if p.is_dir() and not p.name.startswith(".") and any(p.glob(STATE_GLOB)))
        if nested:
            fix = f"this looks like a storage root; pass one of its experiments: {', '.join(nested[:10])}."
        raise ResultsError(f"not a Ray Tune experiment directory: found no {STATE_GLOB} and no trial "
                           f"folders (with any of {', '.join(TRIAL_FILES)}).", where=path, fix=fix)

    trials: dict[str, TrialRecord] = {}
    claimed: set[Path] = set()
    own = {d: read_record(d, warnings) for d in dirs}   # each trial's own record, read once
    newest_session = max((_as_float((r or {}).get("session_start")) or 0.0 for r in own.values()), default=0.0)
    for trial_id, entry in state.items():
        logdir = entry.get("relative_logdir")
        trial_dir = (path / logdir) if logdir and (path / logdir).is_dir() else None
        if trial_dir is not None:
            claimed.add(trial_dir)
        trials[trial_id] = _merge(trial_id, entry, trial_dir, own.get(trial_dir), warnings)
    for trial_dir in dirs:
        if trial_dir in claimed or (own[trial_dir] or {}).get("status") == CONTINUED:
            continue   # a continued trial's epochs are in the record of the trial that continued it
        rows = _read_rows(trial_dir, own[trial_dir], warnings)
        trial_id = _trial_id_of(trial_dir, rows)
        if trial_id is None or trial_id in trials:
            warnings.append(f"skipped folder {trial_dir.name}: cannot tell which trial it belongs to.")
            continue
        record = _merge(trial_id, {}, trial_dir, own[trial_dir], warnings, rows=rows, in_state=False)
        if _abandoned(own[trial_dir], trial_dir, rows, state_file, session_start, newest_session):
            record.status, record.in_state = ABANDONED, False
            record.error = ("abandoned: started by an earlier driver session that stopped before saving it; the "
                            "resumed search never continued it and ran a new trial in its place. Its epochs are "
                            "kept, it is not ranked.")
            warnings.append(f"trial {trial_id} was abandoned by a driver that died before saving it; listed with "
                            f"status {ABANDONED}, not ranked.")
        elif state_file is not None and own[trial_dir] is None:
            warnings.append(f"trial {trial_id} is not in {state_file.name} (the driver stopped before saving "
                            "it); its status is inferred from its folder.")
        trials[trial_id] = record
    return ExperimentDir(path=path, state_file=state_file,
                         trials=[trials[k] for k in sorted(trials)], warnings=warnings)


def _abandoned(record: dict[str, Any] | None, trial_dir: Path, rows: list[dict[str, Any]], state_file: Path | None,
               session_start: float | None, newest_session: float) -> bool:
    """Started by an earlier driver session that died before the newest one heard of it (see the module doc).
    A trial's own record settles it when there is one: unfinished, and last written by an older session."""
    if record is not None:
        written_by = _as_float(record.get("session_start")) or 0.0
        return record["status"] not in FINAL_STATUSES and written_by < newest_session
    return state_file is not None and session_start is not None and _started_at(trial_dir, rows) < session_start


def newest_state_file(path: Path) -> Path | None:
    """The experiment_state-*.json a --resume continues from (None before Tune's first save)."""
    # The session timestamp in the name sorts chronologically; mtime breaks ties between copies.
    files = sorted(path.glob(STATE_GLOB), key=lambda p: (p.name, p.stat().st_mtime))
    return files[-1] if files else None


def _read_state(state_file: Path, warnings: list[str]) -> tuple[dict[str, dict[str, Any]], float | None]:
    """(trial_id -> merged trial + run-metadata dict, start time of the driver session) of one state file."""
    try:
        data = json.loads(state_file.read_text())
        entries = data["trial_data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        warnings.append(f"could not read {state_file.name} ({exc}); trial statuses are inferred from folders.")
        return {}, None
    stats = data.get("stats")
    session_start = _as_float(stats.get("start_time")) if isinstance(stats, dict) else None
    state: dict[str, dict[str, Any]] = {}
    for entry in entries:
        try:
            trial = json.loads(entry[0])
            meta = json.loads(entry[1]) if len(entry) > 1 and entry[1] else {}
            state[str(trial["trial_id"])] = {**meta, **trial}
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            warnings.append(f"skipped an unreadable trial entry in {state_file.name}: {exc}")
    return state, session_start


def _started_at(trial_dir: Path, rows: list[dict[str, Any]]) -> float:
    """When the trial started: Tune writes params.json once per (re)start of a trial."""
    params = trial_dir / "params.json"
    if params.is_file():
        return params.stat().st_mtime
    stamps = [r["timestamp"] for r in rows if _as_float(r.get("timestamp")) is not None]
    return float(min(stamps)) if stamps else trial_dir.stat().st_mtime


def _trial_dirs(path: Path) -> list[Path]:
    out = []
    for child in sorted(path.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        if any((child / f).is_file() for f in TRIAL_FILES) or any(child.glob("checkpoint_*")):
            out.append(child)
    return out


def _trial_id_of(trial_dir: Path, rows: list[dict[str, Any]]) -> str | None:
    for row in rows:
        if isinstance(row.get("trial_id"), str):
            return row["trial_id"]
    match = _TRIAL_ID_IN_DIRNAME.search(trial_dir.name)
    return match.group(1) if match else None


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_rows(trial_dir: Path | None, record: dict[str, Any] | None, warnings: list[str]) -> list[dict[str, Any]]:
    """The trial's reports, one per epoch (a restored trial may repeat an epoch: the later report wins): from its
    own record (trial.json) when it has one, else from Tune's result.json."""
    if record is not None:
        return _valid_rows(trial_dir, RECORD_FILE, record["epochs"], warnings)
    if trial_dir is None or not (trial_dir / "result.json").is_file():
        return []
    with open(trial_dir / "result.json", encoding="utf-8", errors="replace") as fh:
        return _valid_rows(trial_dir, "result.json", (_json_or_none(line) for line in fh if line.strip()), warnings)


def _json_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None   # a line torn by a killed driver


def _valid_rows(trial_dir: Path, source: str, rows, warnings: list[str]) -> list[dict[str, Any]]:
    by_epoch: dict[int, dict[str, Any]] = {}
    bad = 0
    for row in rows:
        epoch = row.get("epoch", row.get("training_iteration")) if isinstance(row, dict) else None
        # NaN/Infinity parse as JSON floats: a damaged line, not an epoch or a score (a diverged trial reports 0)
        if not _finite_number(epoch) or epoch < 1 or not _finite_number(row.get("recall_at_1", 0.0)):
            bad += 1
            continue
        row["epoch"] = int(epoch)
        by_epoch[int(epoch)] = row
    if bad:
        warnings.append(f"{trial_dir.name}/{source}: skipped {bad} unreadable line(s).")
    return [by_epoch[e] for e in sorted(by_epoch)]


def _merge(trial_id: str, entry: dict[str, Any], trial_dir: Path | None, record: dict[str, Any] | None,
           warnings: list[str], *, rows: list[dict[str, Any]] | None = None, in_state: bool = True) -> TrialRecord:
    rows = _read_rows(trial_dir, record, warnings) if rows is None else rows
    if record is not None:   # the project's own record is written on every event: it wins over Tune's state
        entry = {**entry, "status": record["status"], "config": record["config"],
                 **{k: record.get(k) for k in ("num_failures", "start_time", "last_result_time")}}
        in_state = True
    config = record["config"] if record is not None else _read_config(trial_dir, entry, rows)
    error_text = _read_error_file(trial_dir, entry.get("error_filename"))
    status = entry.get("status") if in_state else None
    if not isinstance(status, str):
        status = _infer_status(trial_dir, rows, config, error_text)
    num_failures = entry.get("num_failures")
    if not isinstance(num_failures, int):
        num_failures = len(_FAILURE_HEADER.findall(error_text)) if error_text else 0
    return TrialRecord(
        trial_id=trial_id, status=status, trial_dir=trial_dir,
        config=config,
        rows=rows,
        error=_last_failure_message(error_text),
        num_failures=num_failures,
        start_time=_as_float(entry.get("start_time")),
        last_result_time=_as_float(entry.get("last_result_time")),
        in_state=in_state,
    )


def _infer_status(trial_dir: Path | None, rows: list[dict[str, Any]], config: dict[str, Any],
                  error_text: str | None) -> str:
    """Best guess for a trial the experiment state does not list (the driver died before saving it).

    A trial that reached its end after a failure was recovered (TERMINATED); otherwise a failure
    on record means ERROR.  File mtimes cannot order the two: Ray writes result.json lazily.
    """
    epochs = config.get("epochs")
    finished = bool(rows) and (rows[-1].get("done") is True  # ASHA's stop / max_t marks the last report done
                               or (isinstance(epochs, int) and rows[-1]["epoch"] >= epochs))
    if error_text and trial_dir is not None and not finished:
        return "ERROR"
    return "TERMINATED" if finished else "RUNNING"  # started (it has a folder), never finished as far as we know


def _read_config(trial_dir: Path | None, entry: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    if trial_dir is not None and (trial_dir / "params.json").is_file():
        try:
            config = json.loads((trial_dir / "params.json").read_text())
            if isinstance(config, dict):
                return _drop_pickles(config)
        except (OSError, ValueError):
            pass
    for candidate in (entry.get("config"), rows[-1].get("config") if rows else None):
        if isinstance(candidate, dict):
            return _drop_pickles(candidate)
    # A trial whose driver died before writing params.json or any result line: the worker had already
    # saved checkpoints, and core.train writes the flat config next to each (config.json).
    for config_file in sorted(trial_dir.glob("checkpoint_*/config.json")) if trial_dir is not None else ():
        try:
            config = json.loads(config_file.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(config, dict):
            return config
    return {}


def _drop_pickles(value: Any) -> Any:
    """Ray stores values JSON cannot hold as {"_type": "CLOUDPICKLE_FALLBACK", ...}; show them as a marker."""
    if isinstance(value, dict):
        if value.get("_type") == "CLOUDPICKLE_FALLBACK":
            return "<pickled>"
        return {str(k): _drop_pickles(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_drop_pickles(v) for v in value]
    return value


def _read_error_file(trial_dir: Path | None, error_filename: Any) -> str | None:
    if trial_dir is None:
        return None
    name = error_filename if isinstance(error_filename, str) and error_filename else "error.txt"
    err = trial_dir / name
    if err.is_file():
        return _ANSI.sub("", err.read_text(encoding="utf-8", errors="replace"))
    if (trial_dir / "error.pkl").is_file():
        return "Failure # 1 (occurred at unknown)\n(only error.pkl was written; unpickle it with Ray to see it)"
    return None


def _last_failure_message(error_text: str | None) -> str | None:
    """The exception line(s) of the last failure in error.txt, without Ray's traceback frames."""
    if not error_text:
        return None
    blocks = _FAILURE_HEADER.split(error_text)
    block = blocks[-1].strip("\n")
    lines = block.splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    if frames:
        # After the last frame come its indented source/caret lines, then the exception text at column 0.
        rest = lines[frames[-1] + 1:]
        while rest and (rest[0].startswith(" ") or not rest[0].strip()):
            rest = rest[1:]
        if rest:
            lines = rest
    message = "\n".join(line.rstrip() for line in lines).strip()
    return message[:MAX_ERROR_CHARS] or None


def _as_float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
