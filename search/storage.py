"""Where experiments live: a local folder or a cloud URI (s3://, gs://), read/written via pyarrow.fs.

Tune itself accepts both as ``RunConfig(storage_path=...)``; this module only resolves and checks
the root and stores the small JSON file that lets ``--resume`` rebuild the exact search.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from core.atomic import atomic_write_text

from .reach import hide_credentials

URI_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss", "hdfs", "file")
ARGS_FILE = "search_args.json"


class StorageError(ValueError):
    """A storage root that cannot hold experiments."""


def is_uri(storage: str) -> bool:
    return "://" in storage


def join(storage: str, name: str) -> str:
    return f"{storage.rstrip('/')}/{name}" if is_uri(storage) else str(Path(storage) / name)


def resolve_storage(storage: str, *, check_writable: bool = True) -> str:
    """A path -> absolute, created and writable; a URI -> checked for a known scheme."""
    if is_uri(storage):
        scheme = storage.split("://", 1)[0].lower()
        if scheme not in URI_SCHEMES:
            raise StorageError(f"--storage {storage!r}: unsupported scheme '{scheme}://'. Use a local "
                               "path, s3://bucket/dir or gs://bucket/dir.")
        if scheme == "file":
            return resolve_storage(storage.split("://", 1)[1], check_writable=check_writable)
        if check_writable:
            check_reachable(storage)
        return storage.rstrip("/")
    root = Path(storage).expanduser().resolve()
    if check_writable:
        try:
            root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
                pass
        except OSError as e:
            raise StorageError(f"--storage {storage!r}: cannot write to {root} ({e.strerror or e}). "
                               "Pick a writable folder or fix its permissions.") from None
    return str(root)


# Seconds to wait for a cloud --storage to answer before the search is refused (a missing network or credentials
# can make a client wait for minutes: gs:// looks for a metadata server, s3:// retries).
STORAGE_TIMEOUT_S = float(os.environ.get("MOTION_SEARCH_STORAGE_TIMEOUT_S", "30"))
_PROBE = ("import sys, pyarrow.fs\n"
          "fs, inner = pyarrow.fs.FileSystem.from_uri(sys.argv[1])\n"
          "fs.get_file_info(inner)\n")


def check_reachable(uri: str, timeout: float | None = None) -> None:
    """StorageError unless the storage at ``uri`` answers a listing within ``timeout`` s: before Ray starts, in a
    child process (a client stuck in a C++ retry loop cannot be interrupted from a thread, only killed)."""
    timeout = STORAGE_TIMEOUT_S if timeout is None else timeout
    fix = ("check the network and the credentials (AWS_* / GOOGLE_APPLICATION_CREDENTIALS / the cluster's "
           "identity), or use a local or mounted --storage path.")
    shown = hide_credentials(uri)   # never print credentials given in the URI
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE, uri], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StorageError(f"--storage {shown}: no answer within {timeout:g} s (MOTION_SEARCH_STORAGE_TIMEOUT_S). "
                           f"Fix: {fix}") from None
    if probe.returncode != 0:
        said = " ".join(_exception_text(probe.stderr).split()) or f"exit {probe.returncode}"
        raise StorageError(f"--storage {shown}: cannot be reached ({said[:300]}). Fix: {fix}")


def _exception_text(stderr: str) -> str:
    """The exception's message at the end of a traceback (it may run over several lines)."""
    lines = stderr.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"^[\w.]+(Error|Exception)\b.*:", line)]
    return " ".join(lines[starts[-1]:]) if starts else (lines[-1] if lines else "")


def _filesystem(path: str):
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(path)


def write_json(path: str, data: Any) -> None:
    """Write JSON atomically (local: temp file + os.replace; cloud object stores are atomic per put)."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    if not is_uri(path):
        atomic_write_text(path, text)
        return
    fs, inner = _filesystem(path)
    with fs.open_output_stream(inner) as f:
        f.write(text.encode())


def read_json(path: str) -> Any:
    if not is_uri(path):
        return json.loads(Path(path).read_text())
    fs, inner = _filesystem(path)
    with fs.open_input_stream(inner) as f:
        return json.loads(f.read().decode())


def exists(path: str) -> bool:
    if not is_uri(path):
        return Path(path).exists()
    import pyarrow.fs

    fs, inner = _filesystem(path)
    return fs.get_file_info(inner).type != pyarrow.fs.FileType.NotFound
