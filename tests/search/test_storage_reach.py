"""A cloud --storage is asked once, with a bounded wait, before Ray starts: an endpoint that refuses, one that
accepts and never answers, and gs:// without credentials each end the command with one line of ours (exit 2) in
seconds, where they were a traceback or a hang (still running after 320 s for gs://)."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.faults.procs import REPO, cleanup_env, subprocess_env
from tests.search.services import free_port

TIMEOUT_S = "3"   # MOTION_SEARCH_STORAGE_TIMEOUT_S for these runs (default 30)


def search(storage: str, timeout: str = TIMEOUT_S, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    environment = subprocess_env(MOTION_SEARCH_STORAGE_TIMEOUT_S=timeout, AWS_EC2_METADATA_DISABLED="true", **env)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(REPO / "run_search.py"), "--smoke-test", "--no-wandb",
                               "--storage", storage], cwd=REPO, env=environment, capture_output=True, text=True,
                              timeout=120)
        started_ray = (Path(environment["RAY_TMPDIR"]) / "ray").exists()
    finally:
        cleanup_env(environment)
    assert not started_ray
    return proc, time.perf_counter() - t0


def one_error(proc: subprocess.CompletedProcess) -> str:
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return errors[0]


def s3(endpoint: str) -> str:
    return f"s3://key:secret@bucket/runs?endpoint_override={endpoint}&scheme=http&region=us-east-1"


def test_an_s3_endpoint_that_refuses_is_named_in_one_line():
    proc, seconds = search(s3(f"127.0.0.1:{free_port()}"), timeout="30")   # the S3 client retries for ~7 s
    line = one_error(proc)
    assert "--storage s3://***@bucket/runs" in line and "cannot be reached" in line and "Could not connect" in line
    assert "secret" not in proc.stderr and "Fix: check the network and the credentials" in line
    assert seconds < 60


def test_an_s3_endpoint_that_never_answers_is_given_up_after_the_bounded_wait():
    with socket.socket() as server:   # accepts connections (the kernel does), never reads or answers
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        proc, seconds = search(s3(f"127.0.0.1:{server.getsockname()[1]}"))
    line = one_error(proc)
    assert f"no answer within {TIMEOUT_S} s (MOTION_SEARCH_STORAGE_TIMEOUT_S)" in line, line
    assert seconds < 30


def test_gs_without_credentials_or_network_ends_in_one_line(tmp_path):
    proc, seconds = search("gs://bucket/runs", GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "none.json"))
    line = one_error(proc)
    assert "--storage gs://bucket/runs" in line and ("cannot be reached" in line or "no answer within" in line)
    assert seconds < 30
