"""What every benchmark shares: machine facts, load-average guard, atomic JSON, the result schema, tables.

A benchmark result is one JSON file ``bench/results/<name>.json``::

    {"name": "p1_step_throughput", "title": ..., "quick": false, "date": "2026-...", "machine": {...},
     "load": {"before": [1m, 5m, 15m], "after": [...], "background_max": 1.0, "high": false, "attempts": 1},
     "settings": {...sizes...}, "rows": [ROW, ...], "details": {...raw numbers...}}

    ROW = {"benchmark": "P1 step throughput", "goal": ">= 0.9x bare loop", "measured": "212 vs 220 samples/s",
           "ratio": 0.96, "ratio_text": "0.96x", "passed": true | false | null (no goal / not measured)}

Speed claims are RATIOS taken in one run on one machine: absolute numbers on a shared 2-core box move
with the other processes' load, ratios of interleaved repetitions much less.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from core.atomic import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "bench"
RESULTS_DIR = BENCH_DIR / "results"
# 1-minute load above this (in runnable processes per core) before a benchmark starts = "someone else is busy".
DEFAULT_MAX_BACKGROUND_LOAD = 0.75
# --quick: one tiny corpus and model for every script, so a --quick run of all of them parses the corpus
# and computes its MiniLM features once (they are cached), and each trial epoch takes well under a second.
QUICK_DATA = "synthetic:n=120,val=20,test=20"   # 80 train motions: at least two batches of 32
# benchmark --quick: half the smoke model (core.config.SMOKE_MODEL): the quick benchmarks run in the test suite
QUICK_SETS = ["hidden_dim=32", "latent_dim=32", "num_layers=1", "num_heads=2", "max_frames=32"]


def setup_environment() -> None:
    """Offline libraries, no Ray token auth for local clusters, quiet W&B: as the tests and a fresh machine."""
    for key, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                       "RAY_AUTH_MODE": "disabled", "WANDB_SILENT": "true", "RAY_DEDUP_LOGS": "0"}.items():
        os.environ.setdefault(key, value)


def default_workdir() -> Path:
    """Experiments and caches of the benchmarks live outside the repository (checkpoints are large)."""
    return Path(os.environ.get("MRS_BENCH_WORKDIR", Path(tempfile.gettempdir()) / "mrs-bench"))


def run_dir(args, kind: str) -> Path:
    """A fresh folder for one benchmark run: <--workdir or default>/<kind>[-quick]/<timestamp>."""
    root = getattr(args, "workdir", None) or default_workdir()
    return Path(root) / (f"{kind}-quick" if getattr(args, "quick", False) else kind) / time.strftime("%Y%m%d-%H%M%S")


# ----------------------------------------------------------------------------- machine

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_info() -> dict[str, Any]:
    import torch

    info = {"cpu_model": cpu_model(), "cores": usable_cores(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(terse=True),
            "hostname": platform.node(), "cuda": torch.cuda.is_available()}
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    try:
        import psutil
        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return info


def machine_text(machine: dict[str, Any]) -> str:
    text = f"{machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores, torch {machine.get('torch', '?')}"
    if machine.get("gpu"):
        text += f", {machine['gpu']}"
    return text


# ----------------------------------------------------------------------------- load

def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def wait_for_quiet(max_per_core: float = DEFAULT_MAX_BACKGROUND_LOAD, timeout_s: float = 120.0,
                   poll_s: float = 5.0) -> list[float]:
    """Wait (at most ``timeout_s``) until the 1-minute load per core drops below ``max_per_core``.

    Returns the load it started with. Other agents share this machine; a benchmark started while they
    run is still recorded, only flagged (see LoadRecord.high)."""
    cores = usable_cores()
    deadline = time.monotonic() + timeout_s
    while os.getloadavg()[0] / cores > max_per_core and time.monotonic() < deadline:
        time.sleep(poll_s)
    return load_avg()


@dataclass
class LoadRecord:
    """Load averages around one measurement; ``own`` = runnable threads the benchmark itself adds."""
    before: list[float]
    after: list[float] = field(default_factory=list)
    own: float = 1.0
    max_per_core: float = DEFAULT_MAX_BACKGROUND_LOAD

    def finish(self) -> "LoadRecord":
        self.after = load_avg()
        return self

    @property
    def background(self) -> float:
        """Best guess of the OTHER processes' load: what was there before, and what is there after
        minus our own contribution (the 1-minute average lags, so both are looked at)."""
        after = (self.after[0] - self.own) if self.after else 0.0
        return round(max(self.before[0], after, 0.0), 2)

    @property
    def high(self) -> bool:
        return self.background / usable_cores() > self.max_per_core

    def to_json(self) -> dict[str, Any]:
        return {"before": self.before, "after": self.after, "own_threads": self.own,
                "background_estimate": self.background, "high": self.high}


def measured_with_load_guard(measure: Callable[[], Any], *, own: float, retries: int,
                             max_per_core: float = DEFAULT_MAX_BACKGROUND_LOAD, wait_s: float = 120.0,
                             log: Callable[[str], None] = print) -> tuple[Any, LoadRecord, int]:
    """Run ``measure`` once, and again (up to ``retries`` times) while the machine was busy with other work.

    Keeps the attempt with the lowest background load. Returns (value, its LoadRecord, attempts)."""
    best: tuple[Any, LoadRecord] | None = None
    attempts = 0
    for attempt in range(retries + 1):
        attempts += 1
        record = LoadRecord(wait_for_quiet(max_per_core, wait_s), own=own, max_per_core=max_per_core)
        value = measure()
        record.finish()
        if best is None or record.background < best[1].background:
            best = (value, record)
        if not record.high:
            break
        if attempt < retries:
            log(f"load was high (background ~{record.background} on {usable_cores()} cores: {record.before} -> "
                f"{record.after}); measuring again ({attempt + 2}/{retries + 1})")
    assert best is not None
    return best[0], best[1], attempts


# ----------------------------------------------------------------------------- results

def row(benchmark: str, goal: str, measured: str, ratio: float | None, passed: bool | None,
        ratio_text: str | None = None) -> dict[str, Any]:
    if ratio_text is None and ratio is not None:
        ratio_text = f"{ratio:.2f}x"
    return {"benchmark": benchmark, "goal": goal, "measured": measured, "ratio": ratio,
            "ratio_text": ratio_text or "", "passed": passed}


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):      # numpy / torch scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_result(out_dir: Path, name: str, *, title: str, quick: bool, rows: Sequence[dict], settings: dict,
                 details: dict, load: LoadRecord | dict | None, attempts: int = 1,
                 started: float | None = None) -> Path:
    """``out_dir/<name>.json`` atomically; returns its path."""
    load_json = load.to_json() if isinstance(load, LoadRecord) else (load or {})
    load_json = {**load_json, "attempts": attempts}
    payload = {"name": name, "title": title, "quick": quick,
               "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_info(), "load": load_json,
               "wall_seconds": round(time.perf_counter() - started, 1) if started is not None else None,
               "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
               "settings": settings, "rows": list(rows), "details": details}
    path = Path(out_dir) / f"{name}.json"
    atomic_write_text(path, json.dumps(payload, indent=1, default=_json_default) + "\n")
    return path


def read_results(out_dir: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(Path(out_dir).glob("*.json")):
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return out


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Plain-text table for the console."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_rows(rows: Sequence[dict], load: LoadRecord | None = None, path: Path | None = None) -> None:
    verdict = {True: "PASS", False: "MISS", None: "-"}
    print(format_table(("benchmark", "goal", "measured", "ratio", "result"),
                       [(r["benchmark"], r["goal"], r["measured"], r["ratio_text"], verdict[r["passed"]])
                        for r in rows]))
    if load is not None:
        flag = "  (HIGH: other processes were busy)" if load.high else ""
        print(f"load average before {load.before} after {load.after}{flag}")
    if path is not None:
        print(f"wrote {path}")


def apply_quick(args) -> None:
    """--quick checks the code path: no waiting for a quiet machine, no re-measuring."""
    if getattr(args, "quick", False):
        args.retries, args.wait_load = 0, 0.0


def out_dir_for(args) -> Path:
    """--out, else bench/results; --quick runs never overwrite the recorded results."""
    if getattr(args, "out", None):
        return Path(args.out)
    if getattr(args, "quick", False):
        return Path(tempfile.gettempdir()) / "mrs-bench-quick"
    return RESULTS_DIR


def add_common_flags(ap, *, retries: int = 1) -> None:
    ap.add_argument("--quick", action="store_true", help="seconds-long run that only checks the code path")
    ap.add_argument("--out", help="folder for <name>.json (default bench/results; --quick: a temp folder)")
    ap.add_argument("--retries", type=int, default=retries,
                    help=f"measure again when other processes loaded the machine (default {retries})")
    ap.add_argument("--max-load", type=float, default=DEFAULT_MAX_BACKGROUND_LOAD,
                    help="background 1-min load per core counted as 'high' (default %(default)s)")
    ap.add_argument("--wait-load", type=float, default=120.0,
                    help="seconds to wait for a quiet machine before each measurement (default %(default)s)")
