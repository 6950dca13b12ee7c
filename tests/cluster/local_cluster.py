"""A real multi-node Ray cluster on this machine: `ray start` processes on loopback, each node in its own
temp dir and process session, stopped by PID.

Other test runs (other agents) may run Ray on this machine at the same time, so nothing here uses
`ray stop` (it kills every Ray process of the machine) or a fixed port: every node gets free ports, and
`stop()` ends only the processes in the sessions of the `ray start` commands it ran.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_ports() -> list[str]:
    """Ports a node would otherwise take from fixed defaults (52365, 8076, ...) shared with other Rays."""
    return [f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}"]


def session_processes(session_id: int) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == session_id:
                out.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return out


class LocalRayCluster:
    """cluster = LocalRayCluster(); cluster.start_head(num_cpus=1); cluster.add_node(num_cpus=1); ... stop()"""

    def __init__(self) -> None:
        # Short: Ray puts unix sockets under <temp-dir>/session_<date>_<pid>/sockets (108-byte limit).
        self.root = Path(tempfile.mkdtemp(prefix="mrs-ray-", dir="/tmp"))
        self.address: str | None = None
        self.sessions: list[int] = []    # one per `ray start`: its PID is the session id of its node

    def _start(self, name: str, args: list[str]) -> None:
        log = self.root / f"{name}.log"
        env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
        with open(log, "w") as out:
            proc = subprocess.Popen(["ray", "start", *args, f"--temp-dir={self.root / name}",
                                     "--node-ip-address=127.0.0.1", "--disable-usage-stats", *node_ports()],
                                    stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.sessions.append(proc.pid)
        try:
            code = proc.wait(START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        if code != 0:
            raise RuntimeError(f"`ray start` ({name}) failed with {code}:\n{log.read_text()[-3000:]}")

    def start_head(self, *, num_cpus: int, num_gpus: int = 0) -> str:
        port = free_port()
        self._start("head", ["--head", f"--port={port}", f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}",
                             "--include-dashboard=false"])
        self.address = f"127.0.0.1:{port}"
        return self.address

    def add_node(self, *, num_cpus: int, num_gpus: int = 0) -> None:
        assert self.address, "start_head first"
        self._start(f"node{len(self.sessions)}", [f"--address={self.address}", f"--num-cpus={num_cpus}",
                                                  f"--num-gpus={num_gpus}"])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL, every process of our nodes (workers first, the head last)."""
        for session_id in reversed(self.sessions):
            procs = session_processes(session_id)
            for proc in procs:
                try:
                    proc.terminate()
                except psutil.NoSuchProcess:
                    pass
            _, alive = psutil.wait_procs(procs, timeout=3)  # the raylet may ignore SIGTERM for long
            for proc in alive:
                try:
                    proc.kill()
                except psutil.NoSuchProcess:
                    pass
            psutil.wait_procs(alive, timeout=10)
        self.sessions.clear()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and shutil.rmtree(self.root, ignore_errors=True) is None \
                and self.root.exists():
            time.sleep(0.5)
