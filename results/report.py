"""write_results / load_trials: turn a finished (or interrupted) Tune experiment folder into tables and plots."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from core.atomic import atomic_path
from results.errors import ResultsError
from results.experiment_dir import STATE_GLOB, ExperimentDir, read_experiment
from results.leaderboard import format_leaderboard
from results.plots import load_embeddings, plot_embedding_map, plot_recall_vs_epoch, plot_similarity
from results.trial_record import RECORD_FILE
from results.tables import PRIMARY_METRIC, epoch_rows, flatten_config, to_table, trial_rows

TRIALS_FILE = "trials.parquet"
EPOCHS_FILE = "epochs.parquet"
PLOTS_DIR = "plots"
RECALL_PLOT, SIMILARITY_PLOT, TSNE_PLOT = "recall_vs_epoch.png", "best_similarity.png", "best_tsne.png"


@dataclass
class ExperimentResults:
    experiment_dir: Path
    trials: pa.Table                 # one row per trial, ranked (trials.parquet)
    epochs: pa.Table                 # one row per reported epoch (epochs.parquet)
    best_trial_id: str
    best_config: dict[str, Any]      # the best trial's flat config (nested keys joined with '/')
    best_checkpoint: Path | None     # its best still-existing checkpoint dir
    leaderboard_text: str
    plots: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def trials_path(self) -> Path:
        return self.experiment_dir / TRIALS_FILE

    def best_report(self) -> dict[str, Any] | None:
        """Every metric the best trial reported at its best epoch (epochs.parquet's row), or None."""
        best = [r for r in self.trials.to_pylist() if r.get("trial_id") == self.best_trial_id]
        epoch = best[0].get("best_epoch") if best else None
        rows = [r for r in self.epochs.to_pylist() if r.get("trial_id") == self.best_trial_id and r.get("epoch") == epoch]
        return {k: v for k, v in rows[0].items() if v is not None} if rows else None

    @property
    def epochs_path(self) -> Path:
        return self.experiment_dir / EPOCHS_FILE


def write_results(experiment_dir: Path | str, *, quiet: bool = False, top: int = 10) -> ExperimentResults:
    """Write trials.parquet, epochs.parquet and plots/*.png into the experiment folder; print the leaderboard.

    Works on a live, finished or interrupted experiment; needs no Ray cluster. Raises ResultsError when the folder
    is not a Tune experiment or no trial has finished an epoch (the parquet files are still written then, so the
    trial statuses and errors can be inspected).
    """
    exp = read_experiment(experiment_dir)
    trials, epochs = _write_tables(exp)
    ranked = [r for r in trials.select(["rank", "trial_id"]).to_pylist() if r["rank"] is not None]
    if not ranked:
        raise ResultsError(_no_epoch_problem(exp, epochs), where=exp.path,
                           fix=f"wait until a trial finishes its first epoch; statuses and errors are in "
                               f"{exp.path / TRIALS_FILE}.")
    best_id = ranked[0]["trial_id"]
    record = next(t for t in exp.trials if t.trial_id == best_id)
    best_row = trials.slice(0, 1).to_pylist()[0]
    best_ckpt = Path(best_row["best_checkpoint"]) if best_row["best_checkpoint"] else None
    warnings = list(exp.warnings)

    leaderboard = format_leaderboard(trials, top=top,
                                     title=f"Experiment {exp.path.name}: top {top} by best val recall@1")
    plots = _write_plots(exp, trials, epochs, best_id, best_ckpt, warnings)
    study = _study_report(exp.path, warnings)
    plots += study.plots if study else []
    results = ExperimentResults(experiment_dir=exp.path, trials=trials, epochs=epochs, best_trial_id=best_id,
                                best_config=flatten_config(record.config, prefix=""), best_checkpoint=best_ckpt,
                                leaderboard_text=leaderboard, plots=plots, warnings=warnings)
    if not quiet:
        print(leaderboard)
        for note in warnings:
            print(f"note: {note}")
        if study is not None:
            print("\n" + study.text())
        print(f"\nbest trial {best_id}: checkpoint {best_ckpt or '(none left on disk)'}")
        print(f"tables: {results.trials_path}\n        {results.epochs_path}")
        print("plots:  " + "\n        ".join(str(p) for p in plots))
    return results


def _study_report(path: Path, warnings: list[str]):
    """Parameter importances and the parallel-coordinates plot from the search's Optuna study (None without one)."""
    from results.study_report import StudyGone, load_search_study, study_report, study_storage

    try:
        study = load_search_study(path)
    except StudyGone as exc:
        warnings.append(f"the Optuna study could not be read ({exc}).")
        return None
    except ResultsError:
        return None      # an experiment from before the study moved into a database
    except Exception as exc:   # an unreachable --optuna-storage server must not hide the tables and plots
        warnings.append(f"the Optuna study could not be read ({type(exc).__name__}: {exc}).")
        return None
    return study_report(study, path / PLOTS_DIR, storage=study_storage(path)[0])


def load_trials(experiment_dir: Path | str) -> pa.Table:
    """trials.parquet of an experiment (ranked by best recall_at_1); (re)built when missing or older than the run."""
    path = Path(experiment_dir).expanduser().resolve()
    table_file = path / TRIALS_FILE
    if table_file.is_file() and table_file.stat().st_mtime >= _newest_input_mtime(path):
        try:
            cached = pq.read_table(table_file)
        except (OSError, pa.ArrowException):   # truncated or damaged: it is derived data, rebuilt below
            cached = None
        if cached is not None and _rooted_at(cached, path):
            return cached
    trials, _ = _write_tables(read_experiment(path))
    return trials


def _rooted_at(trials: pa.Table, path: Path) -> bool:
    """The table's paths point into this folder (not the one a copied or moved experiment came from)."""
    if "trial_dir" not in trials.column_names:
        return False
    return all(d is None or Path(d).is_relative_to(path) for d in trials.column("trial_dir").to_pylist())


def _write_tables(exp: ExperimentDir) -> tuple[pa.Table, pa.Table]:
    trials = to_table(trial_rows(exp.trials, PRIMARY_METRIC))
    rows = epoch_rows(exp.trials)
    epochs = to_table(rows) if rows else pa.table({"trial_id": pa.array([], pa.string()),
                                                   "epoch": pa.array([], pa.int64())})
    write_parquet(trials, exp.path / TRIALS_FILE)
    write_parquet(epochs, exp.path / EPOCHS_FILE)
    return trials, epochs


def write_parquet(table: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _write_plots(exp: ExperimentDir, trials: pa.Table, epochs: pa.Table, best_id: str, best_ckpt: Path | None,
                 warnings: list[str]) -> list[Path]:
    out_dir = exp.path / PLOTS_DIR
    plots = [plot_recall_vs_epoch(epochs, trials, best_id, out_dir / RECALL_PLOT,
                                  title=f"{exp.path.name}: validation R@1 per epoch ({trials.num_rows} trials)")]
    stale = [out_dir / SIMILARITY_PLOT, out_dir / TSNE_PLOT]
    try:
        if best_ckpt is None:
            raise ResultsError(f"best trial {best_id} has no checkpoint left on disk; embedding plots skipped.")
        emb = load_embeddings(best_ckpt)
        title = f"best trial {best_id} ({best_ckpt.name})"
        plots.append(plot_similarity(emb, out_dir / SIMILARITY_PLOT, title))
        plots.append(plot_embedding_map(emb, out_dir / TSNE_PLOT, title))
    except ResultsError as exc:
        warnings.append(str(exc))
    for old in stale:  # never leave a plot of a previous render's best trial next to the new ones
        if old not in plots:
            old.unlink(missing_ok=True)
    return plots


def _no_epoch_problem(exp: ExperimentDir, epochs: pa.Table) -> str:
    statuses = ", ".join(f"{t.trial_id}={t.status}" for t in exp.trials[:10])
    if epochs.num_rows:
        reported = sorted(set(epochs.column_names) - {"trial_id", "epoch"})
        return (f"no trial reported {PRIMARY_METRIC!r} (reported columns: {', '.join(reported[:20])}).")
    errors = sorted((t for t in exp.trials if t.error), key=lambda t: t.status != "ERROR")  # fatal ones first
    first_error = f" First error ({errors[0].trial_id}): {errors[0].error.splitlines()[0]}" if errors else ""
    damaged = f" Unreadable records: {'; '.join(exp.warnings[:3])}" if exp.warnings else ""   # the likely reason
    return f"no trial has finished an epoch yet ({len(exp.trials)} trials: {statuses}).{first_error}{damaged}"


def _newest_input_mtime(path: Path) -> float:
    newest = 0.0
    inputs = (STATE_GLOB, f"*/{RECORD_FILE}", "*/result.json", "*/error.txt")
    for candidate in [p for pattern in inputs for p in path.glob(pattern)]:
        try:
            newest = max(newest, candidate.stat().st_mtime)
        except OSError:
            continue
    return newest
