"""Plain-text leaderboard of a search (no table library: fixed-width columns)."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pyarrow as pa

MAX_CONFIG_COLUMNS = 8
MAX_CELL = 18


def differing_config_columns(trials: pa.Table) -> list[str]:
    """config/* columns whose value is not the same for every trial (the knobs the search varied)."""
    names = [n for n in trials.column_names if n.startswith("config/")]
    # A trial whose config is unknown (no params.json yet) must not make every key look varied.
    rows = [r for r in trials.select(names).to_pylist() if any(v is not None for v in r.values())]
    return [name for name in names
            if len({json.dumps(r[name], sort_keys=True, default=str) for r in rows}) > 1]


def format_leaderboard(trials: pa.Table, top: int = 10, title: str | None = None) -> str:
    """Top `top` ranked trials (trials.parquet order) plus a status summary and the errors."""
    rows = trials.to_pylist()
    ranked = [r for r in rows if r.get("rank") is not None][:max(top, 0)]
    config_cols = differing_config_columns(trials)
    hidden = len(config_cols) - MAX_CONFIG_COLUMNS
    config_cols = config_cols[:MAX_CONFIG_COLUMNS]

    header = ["rank", "trial", "status", "epochs", "best R@1 [95% CI]", "wR", "@epoch"]
    header += [c.removeprefix("config/") for c in config_cols]
    numeric = [True, False, False, True, True, True, True] + [True] * len(config_cols)
    body = []
    for r in ranked:
        epochs = f"{r['epochs_run']}/{r['max_epochs']}" + ("*" if r.get("stopped_early") else "")
        status = "DIVERGED" if r.get("diverged") else r["status"]
        cells = [str(r["rank"]), r["trial_id"], status, epochs, _with_ci(r),
                 _fmt(r.get("best_weighted_recall"), 2), _fmt(r.get("best_epoch"))]
        cells += [_fmt(r.get(c)) for c in config_cols]
        body.append(cells)
    for j, cells in enumerate(zip(*body)):  # a config column of text is left-aligned
        if j >= 7 and not all(_looks_numeric(c) for c in cells):
            numeric[j] = False

    widths = [max(len(h), *(len(b[j]) for b in body)) if body else len(h) for j, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(cells, widths, numeric)).rstrip()

    lines = [title] if title else []
    lines += [line(header), line(["-" * w for w in widths])] + [line(b) for b in body]
    if not body:
        lines.append("(no trial has reported recall_at_1 yet)")
    lines.append("")
    lines.append(_summary(rows, len(ranked)))
    if any(r.get("best_recall_at_1_lo") is not None for r in ranked):
        lines.append("[95% CI] = bootstrap over the val queries; trials whose intervals overlap may not differ, and "
                     "the top one is partly luck: the refit retrains the top configs over seeds.")
    if any(r.get("stopped_early") for r in ranked):
        lines.append("* stopped early by the scheduler (ASHA) or the trainer's patience")
    if hidden > 0:
        lines.append(f"(+{hidden} more config keys differ between trials: see trials.parquet)")
    errors = [r for r in rows if r.get("status") == "ERROR"]
    if errors:
        lines.append("errors:")
        for r in errors[:top]:
            # The first line of the exception text holds its type and message.
            first = (r.get("error") or "(no error.txt)").strip().splitlines()[0]
            lines.append(f"  {r['trial_id']} (after {r['epochs_run']} epoch{'' if r['epochs_run'] == 1 else 's'}): {_clip(first, 160)}")
        if len(errors) > top:
            lines.append(f"  ... {len(errors) - top} more in trials.parquet (column 'error')")
    diverged = [r for r in rows if r.get("diverged")]
    if diverged:
        lines.append("diverged (ended by a NaN/inf loss, reported as R@1 = 0):")
        for r in diverged[:top]:
            first = (r.get("error") or "").strip().splitlines()[0] if r.get("error") else "NaN/inf loss"
            lines.append(f"  {r['trial_id']}: {_clip(first, 160)}")
    return "\n".join(lines)


def _with_ci(row: dict[str, Any]) -> str:
    """'61.88 [57.9, 65.8]': the best epoch's val R@1 and its bootstrap CI over the val queries."""
    value, low, high = (row.get(f"best_recall_at_1{s}") for s in ("", "_lo", "_hi"))
    if value is None or low is None or high is None:
        return _fmt(value, 2)
    return f"{value:.2f} [{low:.1f}, {high:.1f}]"


def _summary(rows: list[dict[str, Any]], shown: int) -> str:
    counts = Counter(r["status"] for r in rows)
    parts = [f"{n} {status}" for status, n in sorted(counts.items())]
    stopped = sum(1 for r in rows if r.get("stopped_early"))
    recovered = sum(1 for r in rows if r.get("num_failures") and r.get("status") != "ERROR")
    text = f"{len(rows)} trial{'' if len(rows) == 1 else 's'}: " + ", ".join(parts) + f"; {stopped} stopped early"
    diverged = sum(1 for r in rows if r.get("diverged"))
    if diverged:
        text += f"; {diverged} diverged"
    if recovered:
        text += f"; {recovered} recovered after failures (Ray retried them from a checkpoint)"
    return text + f"; showing top {shown}."


def _fmt(value: Any, digits: int | None = None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if digits is not None else f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return _clip(json.dumps(value), MAX_CELL)
    return _clip(str(value), MAX_CELL)


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return cell == "-"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."
