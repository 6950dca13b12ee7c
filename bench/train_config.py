"""The training config of the single-process benchmarks (P1, P1b, P2): their shared flags and how they
layer on the trainer defaults, so every script reads ``--data --set --threads --quick`` the same way."""
from __future__ import annotations

from typing import Any

from bench.common import QUICK_DATA, QUICK_SETS

# --quick: the tiny corpus and model of QUICK_DATA / QUICK_SETS, in batches of 32
QUICK_OVERRIDES = {"data": QUICK_DATA, **dict(s.split("=") for s in QUICK_SETS), "batch_size": 32}


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """['k=v', ...] -> {k: v} (strings; TrainConfig.from_flat types and validates them)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


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
