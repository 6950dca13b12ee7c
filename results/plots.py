"""PNG plots of a search: learning curves of every trial and the best trial's embedding space.

Uses matplotlib's object API with the Agg canvas (no pyplot, so the caller's global backend is untouched).
"""
from __future__ import annotations

import zipfile

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from core.atomic import atomic_path
from results.errors import ResultsError

SIMILARITY_ITEMS = 32   # rows/cols of the heatmap: enough to see the diagonal, few enough to label
TSNE_PAIRS = 250        # text+motion points = 2x this; keeps t-SNE to a few seconds on one core
LINKED_PAIRS = 40       # pairs joined by a line in the t-SNE plot


@dataclass
class Embeddings:
    text: np.ndarray       # (N, d) float32, L2-normalized here
    motion: np.ndarray     # (N, d) float32, L2-normalized here
    ids: list[str]         # (N,)
    captions: list[str]    # (N,)


def load_embeddings(checkpoint_dir: str | Path) -> Embeddings:
    """The val embeddings a checkpoint carries (train contract: embeddings.npz with text/motion/ids/captions)."""
    path = Path(checkpoint_dir) / "embeddings.npz"
    if not path.is_file():
        raise ResultsError("checkpoint has no embeddings.npz.", where=path.parent,
                           fix="checkpoints written by core.train include it; re-run the trial to get one.")
    try:
        with np.load(path, allow_pickle=False) as data:  # never unpickle: object arrays are not ours
            text, motion = np.asarray(data["text"], np.float32), np.asarray(data["motion"], np.float32)
            n = len(text)
            ids = [str(x) for x in data["ids"]] if "ids" in data.files else [str(i) for i in range(n)]
            captions = [str(x) for x in data["captions"]] if "captions" in data.files else ids
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:   # cut off, garbage, foreign
        raise ResultsError(f"cannot read embeddings ({exc}).", where=path,
                           fix="expected arrays text (N,d), motion (N,d), ids (N,), captions (N,) as str.") from exc
    if text.ndim != 2 or text.shape != motion.shape or len(text) == 0 or len(ids) != len(text):
        raise ResultsError(f"text {text.shape} and motion {motion.shape} embeddings (and {len(ids)} ids) do not "
                           "pair up.", where=path, fix="expected text and motion of the same shape (N, d), N >= 1.")
    return Embeddings(_unit(text), _unit(motion), ids, captions)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def save_figure(fig: Figure, path: Path) -> Path:
    """Render with the Agg canvas and write the PNG atomically."""
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    return path


