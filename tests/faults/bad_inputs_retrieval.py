"""Rows of the bad-input table for run_ensemble.py's motion index and retrieval page (--index, --query with an index,
--serve), and the fixtures only they use; tests/faults/bad_inputs.py appends the rows to its table and
bad_input_fixtures.FIXTURES includes the fixtures."""
from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Callable

import numpy as np

from tests.faults.bad_input_case import Case

_HELD: list[socket.socket] = []   # listening sockets kept open for the whole run (a port that is in use)


def busy_port(root: Path) -> str:
    """A loopback port a socket of this process listens on until it exits."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    _HELD.append(s)
    return str(s.getsockname()[1])


def foreign_index(root: Path) -> Path:
    """A whole motion index (3 motions, one 4-d model) whose model's checkpoint fingerprint is no real one's."""
    folder = root / "foreign_index"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.save(folder / "member_0.npy", rng.normal(size=(3, 4)).astype(np.float32))
    np.savez(folder / "moments.npz", mean_0=np.zeros(4), cov_0=np.eye(4))
    (folder / "motions.json").write_text(json.dumps({"ids": ["a", "b", "c"], "captions": [["x"], ["y"], ["z"]],
                                                     "groups": [None] * 3}))
    (folder / "index.json").write_text(json.dumps({
        "format": 1, "name": "foreign_index", "target": "/elsewhere/other_experiment",
        "library": {"data": "synthetic:n=200", "format": None, "split": "all", "motions": 3},
        "members": [{"member_id": "other", "label": "other", "checkpoint": "trial_x/checkpoint_000001",
                     "fingerprint": "0123456789abcdef", "dim": 4, "file": "member_0.npy"}]}))
    return folder


FIXTURES: dict[str, tuple[str, Callable[[Path], Path | str]]] = {
    "busy_port": ("a loopback port another socket listens on", busy_port),
    "foreign_index": ("a motion index folder built by another experiment's model (its checkpoint fingerprint "
                      "differs)", foreign_index),
}

RETRIEVAL_CASES: tuple[Case, ...] = (
    Case("query-unknown-split", "--query of a split that does not exist", "run_ensemble.py",
         ("{checkpoint}", "--query", "a person walks", "--split", "holdout"),
         r"argument --split: invalid choice: 'holdout'"),
    Case("index-other-layout", "--index of a library in another feature layout than the model's (refused before "
         "encoding)", "run_ensemble.py", ("{checkpoint}", "--index", "synthetic:n=60,people=1"),
         r"--index synthetic:n=60,people=1: its motions have the 'joints22' feature layout \(137-d\), but the model "
         r"trains on 'interx396' \(396-d\) from --data synthetic:n=200.*Fix: index a dataset in the training layout"),
    Case("query-index-of-other-models", "--query with an index another experiment's models built", "run_ensemble.py",
         ("{checkpoint}", "--query", "a person walks", "--index", "{foreign_index}"),
         r"foreign_index: index 'foreign_index' was built by other models: last is not among its 1 model\(s\).*"
         r"Fix: build an index with these models: python run_ensemble\.py .* --index synthetic:n=200"),
    Case("query-index-not-built", "--query with an index that was never built", "run_ensemble.py",
         ("{checkpoint}", "--query", "a person walks", "--index", "synthetic:n=999"),
         r"--index synthetic:n=999: no index of that name, spec or path\. Fix: build it first: python run_ensemble\.py"),
    Case("serve-port-in-use", "--serve on a port another process listens on", "run_ensemble.py",
         ("{checkpoint}", "--serve", "--port", "{busy_port}"),
         r"--host 127\.0\.0\.1 --port \d+: cannot listen there \(Address already in use\)\. Fix: pass another --port"),
    Case("serve-with-query", "--serve and --query together", "run_ensemble.py",
         ("{empty_dir}", "--serve", "--query", "walk"), r"--serve starts the page, --query prints one answer"),
)
