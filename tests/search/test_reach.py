"""--address and the study database are asked before Ray starts, against real local endpoints: a port that refuses,
one that accepts and never answers, one that answers as another service (HTTP/1), and a real Ray GCS."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from search import ArgsError
from search.reach import answer_within, check_address_reachable, grpc_greeting_problem, hide_credentials
from tests.faults.procs import REPO, cleanup_env, subprocess_env
from tests.search.services import free_port, http_server, silent_server


def test_a_real_ray_gcs_greets_as_grpc(ray_local):
    host, port = ray_local.get_runtime_context().gcs_address.rsplit(":", 1)
    assert grpc_greeting_problem(host, int(port), timeout=5) is None
    check_address_reachable(f"{host}:{port}")   # TCP + greeting: no error


def test_a_port_that_accepts_and_never_answers_is_not_a_ray_cluster():
    with silent_server() as port:
        t0 = time.perf_counter()
        with pytest.raises(ArgsError, match=r"something listens there, but not a Ray cluster \(it accepted a "
                                            r"connection but sent nothing within 1 s.*Fix: give the head's GCS port"):
            check_address_reachable(f"127.0.0.1:{port}", timeout=1)
        assert time.perf_counter() - t0 < 5


def test_an_http_service_is_not_a_ray_cluster():
    with http_server() as port:
        reason = grpc_greeting_problem("127.0.0.1", port, timeout=5)
    assert reason is not None and "not an HTTP/2 SETTINGS frame" in reason, reason


def test_a_refusing_port_is_named_before_the_greeting():
    with pytest.raises(ArgsError, match=r"cannot reach a Ray cluster there \(Connection refused\)"):
        check_address_reachable(f"127.0.0.1:{free_port()}", timeout=1)


def test_run_search_against_a_silent_port_ends_in_one_line_within_the_wait():
    env = subprocess_env()
    try:
        with silent_server() as port:
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, str(REPO / "run_search.py"), "--smoke-test", "--no-wandb",
                                   "--storage", env["RAY_TMPDIR"] + "/store", "--address", f"127.0.0.1:{port}"],
                                  cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
            seconds = time.perf_counter() - t0
    finally:
        cleanup_env(env)
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "but not a Ray cluster" in errors[0] and seconds < 30


def test_answer_within_returns_raises_or_gives_up():
    assert answer_within(lambda: 42, timeout=5) == 42
    with pytest.raises(KeyError):
        answer_within(lambda: {}["missing"], timeout=5)
    release = threading.Event()
    t0 = time.perf_counter()
    with pytest.raises(TimeoutError, match="no answer within 0.2 s"):
        answer_within(lambda: release.wait(30), timeout=0.2)
    assert time.perf_counter() - t0 < 5
    release.set()


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg2://user:secret@db:5432/x", "postgresql+psycopg2://***@db:5432/x"),
    ("s3://key:secret@bucket/runs", "s3://***@bucket/runs"),
    ("sqlite:////tmp/a.db", "sqlite:////tmp/a.db"),
])
def test_credentials_in_a_url_are_never_shown(url, shown):
    assert hide_credentials(url) == shown
