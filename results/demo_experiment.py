"""A tiny finished experiment without Ray, for `run_ensemble.py --smoke-test` and the ensemble tests: each
member is trained by ``core.train.train_retrieval`` and written as a search writes it in this project's own
format: one ``trial_<id>/`` folder per trial holding its ``trial.json`` record (results/trial_record.py) and
its ``checkpoint_<k>/`` folders. Nothing of Tune's is imitated.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from core.config import SMOKE_MODEL
from results.trial_record import RECORD_FILE, RECORD_FORMAT, record_row

SMOKE_DATA = "synthetic:n=300"   # the smoke corpus, bigger: members are compared on its val and test splits
SMOKE_BASE = {**SMOKE_MODEL, "data": SMOKE_DATA, "batch_size": 32, "epochs": 2, "num_threads": 1, "lr": 1e-3,
              "device": "cpu"}
SMOKE_MEMBERS = ({"motion_encoder": "tmr", "seed": 0}, {"motion_encoder": "gru", "seed": 1},
                 {"motion_encoder": "transformer", "seed": 2})


def write_demo_experiment(directory: str | Path, configs: Sequence[dict[str, Any]]) -> Path:
    """Train each flat config with core.train.train_retrieval (no Ray) into ``directory``: per trial a folder with
    its record (status TERMINATED, one report per epoch naming its checkpoint folder) and the checkpoints."""
    from core.atomic import atomic_write_text
    from core.train import prepare_shared, train_retrieval

    directory = Path(directory).expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    shared, session = None, time.time()
    for n, config in enumerate(configs):
        trial_id = hashlib.sha1(json.dumps([n, config], sort_keys=True, default=str).encode()).hexdigest()[:8]
        trial_dir = directory / f"trial_{trial_id}"
        trial_dir.mkdir(exist_ok=True)
        shared = shared if shared is not None else prepare_shared(config, progress=False)
        rows: list[dict] = []
        start = time.time()

        def reporter(metrics: dict, checkpoint_dir: str | None) -> None:
            name = f"checkpoint_{len(rows):06d}"
            shutil.copytree(checkpoint_dir, trial_dir / name, dirs_exist_ok=True)
            rows.append(record_row({**metrics, "trial_id": trial_id, "training_iteration": metrics["epoch"],
                                    "checkpoint_dir_name": name, "time_total_s": time.time() - start}))

        train_retrieval(config, reporter, shared=shared)
        record = {"format": RECORD_FORMAT, "trial_id": trial_id, "status": "TERMINATED", "config": dict(config),
                  "epochs": rows, "num_failures": 0, "start_time": start, "last_result_time": time.time(),
                  "session_start": session}
        atomic_write_text(trial_dir / RECORD_FILE, json.dumps(record, default=str))
    return directory
