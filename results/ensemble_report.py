"""Files and text of an ensemble build: the side-by-side table, the bar chart, the CSV, the atomic folder.

``<experiment>/ensemble/`` (written as a whole: a temp folder is filled, then renamed into place):
  manifest.json             members (trial ids, checkpoints, flat configs, weights), method, selection, time
  metrics.json              every member, every fusion variant and the chosen one on val and test [and
                            eval_data: --eval-data's split] (core.evaluate metric names, with CIs), paired
                            gains vs the best member, diversity
  predictions_test.csv      one row per test query: query_id, query_text, rank_1 .. rank_10
  members_vs_ensemble.png   bars: test R@1 with 95 % CIs of every member and fusion, the chosen one outlined
"""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
import textwrap
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from matplotlib.figure import Figure

from core.crossdata import EVAL_KEY
from results.errors import ResultsError
from results.plots import save_figure

ENSEMBLE_DIR = "ensemble"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions_test.csv"
PLOT_FILE = "members_vs_ensemble.png"
TOP_PREDICTIONS = 10
_TMP_PREFIX, _OLD_PREFIX = ".ensemble-tmp-", ".ensemble-old-"

def _ci(m, split: str, key: str = "recall_at_1") -> str:
    value, low, high = (m.metrics[split].get(f"{key}{s}") for s in ("", "_lo", "_hi"))
    if value is None:
        return "-"
    return f"{value:.2f} [{low:.1f}, {high:.1f}]" if low is not None else f"{value:.2f}"


def _gain(m, split: str, key: str = "recall_at_1") -> str:
    ci = m.gains.get(split, {}).get(key)
    return "-" if ci is None else f"{ci.value:+.2f} [{ci.low:+.1f}, {ci.high:+.1f}]"


def format_table(fs, title: str = "") -> str:
    """Members, then every fusion variant: val/test R@1 with CIs and the paired gain over the best member."""
    has_eq = "eq_recall_at_1" in fs.members[0].metrics["test"]
    columns = [("val R@1 [CI]", lambda m: _ci(m, "val")), ("val gain [paired CI]", lambda m: _gain(m, "val")),
               ("test R@1 [CI]", lambda m: _ci(m, "test")), ("test gain [paired CI]", lambda m: _gain(m, "test")),
               ("test full R@1", lambda m: f"{m.metrics['test']['full_t2m_R1']:.2f}")]
    if has_eq:
        columns += [("test eq R@1 gain", lambda m: _gain(m, "test", "eq_recall_at_1"))]
    if EVAL_KEY in fs.members[0].metrics:   # --eval-data: the other dataset, reported beside test
        columns += [("eval-data R@1 [CI]", lambda m: _ci(m, EVAL_KEY)),
                     ("eval-data gain [paired CI]", lambda m: _gain(m, EVAL_KEY))]
    rows = []
    for i, m in enumerate(fs.members):
        rows.append((f"{'> ' if m is fs.chosen else '  '}{m.label}{' (best on val)' if i == fs.best_member else ''}", m))
    rows += [(("> " if v is fs.chosen else "  ") + v.label, v) for v in fs.variants]
    label_w = max(len("model"), *(len(label) for label, _ in rows))
    cells = [[fn(m) for _, fn in columns] for _, m in rows]
    widths = [max(len(h), *(len(c[j]) for c in cells)) for j, (h, _) in enumerate(columns)]
    header = f"{'model':<{label_w}}  " + "  ".join(h.rjust(w) for (h, _), w in zip(columns, widths))
    lines = ([title] if title else []) + [header, "-" * len(header)]
    for (label, _), row in zip(rows, cells):
        lines.append(f"{label:<{label_w}}  " + "  ".join(c.rjust(w) for c, w in zip(row, widths)))
    lines.append("gain = minus the best member (chosen on val); > = what the ensemble is"
                 + ("; eq = label/caption-equivalent view" if has_eq else ""))
    return "\n".join(lines)


def verdict_text(fs, encoded) -> str:
    """One paragraph: what was chosen and what it is worth on test, with the paired CI - or why nothing was."""
    best = fs.members[fs.best_member]
    if fs.fallback:
        top = fs.best_variant
        extra = (f" For the record, {top.label} on test: R@1 {_gain(top, 'test')} vs the best member."
                 if top is not None else "")
        return (f"ensemble: falls back to the best member {best.label} ({fs.reason}).{extra}")
    gain = fs.chosen.gains["test"]["recall_at_1"]
    decided = ("a decided gain" if gain.low > 0 else "a decided LOSS" if gain.high < 0 else
               "not distinguishable from the best member")
    eq = fs.chosen.gains["test"].get("eq_recall_at_1")
    eq_text = f"; label-equivalent R@1 {eq.signed()}" if eq is not None else ""
    other = fs.chosen.gains.get(EVAL_KEY, {}).get("recall_at_1")
    other_text = f"; on the eval data R@1 {other.signed()}" if other is not None else ""
    return (f"ensemble: {fs.chosen.label} ({fs.reason}). On test vs the best member {best.label}: R@1 "
            f"{gain.signed()} (paired 95 % CI: {decided}){eq_text}{other_text}.")


