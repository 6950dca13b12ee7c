"""search/wandb_setup.py's up-front decision: W&B logs online only when it has a key and its server accepts a
connection within the bounded wait; otherwise one warning and offline (the search goes on). Real endpoints: a
closed local port, a local server that listens, and one that never accepts (its backlog full)."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from search import wandb_setup
from tests.search.services import free_port, http_server, silent_server
from tests.search.wandb_records import history


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """No decision made yet, no netrc, no key, no mode."""
    monkeypatch.setattr(wandb_setup, "_DECIDED", [])
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for key in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_online_asked_without_a_key_logs_offline_with_one_warning(fresh, capsys):
    fresh.setenv("WANDB_MODE", "online")
    assert wandb_setup.resolve_mode(timeout=2) == "offline"
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "WANDB_MODE=online but there is no W&B API key" in err
    assert "the search goes on" in err and "wandb sync" in err


def test_a_key_and_a_closed_port_log_offline_at_once(fresh, capsys):
    fresh.setenv("WANDB_API_KEY", "x" * 40)
    fresh.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{free_port()}")
    t0 = time.perf_counter()
    assert wandb_setup.resolve_mode(timeout=5) == "offline"
    assert time.perf_counter() - t0 < 3
    assert "cannot be reached (Connection refused)" in capsys.readouterr().err


def test_a_server_that_never_accepts_is_given_up_after_the_bounded_wait(fresh, capsys):
    """A listening socket with a full backlog that nobody accepts from: SYNs go unanswered, as behind a firewall
    that drops them."""
    fresh.setenv("WANDB_API_KEY", "x" * 40)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        fillers = []
        try:
            for _ in range(8):   # fill the accept queue: later connects hang
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(server.getsockname())
                fillers.append(filler)
            fresh.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
            t0 = time.perf_counter()
            mode = wandb_setup.resolve_mode(timeout=1.5)
            waited = time.perf_counter() - t0
        finally:
            for filler in fillers:
                filler.close()
    assert mode == "offline" and 1.0 < waited < 5, waited
    assert "did not answer within 1.5 s" in capsys.readouterr().err


def test_a_server_that_accepts_and_never_answers_http_logs_offline(fresh, capsys):
    """A proxy or a hung server: the TCP connect succeeds, no HTTP answer comes (each trial's wandb.init would wait
    its own timeout and log nothing)."""
    fresh.setenv("WANDB_API_KEY", "x" * 40)
    with silent_server() as port:
        fresh.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
        t0 = time.perf_counter()
        assert wandb_setup.resolve_mode(timeout=1) == "offline"
        assert time.perf_counter() - t0 < 5
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "accepted a connection but did not answer an HTTP request within 1 s" in err


def test_a_key_and_an_answering_server_log_online_and_are_asked_once(fresh, capsys):
    with http_server() as port:   # any HTTP answer counts (here 404/200 from a plain file server)
        fresh.setenv("WANDB_API_KEY", "x" * 40)
        fresh.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
        assert wandb_setup.resolve_mode(timeout=2) == "online"
    assert wandb_setup.resolve_mode(timeout=2) == "online"   # decided: not asked again (the server is gone now)
    assert capsys.readouterr().err == ""


def test_a_base_url_that_is_not_http_logs_offline(fresh, capsys):
    fresh.setenv("WANDB_API_KEY", "x" * 40)
    fresh.setenv("WANDB_BASE_URL", "ftp://wandb.example")
    assert wandb_setup.resolve_mode(timeout=1) == "offline"
    assert "WANDB_BASE_URL='ftp://wandb.example' is not an http(s) URL" in capsys.readouterr().err


def test_a_trial_whose_online_run_cannot_start_logs_offline_and_the_hint_names_it(fresh, capsys, tmp_path):
    """The driver's question was answered (any HTTP server), but wandb.init is refused (not a W&B server): the
    trial's epochs go to an offline run, one warning each, and the search's end prints the sync command."""
    from search import resolve_args

    args = resolve_args({"storage": str(tmp_path), "name": "fell-back"})
    root = Path(args.experiment_path)
    root.mkdir()
    fresh.setattr(wandb_setup, "WANDB_INIT_TIMEOUT_S", 5.0)
    fresh.setenv("WANDB_API_KEY", "x" * 40)
    with http_server() as port:
        fresh.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
        trial = wandb_setup.TrialWandb(project="p", group="g", mode="online", root=str(root), search_experiment="g")
        run = trial.start({"lr": 0.001})
        assert run is not None
        run.log({"epoch": 1, "recall_at_1": 12.5}, epoch=1)
        run.finish()
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "W&B could not start online" in err and "logs offline" in err
    offline = wandb_setup.offline_run_dirs(args)
    assert len(offline) == 1
    logged = [row for row in history(next(Path(offline[0]).glob("run-*.wandb"))) if "recall_at_1" in row]
    assert [(row["epoch"], row["recall_at_1"]) for row in logged] == [(1, 12.5)]   # the epoch is not lost
    fresh.setenv("WANDB_MODE", "online")
    hint = wandb_setup.sync_hint(args)
    assert hint is not None and "1 run(s) logged offline" in hint and "wandb sync" in hint
