"""Checkpoints by purpose, kept by us instead of Tune: a trial's latest checkpoint keeps its training state (resume),
its best keeps the model only (ensembles, ``--query``, evaluation), every other one is emptied.

Why not Tune's ``CheckpointConfig(num_to_keep=...)``:
- it deletes checkpoint folders that an experiment state saved earlier may still name; after a SIGKILL,
  ``--resume`` then fails on them ("Could not recover from checkpoint as it does not exist on storage anymore"),
  even for a trial that had finished. To avoid that, num_to_keep also forces Tune to rewrite its whole
  experiment state after every checkpoint of every trial: O(trials) work per epoch, which made the tuning loop
  slower with every trial a search added.
- it keeps both checkpoints whole: the best one carried AdamW's moments (twice the weights) that nothing reads.

So Tune keeps every checkpoint (no forced state saves), and once Tune has registered each new one (``apply_retention``,
called by ``search.records.TrialRecords.on_checkpoint``, which knows every epoch's R@1 and checkpoint folder) the trial's folders are
brought to their purpose once the newest one is in storage, whole and resumable. A superseded folder is
emptied but never removed, so whatever checkpoint a saved state names still exists: restoring an emptied or
stripped one continues from the newest resumable checkpoint beside it (``search.trainable.usable_checkpoint``),
so a kill at any moment loses no finished epoch.

Local (or mounted) storage only: on s3:// or gs:// every checkpoint stays whole (a listing and deletes per epoch
would be remote calls on the driver's loop).
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from core.checkpoint import is_intact, strip_training_state
from results.tables import best_row
from results.trial_record import RETIRED_FILE


def apply_retention(folder: Path, epochs: list[dict[str, Any]], newest: str, keep_best: bool = True,
                    metric: str = "recall_at_1") -> int:
    """Bring the checkpoints of one trial's ``folder`` to their purpose; returns the bytes freed.

    ``epochs``: the trial's reports so far (each with ``checkpoint_dir_name`` and ``metric``), ``newest``: the
    folder of the report just received. ``keep_best``: keep the best-scoring one's model (the search); without
    it only the latest survives (the refit, whose model is its last)."""
    if not is_intact(folder / newest, resumable=True):   # keep the older ones whole until it is
        return 0
    best = best_row([e for e in epochs if isinstance(e.get("checkpoint_dir_name"), str)], metric) if keep_best \
        else None
    best_name = best["checkpoint_dir_name"] if best else None
    freed = 0
    for checkpoint in folder.glob("checkpoint_*"):
        retired = (checkpoint / RETIRED_FILE).exists()
        if checkpoint.name == newest or not checkpoint.is_dir() or (retired and len(list(checkpoint.iterdir())) == 1):
            continue
        if checkpoint.name == best_name:
            freed += strip_training_state(checkpoint)
        else:
            freed += retire(checkpoint, newest)
    return freed


def retire(checkpoint: Path, newest: str) -> int:
    """Empty a superseded checkpoint folder, leaving only a note (the folder stays: see the module doc). The note
    comes first: a driver killed halfway leaves a folder marked retired, never one that looks like a model."""
    try:
        (checkpoint / RETIRED_FILE).write_text(json.dumps({"superseded_by": newest, "time": time.time()}))
    except OSError:   # read-only or full: leave it whole rather than half-emptied and unmarked
        return 0
    freed = 0
    for entry in list(checkpoint.iterdir()):
        if entry.name == RETIRED_FILE:
            continue
        try:
            if entry.is_dir():
                size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
                shutil.rmtree(entry)
            else:
                size = entry.stat().st_size
                entry.unlink()
            freed += size
        except OSError:   # a parallel retire, or a read-only folder: what is left stays unused
            continue
    return freed
