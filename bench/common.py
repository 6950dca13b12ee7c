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
import threading
import time
from collections import Counter
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


# ----------------------------------------------------------------------------- process trees

class ProcessTreeSampler(threading.Thread):
    """Every ``interval`` s, over a process and ALL its descendants (Ray daemons, trial workers, ...):
    the sum of PSS (peak kept, with a by-name breakdown), the sum of RSS, and each process's CPU time.

    PSS (proportional set size) splits every shared page among the processes that map it, so the sum is
    the memory the tree really occupies. The RSS sum counts shared pages once per process: Ray workers
    all map the same object-store / shared-library pages, so it overstates the total several times over
    (kept for comparison). Where PSS is unreadable (not Linux) the RSS figures stand in.

    ``cpu_seconds`` = CPU spent since ``start()``: processes alive at start count from their CPU time then,
    later ones from 0; a process's last < ``interval`` s before it exits is missed. Unlike wall time, CPU
    time hardly changes with the other processes' load, so it compares arms fairly on a busy machine."""

    def __init__(self, pid: int | None = None, interval: float = 0.5):
        super().__init__(daemon=True)
        import psutil

        self.root = psutil.Process(pid if pid is not None else os.getpid())
        self.interval = interval
        self.peak_bytes = self.peak_processes = self.max_processes = self.samples = 0   # PSS sum
        self.peak_rss_bytes = 0
        self.pss_available = True
        self.peak_breakdown: dict[str, float] = {}   # "<process name> x<count>" -> PSS MiB at the peak
        # (pid, create time) -> {"cmd": command line (cut), "role": process_role(...), "peak_pss": bytes,
        # "peak_rss": bytes}: each process's own peak, e.g. a trial worker's, whatever the others did then
        self.per_process: dict[tuple[int, float], dict[str, Any]] = {}
        self._cpu_start: dict[tuple[int, float], float] = {}
        self._cpu_last: dict[tuple[int, float], float] = {}
        self._halt = threading.Event()

    def _processes(self) -> list:
        import psutil

        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def start(self) -> None:
        self._cpu_start = self._cpu_snapshot(self._processes())
        super().start()

    @staticmethod
    def _cpu_snapshot(procs) -> dict[tuple[int, float], float]:
        import psutil

        out = {}
        for p in procs:
            try:
                t = p.cpu_times()
                out[(p.pid, p.create_time())] = t.user + t.system
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return out

    def sample(self) -> None:
        import psutil

        procs = self._processes()
        self._cpu_last.update(self._cpu_snapshot(procs))
        total, rss_total, by_name, count = 0, 0, Counter(), Counter()
        for p in procs:
            try:
                name = p.name()
                if self.pss_available:
                    info = p.memory_full_info()
                    rss, pss, uss = info.rss, getattr(info, "pss", None), getattr(info, "uss", info.rss)
                    if pss is None:
                        self.pss_available = False
                        pss = rss
                else:
                    rss = pss = uss = p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            except psutil.AccessDenied:   # smaps unreadable: fall back to RSS for the rest of the run
                self.pss_available = False
                continue
            self._note_process(p, pss, rss, uss)
            total += pss
            rss_total += rss
            by_name[name] += pss
            count[name] += 1
        self.samples += 1
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss_total)
        self.max_processes = max(self.max_processes, len(procs))
        if total > self.peak_bytes:
            self.peak_bytes, self.peak_processes = total, len(procs)
            self.peak_breakdown = {f"{k} x{count[k]}": round(v / 2**20, 1) for k, v in by_name.most_common(8)}

    def _note_process(self, p, pss: int, rss: int, uss: int) -> None:
        import psutil

        try:
            key = (p.pid, p.create_time())
            # Ray renames a worker as it goes (default_worker.py -> ray::IDLE -> ray::ImplicitFunc.train): keep
            # the most specific role seen
            cmd = " ".join(p.cmdline())[:160] or p.name()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            return
        role = process_role(cmd, p.pid == self.root.pid)
        entry = self.per_process.setdefault(key, {"cmd": cmd, "role": role, "peak_pss": 0, "peak_rss": 0,
                                                  "peak_uss": 0, "pss_samples": []})
        if ROLE_RANK.get(role, 0) > ROLE_RANK.get(entry["role"], 0):
            entry.update(cmd=cmd, role=role)
        entry["peak_pss"] = max(entry["peak_pss"], pss)
        entry["peak_rss"] = max(entry["peak_rss"], rss)
        entry["peak_uss"] = max(entry["peak_uss"], uss)   # private memory: what a copy of shared data would show in
        entry["pss_samples"].append(pss)

    def peaks_by_role(self, kind: str = "peak_pss") -> dict[str, list[float]]:
        """role -> every such process's own peak PSS (or ``kind``: peak_uss, peak_rss; MiB), largest first."""
        out: dict[str, list[float]] = {}
        for entry in self.per_process.values():
            out.setdefault(entry["role"], []).append(round(entry[kind] / 2**20, 1))
        return {role: sorted(values, reverse=True) for role, values in sorted(out.items())}

    def median_pss(self, role: str) -> float:
        """The median PSS (MiB) over the samples of the largest process of ``role`` (its steady state)."""
        entries = [e for e in self.per_process.values() if e["role"] == role and e["pss_samples"]]
        if not entries:
            return 0.0
        values = sorted(max(entries, key=lambda e: e["peak_pss"])["pss_samples"])
        return values[len(values) // 2] / 2**20

    @property
    def cpu_seconds(self) -> float:
        return sum(last - self._cpu_start.get(key, 0.0) for key, last in self._cpu_last.items())

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> "ProcessTreeSampler":
        self._halt.set()
        self.join()
        self.sample()   # what the processes still alive did since the last tick
        return self


ROLE_RANK = {"Ray daemon": 0, "Ray worker (idle/other)": 1, "W&B service": 2, "W&B logging actor": 3,
             "trial worker": 4, "driver": 5}


def process_role(cmdline: str, is_root: bool = False) -> str:
    """What a process of a search's tree is, from its command line (Ray names its workers ``ray::<task>``)."""
    if is_root:
        return "driver"
    if "ImplicitFunc" in cmdline or "train_trial" in cmdline:
        return "trial worker"
    if "LoggingActor" in cmdline or "_QueueActor" in cmdline:
        return "W&B logging actor"   # Ray's WandbLoggerCallback: two actors per trial
    if "wandb" in cmdline:
        return "W&B service"
    if cmdline.startswith("ray::") or "default_worker.py" in cmdline:
        return "Ray worker (idle/other)"
    return "Ray daemon"   # gcs_server, raylet, dashboard, log monitor, runtime-env agent


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