def plot_members_vs_ensemble(fs, path: Path, title: str) -> Path:
    """Top: test R@1 with its 95 % bootstrap CI of every member and fusion (the kept one outlined).
    Bottom: each one's paired test gain over the best member (chosen on val), with the paired 95 % CI."""
    models = [*fs.members, *fs.variants]
    labels = [textwrap.fill(m.label, 18) for m in models]
    x = np.arange(len(models))
    colors = ["tab:blue"] * len(fs.members) + ["tab:orange"] * len(fs.variants)
    values = np.array([m.metrics["test"]["recall_at_1"] for m in models])
    low = values - np.array([m.metrics["test"].get("recall_at_1_lo", v) for m, v in zip(models, values)])
    high = np.array([m.metrics["test"].get("recall_at_1_hi", v) for m, v in zip(models, values)]) - values
    gains = [m.gains["test"]["recall_at_1"] for m in models]
    fig = Figure(figsize=(max(6.0, 0.9 * len(models) + 2.5), 8.0))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    bars = top.bar(x, values, 0.7, yerr=[low, high], capsize=3, color=colors, ecolor="black")
    chosen = models.index(fs.chosen)
    bars[chosen].set_edgecolor("black")
    bars[chosen].set_linewidth(2.5)
    top.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    top.axhline(values[fs.best_member], color="tab:blue", ls=":", lw=1, label="best member (chosen on val)")
    floor = float((values - low).min())
    top.set_ylim(max(0.0, floor - 0.15 * (float((values + high).max()) - floor) - 2), float((values + high).max()) + 3)
    top.set_ylabel("test text-to-motion R@1 (%)\namong 32 candidates, 95 % CI")
    top.set_title(title + ("\n(fallback: the ensemble is the best member alone)" if fs.fallback
                           else f"\nkept: {fs.chosen.label}"), fontsize=10)
    top.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    top.grid(axis="y", alpha=0.3)
    g = np.array([ci.value for ci in gains])
    bottom.bar(x, g, 0.7, color=colors, yerr=[g - np.array([ci.low for ci in gains]),
                                              np.array([ci.high for ci in gains]) - g], capsize=3, ecolor="black")
    bottom.axhline(0.0, color="black", lw=1)
    bottom.set_ylabel("test R@1 minus the best member\n(points, paired 95 % CI)")
    bottom.grid(axis="y", alpha=0.3)
    bottom.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
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


# What a query reads of each manifest member: field -> (types, what it must be)
MEMBER_FIELDS = {"selected": ((bool,), "true or false"), "checkpoint": ((str,), "a path"),
                 "weight": ((int, float), "a finite number >= 0")}


def read_manifest(experiment_dir: Path) -> dict[str, Any]:
    """The ensemble's manifest, checked against what ``query`` reads (ResultsError naming the field otherwise)."""
    path = Path(experiment_dir) / ENSEMBLE_DIR / MANIFEST_FILE
    fix = f"rebuild it: python run_ensemble.py {experiment_dir}"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("members"), list):
            raise ValueError("no 'members' list")
    except (ValueError, UnicodeDecodeError) as e:
        raise ResultsError(f"not a readable ensemble manifest ({type(e).__name__}: {e}); the file is damaged or "
                           "truncated.", where=path, fix=fix) from None
    if not isinstance(manifest.get("method"), str):
        raise ResultsError(f"damaged ensemble manifest: 'method' is {manifest.get('method')!r}, not a fusion name.",
                           where=path, fix=fix)
    for n, member in enumerate(manifest["members"], 1):
        problem = _member_problem(member)
        if problem:
            raise ResultsError(f"damaged ensemble manifest: member {n} {problem}.", where=path, fix=fix)
    if not any(m["selected"] for m in manifest["members"]):
        raise ResultsError("damaged ensemble manifest: no member is selected.", where=path, fix=fix)
    return manifest


def _member_problem(member: Any) -> str | None:
    if not isinstance(member, dict):
        return f"is {type(member).__name__}, not an object"
    for key, (types, what) in MEMBER_FIELDS.items():
        value = member.get(key)
        if key not in member:
            return f"has no '{key}'"
        if not isinstance(value, types) or (key == "weight" and (isinstance(value, bool) or not math.isfinite(value)
                                                                 or value < 0)):
            return f"'{key}' is {value!r}, not {what}"
    return None


def stored_path(path: Path, experiment_dir: Path) -> str:
    """A path as a manifest stores it: relative to the experiment when inside it, so a copied or moved
    experiment (synced from a cluster to a laptop) opens its own checkpoints."""
    try:
        return Path(path).resolve().relative_to(Path(experiment_dir).resolve()).as_posix()
    except ValueError:
        return str(path)


def member_checkpoint(member: dict[str, Any], manifest: dict[str, Any], experiment_dir: Path) -> Path:
    """Where a manifest member's checkpoint is now: relative paths (and absolute ones under the experiment's
    old location, from manifests written before paths were relative) are re-rooted at ``experiment_dir``."""
    path = Path(member["checkpoint"])
    if not path.is_absolute():
        return Path(experiment_dir) / path
    old_root = manifest.get("experiment_dir")
    if old_root:
        try:
            return Path(experiment_dir) / path.relative_to(old_root)
        except ValueError:
            pass
    return path
