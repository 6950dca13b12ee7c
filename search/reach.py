"""What this machine has, and what the search must reach, checked before Ray starts: CPUs, GPUs, a Ray
cluster's address, an SQLite file's folder (search/args.py validates flags with them)."""
from __future__ import annotations

import os
import socket
from pathlib import Path

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
