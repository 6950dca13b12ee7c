"""Load test: N trials at once on this machine's cores, with the memory of every trial worker measured.

    python -m tests.faults.load_trials                          # 16 trials x 1 epoch, all at once (CI form)
    python -m tests.faults.load_trials --epochs 3 --out load.json   # the full form

Runs ``run_search.py`` (smoke model, synthetic data, W&B off) with --max-concurrent N and --cpus-per-trial
cores/N, so every trial starts at once.  Every 0.5 s it samples each Ray worker process that hosts a trial actor
(``ray::ImplicitFunc*`` below the driver): RSS as asked, and USS (memory only that process holds: RSS counts
torch's shared libraries once per process).  Prints and optionally writes a JSON summary: per-worker peak RSS
(max and mean over workers), mean RSS over all samples, the peak sum over simultaneous workers, how many
workers ran at once, and the trial statuses.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from tests.faults.procs import PY, REPO, cleanup_env, descendants, kill_all, subprocess_env

MiB = 1024 * 1024
SAMPLE_EVERY_S = 0.5


class WorkerSampler(threading.Thread):
    def __init__(self, root_pid: int):
        super().__init__(daemon=True)
        self.root_pid, self.stop = root_pid, threading.Event()
        self.rss: dict[int, list[int]] = {}    # pid -> samples (bytes)
        self.uss: dict[int, int] = {}          # pid -> peak unique memory (bytes)
        self.totals: list[int] = []            # sum of RSS over the workers alive at one sample
        self.concurrent: list[int] = []

    def run(self) -> None:
        while not self.stop.is_set():
            total = alive = 0
            for proc in descendants(self.root_pid):
                try:
                    if not proc.name().startswith("ray::ImplicitFunc"):
                        continue
                    info = proc.memory_full_info()
                except psutil.Error:
                    continue
                self.rss.setdefault(proc.pid, []).append(info.rss)
                self.uss[proc.pid] = max(self.uss.get(proc.pid, 0), info.uss)
                total += info.rss
                alive += 1
            if alive:
                self.totals.append(total)
                self.concurrent.append(alive)
            self.stop.wait(SAMPLE_EVERY_S)


def run_load(trials: int, epochs: int, storage: Path, timeout: float = 900, data: str | None = None) -> dict:
    """``data``: a --data spec instead of the smoke corpus (the suite's form: a smaller one, as what is measured is
    the workers, not the epochs)."""
    cpus = len(os.sched_getaffinity(0))
    cmd = [PY, str(REPO / "run_search.py"), "--smoke-test", "--no-wandb", "--storage", str(storage),
           "--name", "load", "--num-samples", str(trials), "--max-concurrent", str(trials),
           "--cpus-per-trial", f"{cpus / trials:g}", "--max-epochs", str(epochs), "--grace-period", str(epochs),
           "--ensemble-top-k", "0", "--refit-top-k", "0",   # the search only: refit trials would add workers
           *(["--data", data] if data else [])]
    env = subprocess_env()
    log_path = storage / "driver.log"
    storage.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        driver = psutil.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = WorkerSampler(driver.pid)
        sampler.start()
        try:
            returncode = driver.wait(timeout)
        except psutil.TimeoutExpired:
            kill_all([*descendants(driver.pid), driver])
            returncode = None
        finally:
            sampler.stop.set()
            sampler.join()
            cleanup_env(env)
    elapsed = time.perf_counter() - t0
    statuses = _statuses(storage / "load")
    peaks = [max(s) for s in sampler.rss.values()]
    samples = [x for s in sampler.rss.values() for x in s]
    return {
        "trials": trials, "epochs": epochs, "cpus": cpus, "cpus_per_trial": cpus / trials,
        "returncode": returncode, "seconds": round(elapsed, 1), "statuses": statuses,
        "trial_workers_seen": len(sampler.rss), "max_concurrent_workers": max(sampler.concurrent, default=0),
        "peak_rss_mib_max": round(max(peaks) / MiB, 1) if peaks else None,
        "peak_rss_mib_mean": round(statistics.mean(peaks) / MiB, 1) if peaks else None,
        "rss_mib_mean_all_samples": round(statistics.mean(samples) / MiB, 1) if samples else None,
        "peak_uss_mib_max": round(max(sampler.uss.values()) / MiB, 1) if sampler.uss else None,
        "peak_uss_mib_mean": round(statistics.mean(sampler.uss.values()) / MiB, 1) if sampler.uss else None,
        "peak_rss_mib_sum_over_workers": round(max(sampler.totals) / MiB, 1) if sampler.totals else None,
        "machine_memory_mib": round(psutil.virtual_memory().total / MiB),
        "driver_log": str(log_path),
    }


def _statuses(experiment: Path) -> dict[str, str]:
    """trial id -> status from trials.parquet (written by the search when it finishes)."""
    table = experiment / "trials.parquet"
    if not table.is_file():
        return {}
    import pyarrow.parquet as pq

    return {r["trial_id"]: r["status"] for r in pq.read_table(table, columns=["trial_id", "status"]).to_pylist()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.faults.load_trials", description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--storage", default=None, help="where the experiment goes (default: a temp folder)")
    ap.add_argument("--out", default=None, help="also write the summary here as JSON")
    args = ap.parse_args(argv)
    storage = Path(args.storage) if args.storage else Path(tempfile.mkdtemp(prefix="load-trials-"))
    summary = run_load(args.trials, args.epochs, storage)
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if summary["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
