"""A tiny finished experiment without Ray, for `run_ensemble.py --smoke-test` and the ensemble tests: each
member is trained by ``core.train.train_retrieval`` and written in the layout a Tune search leaves (trial
folders with params.json, result.json, checkpoint_<k>/, plus an experiment_state-*.json), which results/ reads.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

SMOKE_DATA = "synthetic:n=300"
SMOKE_BASE = {"data": SMOKE_DATA, "hidden_dim": 32, "latent_dim": 32, "num_layers": 1, "num_heads": 2,
              "batch_size": 32, "epochs": 2, "max_frames": 64, "num_threads": 1, "lr": 1e-3, "device": "cpu"}
SMOKE_MEMBERS = ({"motion_encoder": "tmr", "seed": 0}, {"motion_encoder": "gru", "seed": 1},
                 {"motion_encoder": "transformer", "seed": 2})


def write_demo_experiment(directory: str | Path, configs: Sequence[dict[str, Any]]) -> Path:
    """Train each flat config with core.train.train_retrieval (no Ray) into a Ray-Tune-shaped experiment folder:
    one ``train_trial_<id>_<n>_demo`` folder per trial with params.json, result.json (one JSON line per epoch,
    checkpoint_dir_name pointing at checkpoint_<k>/), and an experiment_state-*.json marking it TERMINATED."""
    from core.train import prepare_shared, train_retrieval

    directory = Path(directory).expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    shared, state = None, []
    for n, config in enumerate(configs):
        trial_id = hashlib.sha1(json.dumps([n, config], sort_keys=True, default=str).encode()).hexdigest()[:8]
        trial_dir = directory / f"train_trial_{trial_id}_{n + 1}_demo"
        trial_dir.mkdir(exist_ok=True)
        (trial_dir / "params.json").write_text(json.dumps(config, indent=1))
        shared = shared if shared is not None else prepare_shared(config, progress=False)
        rows: list[dict] = []
        start = time.time()

        def reporter(metrics: dict, checkpoint_dir: str | None) -> None:
            name = f"checkpoint_{len(rows):06d}"
            shutil.copytree(checkpoint_dir, trial_dir / name, dirs_exist_ok=True)
            rows.append({**metrics, "trial_id": trial_id, "training_iteration": metrics["epoch"],
                         "checkpoint_dir_name": name, "done": False, "time_total_s": time.time() - start})

        train_retrieval(config, reporter, shared=shared)
        rows[-1]["done"] = True
        (trial_dir / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
        state.append([json.dumps({"trial_id": trial_id, "status": "TERMINATED", "config": config,
                                  "relative_logdir": trial_dir.name}),
                      json.dumps({"start_time": start, "last_result_time": time.time(), "num_failures": 0})])
    (directory / "experiment_state-demo.json").write_text(json.dumps({"trial_data": state}))
    return directory
