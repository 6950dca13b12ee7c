"""Memory and CPU of a whole process tree (a search's driver, Ray's daemons, trial workers), sampled in a thread:
PSS per process (shared pages counted once), by role. Used by p4, p5 and scale."""
from __future__ import annotations

import os
import threading
import time
from collections import Counter
from typing import Any


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
