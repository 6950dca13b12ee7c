"""Every row of the bad-input table (tests/faults/bad_inputs.py): the entry point run as a subprocess exits 2
with exactly one `error:` line that names the thing and the fix, no traceback, and no Ray cluster started.

The cases are independent processes in their own temp folders, so they run 3 at a time; each parametrized
test then checks its own case's outcome. Each is forked from a launcher that imported the libraries once
(tests/faults/warm_entry.py: 126 cold starts of torch + Ray Tune were ~60 of this file's ~90 s on 2 cores).
Only the selected rows run: ``-k train-eval-data-other-layout`` runs that one case (and trains the shared
checkpoint only when a selected case needs it).
"""
from __future__ import annotations

import os
import queue
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.faults.bad_inputs import CASES, MARKDOWN, Outcome, build_checkpoint, render_markdown, run_case
from tests.faults.procs import cleanup_env, subprocess_env
from tests.faults.warm_entry import WarmLauncher

PARALLEL = 3
SLOW_S = 45.0   # a bad input must fail in seconds; this bound only catches hangs and Ray start-ups


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory) -> dict[str, Outcome]:
    selected = {item.callspec.params["case"].id for item in request.session.items
                if getattr(item, "callspec", None) is not None and "case" in item.callspec.params}
    cases = [case for case in CASES if case.id in selected]
    root = tmp_path_factory.mktemp("bad-inputs")
    shared = {}
    if any("checkpoint" in case.fixtures for case in cases):
        env = subprocess_env()
        try:
            shared = {"checkpoint": str(build_checkpoint(root, env))}
        finally:
            cleanup_env(env)
    launchers: queue.Queue = queue.Queue()
    started = []
    try:
        for _ in range(min(PARALLEL, len(cases))):
            started.append(WarmLauncher(dict(os.environ)))   # each case brings its own env
            launchers.put(started[-1])

        def run(case):
            launcher = launchers.get()
            try:
                return run_case(case, root / case.id, shared, launcher=launcher)
            finally:
                launchers.put(launcher)

        with ThreadPoolExecutor(PARALLEL) as pool:
            futures = {case.id: pool.submit(run, case) for case in cases}
            return {case_id: future.result() for case_id, future in futures.items()}
    finally:
        for launcher in started:
            launcher.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_fails_with_one_clear_error(case, outcomes):
    out = outcomes[case.id]
    shown = f"exit {out.returncode}\nstderr:\n{out.stderr[-3000:]}"
    assert out.returncode == case.exit_code, shown
    assert "Traceback" not in out.stderr, shown
    assert len(out.error_lines) == 1, shown
    assert re.search(case.stderr, out.error_lines[0]), f"{case.stderr!r} not in:\n{out.error_lines[0]}"
    assert not out.started_ray, "the bad input was only noticed after Ray started"
    assert out.seconds < SLOW_S, f"took {out.seconds:.0f}s"


def test_table_covers_enough_cases_once_each():
    ids = [c.id for c in CASES]
    assert len(ids) >= 20 and len(set(ids)) == len(ids)
    assert {c.entry for c in CASES} >= {"run_search.py", "run_ensemble.py", "python -m core.data",
                                        "python -m core.train"}


def test_markdown_table_is_in_sync():
    assert MARKDOWN.read_text() == render_markdown(), \
        "tests/faults/BAD_INPUTS.md is stale: run `python -m tests.faults.bad_inputs --write`"
