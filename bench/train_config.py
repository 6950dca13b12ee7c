"""The training config of the single-process benchmarks (P1, P1b, P2): their shared flags and how they
layer on the trainer defaults, so every script reads ``--data --set --threads --quick`` the same way."""
from __future__ import annotations

import argparse
from typing import Any, Callable

from bench.common import QUICK_DATA, QUICK_SETS, add_common_flags, apply_quick, setup_environment

# --quick: the tiny corpus and model of QUICK_DATA / QUICK_SETS, in batches of 32
QUICK_OVERRIDES = {"data": QUICK_DATA, **dict(s.split("=") for s in QUICK_SETS), "batch_size": 32}


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """['k=v', ...] -> {k: v} (strings; TrainConfig.from_flat types and validates them)."""
    from core.config import ConfigError, parse_set_pairs

    try:
        return parse_set_pairs(items or [])
    except ConfigError as e:
        raise SystemExit(str(e)) from None


def add_train_flags(ap, set_help: str = "config override (repeatable)") -> None:
    ap.add_argument("--data", help="dataset spec (default: the embedded corpus 'synthetic')")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help=set_help)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a trial with --cpus-per-trial 1 uses 1)")


def train_flat(args, defaults: dict[str, Any] | None = None, **fixed: Any) -> dict[str, Any]:
    """Flat config, later layers winning: trainer defaults, ``defaults``, --quick's tiny model, --set,
    ``num_threads=--threads`` and ``fixed``, --data. Not validated: callers derive their arms from it."""
    from core.config import default_flat

    flat = {**default_flat(), **(defaults or {})}
    if args.quick:
        flat.update(QUICK_OVERRIDES)
    flat.update(parse_overrides(args.set))
    flat.update(num_threads=args.threads, **fixed)
    if args.data:
        flat["data"] = args.data
    return flat


def parse_model_bench_args(argv, doc: str, *, epochs: int, quick_epochs: int, set_help: str, epochs_help: str,
                           add_flags: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """The flags and start-up every benchmark that trains models shares: --data/--set/--threads, --epochs (fewer
    with --quick), the common flags, --quick's tiny model, then the environment (threads, offline libraries)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    add_train_flags(ap, set_help=set_help)
    ap.add_argument("--epochs", type=int, default=epochs, help=f"{epochs_help} (default %(default)s)")
    if add_flags is not None:
        add_flags(ap)
    add_common_flags(ap, retries=0)
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs = quick_epochs
    apply_quick(args)
    setup_environment()
    return args
