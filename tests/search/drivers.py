"""A real run_search.py driver interrupted like Ctrl+C once the experiment reaches a given point, and readers of
the Tune files a search leaves (its trials, and a trial's result.json)."""
from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def interrupt_when(cmd: list[str], experiment: Path, ready_glob: str, timeout: float,
                   sig: signal.Signals = signal.SIGINT) -> str:
    """Run ``cmd``, send ``sig`` (Ctrl+C's SIGINT, or SIGTERM as `kill` and job schedulers send) as soon as
    ``experiment.glob(ready_glob)`` finds something, and return the driver's output once it has exited with
    130 (what an interrupted search must exit with)."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not list(experiment.glob(ready_glob)):
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        time.sleep(0.2)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 130, out[-3000:]
    return out


def trials_of(experiment: str):
    from ray.tune import ExperimentAnalysis

    return ExperimentAnalysis(experiment).trials


def history_of(trial_dir: Path, key: str) -> list:
    lines = (Path(trial_dir) / "result.json").read_text().splitlines()
    return [json.loads(line)[key] for line in lines if line.strip()]


def epochs_of(trial_dir: Path) -> list[int]:
    return history_of(trial_dir, "epoch")
