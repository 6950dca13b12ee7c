"""Real services for the study tests: a PostgreSQL server, optuna-dashboard and headless Chromium.

Each is started by the test that needs it and stopped after it.  `.ci/run` installs Debian's ``postgresql``
and ``chromium`` (and the test extra installs ``optuna-dashboard`` and ``psycopg2-binary`` from PyPI); where
one cannot be had, the test skips and says which.
"""
from __future__ import annotations

import contextlib
import glob
import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

# Chromium as the probe of this machine starts it: without the background-networking flags its
# connections to Google's hosts are refused many at a time by the closed network.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not found:
        pytest.skip("no Chromium: install Debian's package (apt-get install chromium); .ci/run does")
    return found


def browse(url: str, tmp: Path, screenshot: Path) -> str:
    """Load ``url`` in headless Chromium: the DOM after its scripts ran, and a screenshot."""
    browser = chromium()
    common = [browser, *CHROMIUM_FLAGS, "--virtual-time-budget=15000", "--window-size=1400,1000"]
    subprocess.run([*common, f"--user-data-dir={tmp / 'shot'}", f"--screenshot={screenshot}", url],
                   capture_output=True, timeout=120, check=True)
    dom = subprocess.run([*common, f"--user-data-dir={tmp / 'dom'}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120, check=True)
    return dom.stdout


@contextlib.contextmanager
def optuna_dashboard(storage_url: str):
    """optuna-dashboard on a free loopback port; yields its base URL."""
    exe = shutil.which("optuna-dashboard")
    if exe is None:
        pytest.skip("optuna-dashboard is not installed (pip install optuna-dashboard; the test extra has it)")
    port = free_port()
    proc = subprocess.Popen([exe, storage_url, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/studies")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@contextlib.contextmanager
def postgres_server():
    """A throwaway PostgreSQL cluster on a free loopback port (trust auth); yields a SQLAlchemy URL."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("no PostgreSQL server binaries: install Debian's package (apt-get install postgresql); "
                    ".ci/run does")
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (the test extra has psycopg2-binary)")
    # The server refuses to run as root: run it as the 'postgres' user the Debian package creates.
    as_user: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None or subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
            pytest.skip("running as root without a 'postgres' user to start the server as")
        as_user = [runuser, "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="pg-test-", dir="/tmp"))
    data = root / "data"
    if as_user:
        shutil.chown(root, "postgres")
    os.chmod(root, 0o755)
    port = free_port()
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                   capture_output=True, check=True, timeout=120)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
                   capture_output=True, check=True, timeout=120)
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def silent_server():
    """A port that accepts connections (the kernel does) and never reads or answers: a stalled proxy, a
    firewall that lets SYNs through, a hung process."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@contextlib.contextmanager
def http_server():
    """A real HTTP/1 server (what Ray's dashboard port, 8265, speaks) on a free loopback port."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:   # not on the test's stderr
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
