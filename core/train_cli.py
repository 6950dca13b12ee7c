"""``python -m core.train``: train one configuration without Ray, with a progress bar and a table.

    python -m core.train --smoke-test
    python -m core.train --data synthetic --epochs 10 --out runs/base --set lr=3e-4 --set loss=aligned
    python -m core.train --data bandai.tar.xz --eval-data /data/bvh --eval-format bvh   # cross-dataset

Writes ``OUT/metrics.json`` (a list of per-epoch metric dicts), ``OUT/last/`` and ``OUT/best/``
(checkpoint dirs: checkpoint.pt, config.json, embeddings.npz).  With ``--eval-data`` (core/crossdata.py) it
also evaluates ``best/`` on the in-domain test split and on the other dataset and writes ``OUT/test_metrics.json``
({"test": ..., "eval_data": {...}}).  Exit status 2 on bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from .atomic import atomic_write_text, copy_dir_atomically
from .checkpoint import TRAINING_STATE_FILE, read_checkpoint
from .config import SMOKE_DATA, SMOKE_MODEL, ConfigError, TrainConfig, parse_set_pairs
from .crossdata import EvalData, add_eval_data_flags
from .errors import ClearError, write_failure
from .interrupts import deferred_interrupts

# Tiny everything: a CPU run of a few seconds that still exercises every stage.
SMOKE_OVERRIDES = {"data": SMOKE_DATA, "epochs": 2, **SMOKE_MODEL, "batch_size": 32}
TEST_METRICS_FILE = "test_metrics.json"
TABLE_COLUMNS = ("epoch", "train_loss", "recall_at_1", "weighted_recall", "full_t2m_R1", "m2t_recall_at_1",
                 "epoch_seconds", "samples_per_second")


def check_out_dir(out: Path, *, resuming: bool, overwrite: bool) -> str | None:
    """Why --out cannot take this run (None when it can): a file, or a finished run that would be replaced."""
    if out.exists() and not out.is_dir():
        return f"--out {out}: is a file, not a folder. Fix: pass a folder path for the run's metrics and checkpoints."
    held = [name for name in ("metrics.json", "last", "best") if (out / name).exists()]
    if not held or resuming or overwrite:
        return None
    try:
        history = json.loads((out / "metrics.json").read_text())
        best = max(history, key=lambda m: m["recall_at_1"])
        summary = f"{len(history)} epoch(s), best val R@1 {best['recall_at_1']:.2f} at epoch {best['epoch']}"
    except (OSError, ValueError, KeyError, TypeError):
        summary = ", ".join(held)
    return (f"--out {out}: already holds a run ({summary}); training would replace it. Fix: --resume {out / 'last'} "
            "to continue it, another --out, or --overwrite to replace it.")


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) and abs(v) < 10 else (f"{v:.1f}" if isinstance(v, float) else str(v))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.train", description="Train one text-motion retrieval config.")
    ap.add_argument("--data", default=None, help="dataset spec (default: synthetic)")
    ap.add_argument("--format", default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--out", default="runs/train", help="output directory")
    ap.add_argument("--resume", default=None, help="checkpoint dir to continue from (e.g. OUT/last)")
    ap.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    ap.add_argument("--smoke-test", action="store_true", help="tiny data and model; seconds on CPU")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config key (repeatable)")
    add_eval_data_flags(ap, "after training, report best/'s test metrics on this dataset too (same feature layout; normalized with the training data's mean/std)")
    args = ap.parse_args(argv)

    from .train import NonFiniteLossError, train_retrieval  # heavy imports after argument errors

    try:
        flat = dict(SMOKE_OVERRIDES) if args.smoke_test else {}
        for key, value in (("data", args.data), ("format", args.format), ("epochs", args.epochs)):
            if value is not None:
                flat[key] = value
        flat.update(parse_set_pairs(args.set))
        cfg = TrainConfig.from_flat(flat)
        ev = EvalData.from_flags(args.eval_data, args.eval_format, args.eval_data_split)
    except (ConfigError, ClearError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    problem = check_out_dir(out, resuming=bool(args.resume), overwrite=args.overwrite)
    shared = other = None
    if problem is None and ev is not None:
        # Both corpora load (and a different feature layout is refused) before any training or output.
        try:
            shared, other = load_with_eval(cfg, ev)
        except (ConfigError, ClearError) as e:
            problem = str(e)
    created = not out.exists()   # a run that fails before its first epoch leaves no empty --out behind
    if problem is None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            problem = f"--out {write_failure(e) or e}"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    history: list[dict] = []
    bar = tqdm(total=cfg.optim.epochs, desc="epochs", unit="epoch", dynamic_ncols=True)
    tqdm.write("  ".join(f"{c:>12}" for c in TABLE_COLUMNS))

    def reporter(metrics: dict, checkpoint_dir: str | None) -> None:
        history.append(metrics)
        tqdm.write("  ".join(f"{_fmt(metrics.get(c, '')):>12}" for c in TABLE_COLUMNS))
        with deferred_interrupts():   # last/, best/ and metrics.json always agree, whenever Ctrl+C comes
            if checkpoint_dir:
                copy_dir_atomically(checkpoint_dir, out / "last")
                if metrics["recall_at_1"] >= max(m["recall_at_1"] for m in history):
                    # best/ is for evaluation and ensembles: the model without the optimizer (last/ resumes)
                    copy_dir_atomically(checkpoint_dir, out / "best", exclude=(TRAINING_STATE_FILE,))
            atomic_write_text(out / "metrics.json", json.dumps(history, indent=1))
        bar.update(1)
        bar.set_postfix(R1=f"{metrics['recall_at_1']:.1f}")

    try:
        if args.resume:   # the checkpoint's own history is the authority on which epochs are done
            history.extend(read_checkpoint(args.resume, training=True).get("history", []))
            atomic_write_text(out / "metrics.json", json.dumps(history, indent=1))
            bar.update(len(history))
        train_retrieval(cfg.to_flat(), reporter, shared=shared, resume_from=args.resume)
    except (ConfigError, ClearError, NonFiniteLossError, OSError) as e:   # ClearError: data, checkpoint
        bar.close()
        # a write failure names --out (the error's own file may be the temp checkpoint being copied from)
        line = write_failure(OSError(e.errno, e.strerror, str(out))) if isinstance(e, OSError) else None
        if isinstance(e, OSError) and line is None and not isinstance(e, FileNotFoundError):
            raise   # not an input or a write failure: a bug, whose traceback should show
        if created and not any(out.iterdir()):
            out.rmdir()
        print(f"error: {f'--out {line}' if line else e}", file=sys.stderr)   # --out <folder>: cannot write here
        return 2
    except KeyboardInterrupt:
        bar.close()
        done = f"after epoch {history[-1]['epoch']}" if history else "before the first epoch ended"
        hint = (f"continue with:\n  python -m core.train --out {out} --resume {out / 'last'} (and the same --data/--set "
                "flags)") if (out / "last").is_dir() else "no epoch finished: start it again"
        print(f"\ninterrupted {done}; {out} holds every finished epoch. {hint}", file=sys.stderr)
        return 130
    bar.close()
    best = max(history, key=lambda m: m["recall_at_1"]) if history else None
    if best:
        print(f"best epoch {best['epoch']}: recall_at_1 {best['recall_at_1']:.2f}  weighted_recall "
              f"{best['weighted_recall']:.2f}  (full split R@1 {best['full_t2m_R1']:.2f})")
    written = [out / "metrics.json", out / "best", out / "last"]
    if ev is not None and best:
        written.append(report_test_metrics(out, shared, other, ev))
    print(f"wrote {', '.join(map(str, written))}")
    return 0


def load_with_eval(cfg: TrainConfig, ev: EvalData):
    """(the training inputs with their text features, the other dataset) - its layout checked first."""
    from .crossdata import open_eval_data
    from .shared import load_shared

    shared = load_shared(cfg.to_flat())
    other = open_eval_data(ev, shared, cfg.data.data)
    return shared.precompute(cfg.to_flat(), progress=False), other


def report_test_metrics(out: Path, shared, other, ev: EvalData) -> Path:
    """best/ on the in-domain test split and on --eval-data, printed and written to OUT/test_metrics.json."""
    from .crossdata import evaluate_checkpoint, format_report

    report = evaluate_checkpoint(out / "best", shared, other, ev)
    report["checkpoint"] = "best"
    print(format_report(report))
    atomic_write_text(out / TEST_METRICS_FILE, json.dumps(report, indent=1))
    return out / TEST_METRICS_FILE