def plot_recall_vs_epoch(epochs: pa.Table, trials: pa.Table, best_trial_id: str | None, path: Path,
                         title: str = "") -> Path:
    """Val R@1 per epoch for every trial; x = where a trial was stopped early, red o = errored, best bold."""
    per_trial: dict[str, tuple[list[int], list[float]]] = {}
    for trial_id, epoch, r1 in zip(*(epochs.column(c).to_pylist() for c in ("trial_id", "epoch", "recall_at_1"))):
        if r1 is not None:
            xs, ys = per_trial.setdefault(trial_id, ([], []))
            xs.append(epoch)
            ys.append(r1)
    info = {r["trial_id"]: r for r in trials.select(["trial_id", "status", "stopped_early",
                                                     "best_recall_at_1"]).to_pylist()}
    fig = Figure(figsize=(9, 5.5))
    ax = fig.add_subplot()
    few = len(per_trial) <= 10
    colors = iter(colormaps["tab10"].colors)
    for trial_id in sorted(per_trial):
        xs, ys = per_trial[trial_id]
        if trial_id == best_trial_id:
            continue  # drawn last, on top
        label = f"{trial_id} (best {max(ys):.1f})" if few else None
        color = next(colors) if few else "tab:blue"
        ax.plot(xs, ys, "-o", color=color, alpha=0.8 if few else 0.35, lw=1.2, ms=3, label=label)
        _mark_end(ax, info.get(trial_id, {}), xs[-1], ys[-1])
    if best_trial_id in per_trial:
        xs, ys = per_trial[best_trial_id]
        band = _ci_band(epochs, best_trial_id)
        if band is not None:   # the val R@1's 95 % bootstrap CI over queries, per epoch
            ax.fill_between(band[0], band[1], band[2], color="crimson", alpha=0.15, lw=0, zorder=4,
                            label="best trial: 95 % CI over val queries")
        ax.plot(xs, ys, "-o", color="crimson", lw=3, ms=5, zorder=5,
                label=f"best: {best_trial_id} (R@1 {max(ys):.2f})")
        _mark_end(ax, info.get(best_trial_id, {}), xs[-1], ys[-1])
    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], ls="", marker="x", color="black", ms=9, mew=2, label="stopped early (ASHA/patience)"),
                Line2D([], [], ls="", marker="o", mfc="none", mec="red", ms=11, mew=2, label="error")]
    ax.legend(handles=handles, fontsize=8, loc="lower right", ncol=2 if len(handles) > 8 else 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("val text-to-motion R@1 (%)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.set_title(title or f"Validation R@1 per epoch ({len(per_trial)} trials)")
    return save_figure(fig, path)


def _ci_band(epochs: pa.Table, trial_id: str) -> tuple[list, list, list] | None:
    if not {"recall_at_1_lo", "recall_at_1_hi"} <= set(epochs.column_names):
        return None
    rows = [r for r in epochs.select(["trial_id", "epoch", "recall_at_1_lo", "recall_at_1_hi"]).to_pylist()
            if r["trial_id"] == trial_id and r["recall_at_1_lo"] is not None]
    rows.sort(key=lambda r: r["epoch"])
    return ([r["epoch"] for r in rows], [r["recall_at_1_lo"] for r in rows], [r["recall_at_1_hi"] for r in rows]) \
        if rows else None


def _mark_end(ax, info: dict, x: int, y: float) -> None:
    if info.get("stopped_early"):
        ax.plot([x], [y], ls="", marker="x", color="black", ms=9, mew=2, zorder=6)
    if info.get("status") == "ERROR":
        ax.plot([x], [y], ls="", marker="o", mfc="none", mec="red", ms=11, mew=2, zorder=6)


def plot_similarity(emb: Embeddings, path: Path, title: str, items: int = SIMILARITY_ITEMS) -> Path:
    """Cosine similarity of the first `items` captions (rows) to the first `items` motions (columns)."""
    n = min(items, len(emb.text))
    sims = emb.text[:n] @ emb.motion[:n].T  # (n, n) cosine: both sides are unit vectors
    top1 = sims.argmax(axis=1)
    fig = Figure(figsize=(10, 9))
    ax = fig.add_subplot()
    image = ax.imshow(sims, cmap="viridis", vmin=min(-0.2, float(sims.min())), vmax=1.0)
    ax.scatter(top1, np.arange(n), s=14, c="white", edgecolors="black", linewidths=0.5)
    ax.set_xticks(range(n), [_clip(i, 14) for i in emb.ids[:n]], rotation=90, fontsize=6)
    ax.set_yticks(range(n), [_clip(c, 40) for c in emb.captions[:n]], fontsize=6)
    ax.set_xlabel("motion (val id)")
    ax.set_ylabel("text (caption)")
    hits = int((top1 == np.arange(n)).sum())
    ax.set_title(f"{title}\ncosine similarity, first {n} of {len(emb.text)} val pairs; diagonal = true pairs, "
                 f"white dot = each caption's top-1 motion ({hits}/{n} on the diagonal)", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="cosine similarity")
    return save_figure(fig, path)


def project_2d(points: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """(M, d) -> (M, 2) with t-SNE when scikit-learn is importable, else PCA; returns the method's name."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        centered = points - points.mean(axis=0)
        _, _, vt = np.linalg.svd(centered, full_matrices=False)  # rows of vt: principal axes
        return centered @ vt[:2].T, "PCA (scikit-learn not installed, so no t-SNE)"
    perplexity = float(min(30.0, max(2.0, (len(points) - 1) / 3)))
    kwargs = dict(n_components=2, perplexity=perplexity, init="pca", random_state=seed, metric="cosine")
    try:  # 500 iterations settle a few hundred points; halves the default's time
        tsne = TSNE(max_iter=500, **kwargs)
    except TypeError:  # scikit-learn < 1.5 calls it n_iter
        tsne = TSNE(**kwargs)
    return tsne.fit_transform(points.astype(np.float64)), "t-SNE"


def plot_embedding_map(emb: Embeddings, path: Path, title: str, pairs: int = TSNE_PAIRS,
                       linked: int = LINKED_PAIRS) -> Path:
    """2-D map of text and motion embeddings of the same val items; lines join a caption to its motion."""
    n = min(pairs, len(emb.text))
    if n < 2:
        raise ResultsError("need at least 2 val pairs for an embedding map.", where=path)
    xy, method = project_2d(np.concatenate([emb.text[:n], emb.motion[:n]]))
    text_xy, motion_xy = xy[:n], xy[n:]  # (n, 2) each
    fig = Figure(figsize=(8.5, 8))
    ax = fig.add_subplot()
    for i in range(min(linked, n)):
        ax.plot([text_xy[i, 0], motion_xy[i, 0]], [text_xy[i, 1], motion_xy[i, 1]], "-", color="grey",
                lw=0.7, alpha=0.6, zorder=1)
    ax.scatter(text_xy[:, 0], text_xy[:, 1], s=14, c="tab:blue", label="text", zorder=2)
    ax.scatter(motion_xy[:, 0], motion_xy[:, 1], s=22, marker="^", facecolors="none", edgecolors="tab:orange",
               label="motion", zorder=3)  # hollow, so a motion sitting on its caption stays visible
    ax.plot([], [], "-", color="grey", lw=0.7, label=f"same item (first {min(linked, n)} pairs)")
    ax.legend(fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{title}\n{method} of {n} val text/motion pairs", fontsize=10)
    return save_figure(fig, path)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def plot_refit_configs(rows: list[dict], members: list, path: Path, title: str) -> Path:
    """Per refit config: every seed's val R@1 (dots) and the seed mean with its 95 % bootstrap CI (error bar)."""
    fig = Figure(figsize=(max(5.5, 1.4 * len(rows) + 2.5), 4.5))
    ax = fig.add_subplot()
    for x, row in enumerate(rows):
        seeds = [m for m in members if m.config_rank == row["search_config_rank"]]
        ax.scatter([x] * len(seeds), [m.val.get("recall_at_1", np.nan) for m in seeds], color="tab:gray", s=22,
                   zorder=3, label="one seed (last epoch)" if x == 0 else None)
        if row.get("val_R1_lo") is not None:
            ax.errorbar([x + 0.12], [row["val_R1_mean"]], yerr=[[row["val_R1_mean"] - row["val_R1_lo"]],
                                                                [row["val_R1_hi"] - row["val_R1_mean"]]],
                        fmt="o", color="crimson", capsize=5, ms=7, zorder=4,
                        label="seed mean, 95 % CI over queries" if x == 0 else None)
        else:
            ax.plot([x + 0.12], [row["val_R1_mean"]], "o", color="crimson", ms=7, zorder=4)
    ax.set_xticks(range(len(rows)), [f"#{r['rank']}: config {r['search_config_rank']}\n({r['source_trial']})"
                                     for r in rows], fontsize=8)
    ax.set_ylabel("val text-to-motion R@1 (%) among 32 candidates")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return save_figure(fig, path)
