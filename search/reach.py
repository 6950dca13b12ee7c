"""What this machine has, and what the search must reach, checked before Ray starts: CPUs, GPUs, a Ray
cluster's address, an SQLite file's folder, a study database's server (search/args.py and search/study.py
validate flags with them)."""
from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path
from typing import Callable, TypeVar

from .errors import ArgsError

# ray.init(address=host:port) retries for minutes when nothing listens there; a TCP connect answers
# in milliseconds (refused) or this many seconds (no route / filtered port).
ADDRESS_CONNECT_TIMEOUT_S = 3.0


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def visible_gpus() -> int:
    try:
        import torch
        return torch.cuda.device_count()
    except ImportError:
        return 0


def check_address_reachable(address: str, timeout: float = ADDRESS_CONNECT_TIMEOUT_S) -> None:
    """host:port or ray://host:port must accept a TCP connection before Ray is asked to join it."""
    if address in ("local", "auto"):
        return
    target = address.split("://", 1)[1] if "://" in address else address
    host, _, port = target.rpartition(":")
    host = host.strip("[]")  # IPv6 literal: [::1]:6379
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ArgsError(f"--address {address!r}: expected host:port with a port in 1..65535, "
                        "e.g. 10.0.0.1:6379 (the head's GCS port) or ray://10.0.0.1:10001.")
    reason = connect_problem(host, int(port), timeout)
    if reason is not None:
        raise ArgsError(f"--address {address}: cannot reach a Ray cluster there ({reason}). Start it "
                        "(`ray start --head` on the head node prints its address) or fix host:port "
                        "(GCS port 6379 by default, ray:// clients 10001); --address local runs on "
                        "this machine.")
    reason = grpc_greeting_problem(host, int(port), timeout)
    if reason is not None:
        raise ArgsError(f"--address {address}: something listens there, but not a Ray cluster ({reason}). Fix: "
                        "give the head's GCS port (6379 by default; `ray start --head` prints it) or its Ray "
                        "Client port for ray:// (10001), not the dashboard's (8265) or another service's.")


# An HTTP/2 client's first bytes (RFC 9113 §3.4): the preface, then an empty SETTINGS frame.  Ray's GCS and its
# Ray Client server are gRPC servers, and every HTTP/2 server's first frame is SETTINGS (type 4).  A port that
# accepts TCP but is something else (an HTTP/1 dashboard, a database, a stalled proxy) fails this within the
# timeout, where ray.init would wait for minutes.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_H2_SETTINGS = 4


def grpc_greeting_problem(host: str, port: int, timeout: float) -> str | None:
    """Why ``host:port`` does not greet as a gRPC (HTTP/2) server within ``timeout`` s, or None when it does.

    With Ray's TLS on (RAY_USE_TLS=1) the port speaks TLS first: only the TCP check applies then."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return None
    header = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(_H2_PREFACE)
            while len(header) < 9:          # a frame header: length (3), type (1), flags (1), stream (4)
                chunk = conn.recv(9 - len(header))
                if not chunk:
                    break
                header += chunk
    except TimeoutError:
        return f"it accepted a connection but sent nothing within {timeout:g} s to an HTTP/2 (gRPC) greeting"
    except OSError as e:
        return f"the connection failed during an HTTP/2 (gRPC) greeting: {e.strerror or type(e).__name__}"
    if len(header) == 9 and header[3] == _H2_SETTINGS:
        return None
    if not header:
        return "it closed the connection on an HTTP/2 (gRPC) greeting"
    return f"it answered an HTTP/2 (gRPC) greeting with {header[:9]!r}, not an HTTP/2 SETTINGS frame"


TIMED_OUT = "timed out"


def connect_problem(host: str, port: int, timeout: float) -> str | None:
    """Why ``host:port`` does not accept a TCP connection within ``timeout`` s (``TIMED_OUT``, or the system's
    reason: refused, unresolvable host, no route), or None when it does."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as e:
        return TIMED_OUT if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__)


def sqlite_folder(url: str | None) -> Path | None:
    """The folder a sqlite:/// database URL writes into (None: not a file-backed SQLite URL)."""
    if not url or not url.startswith("sqlite:///") or url.rstrip("/") in ("sqlite:", "sqlite:///:memory:"):
        return None
    return Path(url[len("sqlite:///"):].split("?", 1)[0]).expanduser().resolve().parent


def hide_credentials(url: str) -> str:
    """``scheme://user:secret@host/..`` -> ``scheme://***@host/..``: a URL as it may be printed."""
    return re.sub(r"://[^/@]*@", "://***@", url)


T = TypeVar("T")


def answer_within(ask: Callable[[], T], timeout: float) -> T:
    """``ask()`` if it returns within ``timeout`` s, else TimeoutError.  For a client library without a timeout
    of its own (a database driver connecting to a host that never answers): it runs on a daemon thread, which is
    left waiting when the caller gives up (the caller then exits with its error)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = ask()
        except BaseException as e:   # handed to the caller's thread as is
            box["error"] = e

    thread = threading.Thread(target=run, name="answer-within", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
