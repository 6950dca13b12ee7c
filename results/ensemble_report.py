"""Files and text of an ensemble build: the side-by-side table, the bar chart, the CSV, the atomic folder.

``<experiment>/ensemble/`` (written as a whole: a temp folder is filled, then renamed into place):
  manifest.json             members (trial ids, checkpoints, flat configs, weights), method, selection, time
  metrics.json              every member and the ensemble on val and test (core.evaluate metric names)
  predictions_test.csv      one row per test query: query_id, query_text, rank_1 .. rank_10
  members_vs_ensemble.png   bars: test R@1 and weighted recall of every member and the ensemble
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from matplotlib.figure import Figure

from results.plots import save_figure

ENSEMBLE_DIR = "ensemble"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions_test.csv"
PLOT_FILE = "members_vs_ensemble.png"
TOP_PREDICTIONS = 10
_TMP_PREFIX, _OLD_PREFIX = ".ensemble-tmp-", ".ensemble-old-"

# (header, split, metric key) of the printed table; official protocol unless named full_/small_.
TABLE_COLUMNS = (
    ("val R@1", "val", "recall_at_1"), ("val WR", "val", "weighted_recall"),
    ("val m2t R@1", "val", "m2t_recall_at_1"),
    ("test R@1", "test", "recall_at_1"), ("test WR", "test", "weighted_recall"),
    ("test m2t R@1", "test", "m2t_recall_at_1"), ("test full R@1", "test", "full_t2m_R1"),
    ("test small R@1", "test", "small_t2m_R1"),
)


def format_table(rows: Sequence[tuple[str, dict[str, dict[str, float]]]], title: str = "") -> str:
    """rows: (label, {"val": metrics, "test": metrics}) -> fixed-width text table."""
    label_width = max([len("model")] + [len(label) for label, _ in rows])
    header = f"{'model':<{label_width}}  " + "  ".join(f"{h:>{max(len(h), 7)}}" for h, _, _ in TABLE_COLUMNS)
    lines = [title, header, "-" * len(header)] if title else [header, "-" * len(header)]
    for label, metrics in rows:
        cells = []
        for head, split, key in TABLE_COLUMNS:
            value = metrics.get(split, {}).get(key)
            cells.append(f"{'-' if value is None else f'{value:.2f}':>{max(len(head), 7)}}")
        lines.append(f"{label:<{label_width}}  " + "  ".join(cells))
    return "\n".join(lines)


def plot_members_vs_ensemble(labels: Sequence[str], metrics: Sequence[dict[str, dict[str, float]]], path: Path,
                             title: str) -> Path:
    """Grouped bars (test R@1, test weighted recall; official protocol) per member, the ensemble last."""
    keys = (("recall_at_1", "test R@1"), ("weighted_recall", "test weighted recall"))
    x = np.arange(len(labels))
    width = 0.38
    fig = Figure(figsize=(max(6.0, 1.3 * len(labels) + 2), 4.8))
    ax = fig.add_subplot()
    for k, ((key, name), color) in enumerate(zip(keys, ("tab:blue", "tab:orange"))):
        values = [m["test"][key] for m in metrics]
        bars = ax.bar(x + (k - 0.5) * width, values, width, label=name, color=color)
        bars[-1].set_edgecolor("black")  # the ensemble
        bars[-1].set_linewidth(2)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    ax.axhline(max(m["test"]["recall_at_1"] for m in metrics[:-1]), color="tab:blue", ls=":", lw=1,
               label="best member R@1")
    ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("% (official protocol, text-to-motion)")
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, max(1.0, ax.get_ylim()[1]) * 1.08)   # room for the bar labels
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never hides a bar
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def write_predictions(path: Path, query_ids: Sequence[str], query_texts: Sequence[str],
                      ranked_ids: Sequence[Sequence[str]]) -> Path:
    """CSV, one row per query: query_id (the motion the caption belongs to), query_text, rank_1..rank_K."""
    k = max((len(r) for r in ranked_ids), default=0)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query_id", "query_text", *(f"rank_{j}" for j in range(1, k + 1))])
        for qid, text, ranked in zip(query_ids, query_texts, ranked_ids):
            writer.writerow([qid, text, *ranked])
    return path


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=1, sort_keys=False, default=_json_default) + "\n", encoding="utf-8")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_folder_atomically(experiment_dir: Path, writers: dict[str, Callable[[Path], Any]]) -> Path:
    """Fill a hidden temp folder with ``writers`` (file name -> write(path)), then swap it in as ``ensemble/``.

    A crash before the swap leaves the previous ``ensemble/`` untouched (and a hidden temp folder that
    the next build removes); the swap itself is two renames, so ``ensemble/`` never holds a mix of
    old and new or half-written files.
    """
    experiment_dir = Path(experiment_dir)
    final = experiment_dir / ENSEMBLE_DIR
    for stale in [*experiment_dir.glob(_TMP_PREFIX + "*"), *experiment_dir.glob(_OLD_PREFIX + "*")]:
        shutil.rmtree(stale, ignore_errors=True)   # left by a build that crashed
    tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=experiment_dir))
    old = None
    try:
        os.chmod(tmp, 0o755)   # mkdtemp makes it private; the result is an ordinary shared folder
        for name, write in writers.items():
            write(tmp / name)
        if final.exists():
            old = experiment_dir / f"{_OLD_PREFIX}{uuid.uuid4().hex[:8]}"
            os.rename(final, old)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not final.exists():
            os.rename(old, final)   # put the previous ensemble back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_manifest(experiment_dir: Path) -> dict[str, Any]:
    return json.loads((Path(experiment_dir) / ENSEMBLE_DIR / MANIFEST_FILE).read_text(encoding="utf-8"))
