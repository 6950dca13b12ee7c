"""Disk space: refuse a search that cannot fit on its --storage before Ray starts, and name a full disk as such.

A resumable checkpoint holds the weights and AdamW's two moments (12 bytes per trainable parameter) plus the
val embeddings. A trial keeps its latest whole and its best as the model only (search/retention.py); while it
writes a new one, two whole ones exist. The estimate uses the base config's model: TPE may sample bigger ones, so
it is a floor, not a promise. Cloud storage (s3://, gs://) is not checked (and keeps every checkpoint whole).
"""
from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

from .args import ArgsError, SearchArgs
from .tune_state import torn_state_file, unrecoverable_state

MIB = 2**20
BYTES_PER_PARAM = 12            # fp32 weights + AdamW exp_avg + exp_avg_sq
# Per trial: its latest checkpoint whole, its best as the model only (weights: a third of a whole one, plus the
# embeddings): counted as 0.4 of a whole one. Per running trial: one more whole one while it writes the next.
MODEL_ONLY_FRACTION = 0.4
OVERHEAD_BYTES = 32 * MIB       # Tune's state, result logs, tables, plots, W&B offline runs


class DiskSpaceError(ArgsError):
    """The storage has (or had) too little free space for the search."""


def free_bytes(path: str) -> int:
    """Free bytes on the filesystem that holds ``path`` (or its nearest existing parent)."""
    p = Path(path).expanduser().absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def checkpoint_bytes(base: dict[str, Any], shared) -> int:
    """Size of one checkpoint of the base config (frozen text; a fine-tuned text encoder adds its weights)."""
    from core.config import TrainConfig
    from core.model import build_model

    cfg = TrainConfig.from_flat(base)
    frozen_dim = shared.frozen_features(cfg.text).dim if cfg.text.text_mode == "frozen" else None
    if frozen_dim is None:   # building it would load the whole text transformer: count the projection only
        return 64 * MIB
    model = build_model(cfg, shared.corpus.dim, frozen_dim)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_val = len(shared.corpus.splits.get("val", ()))
    embeddings = n_val * (2 * cfg.model.latent_dim + 8) * 4
    return params * BYTES_PER_PARAM + embeddings


def required_bytes(args: SearchArgs, per_checkpoint: int) -> int:
    runs = args.num_samples + args.refit_top_k * args.refit_seeds
    kept = runs * (1 + MODEL_ONLY_FRACTION) * per_checkpoint
    return int(kept + args.max_concurrent * per_checkpoint) + OVERHEAD_BYTES


def check_free_space(args: SearchArgs, per_checkpoint: int) -> None:
    """DiskSpaceError before any trial when --storage cannot hold the search's checkpoints."""
    if not args.is_local_storage:
        return
    need, free = required_bytes(args, per_checkpoint), free_bytes(args.experiment_path)
    if free < need:
        raise DiskSpaceError(
            f"--storage {args.storage}: {free / MIB:.1f} MiB free, but this search needs at least "
            f"{need / MIB:.0f} MiB ({args.num_samples} trials + {args.refit_top_k}x{args.refit_seeds} refit runs, "
            f"a whole checkpoint of ~{per_checkpoint / MIB:.1f} MiB and a best model each, plus logs). "
            "Free space there, or choose another --storage.")


def storage_nearly_full(args: SearchArgs, per_checkpoint: int) -> bool:
    """Too little room left on a local --storage for one more checkpoint."""
    return args.is_local_storage and free_bytes(args.experiment_path) < per_checkpoint


def is_disk_full(args: SearchArgs, exc: BaseException, per_checkpoint: int) -> bool:
    """The failure came from a full --storage: ENOSPC in the chain, or too little room left for a checkpoint."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "errno", None) == errno.ENOSPC or "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return storage_nearly_full(args, per_checkpoint)


def disk_full_error(args: SearchArgs, per_checkpoint: int) -> DiskSpaceError:
    free = free_bytes(args.experiment_path) if args.is_local_storage else 0
    need = required_bytes(args, per_checkpoint) / MIB
    problem = (f"--storage {args.storage}: the disk is full ({free / MIB:.1f} MiB free): trials could not write "
               "their checkpoints.")
    experiment = Path(args.experiment_path)
    if args.is_local_storage and (lost := unrecoverable_state(experiment)) is not None:
        return DiskSpaceError(f"{problem} Tune's experiment state ({lost.name}) was cut off before any complete "
                              "copy of it was kept, so the search cannot be resumed; its finished trials stay "
                              f"readable (python -m results, run_ensemble.py). Free at least {need:.0f} MiB and "
                              "start a new --name.")
    torn = torn_state_file(experiment) if args.is_local_storage else None
    state = (f" (Tune's state file {torn.name} was cut off; --resume continues from its last complete copy)"
             if torn is not None else "")
    return DiskSpaceError(
        f"{problem} Free at least {need:.0f} MiB there, then run `python run_search.py --resume --name "
        f"{args.name} --storage {args.storage}`: finished trials are kept and the failed ones restart from "
        f"their last checkpoint{state}.")
