"""The driver stopped at random moments (seeded), resumed each time: nothing finished is lost, the trial set is an
uninterrupted run's, and Ctrl+C / SIGTERM end with exit 130 and the --resume hint (bench/kill_points.py runs the
longer variant: more kill points, a bigger search).

Each assertion is the bench's own check (``killed_run``'s problems list names what broke, per kill point)."""
from __future__ import annotations

import random

import pytest

from bench.kill_points import killed_run, reference_run
from tests.faults.procs import REPO

# 4 trials x 2 epochs, 2 at a time, ASHA: the smallest search with several trials running, finishing and stopped
# early at any moment; --sampler random draws each trial's params from its number.
TINY = ["--smoke-test", "--no-wandb", "--sampler", "random", "--num-samples", "4", "--max-epochs", "2",
        "--max-concurrent", "2", "--refit-top-k", "0", "--ensemble-top-k", "0"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill-points")
    trials, wall = reference_run(REPO, root, TINY)
    assert len(trials) == 4
    return root, trials, wall


# SIGTERM lands after a checkpoint only: while ray.init runs, Ray's own SIGTERM handler decides (it exits 15, which
# the driver turns into exit 130, or its start-up code swallows it and the search simply goes on; README: Faults).
# The default run stops drivers at 4 random moments in two experiments: two SIGKILLs, and a SIGINT then a SIGTERM of
# the resumed driver (one experiment for both saves a driver start, ~10 s, and adds a stop of a resumed driver after
# a Ctrl+C). Each stop costs a restart. The `slow` variant stops them at 7 more moments (other seeds).
@pytest.mark.parametrize("plan, seed", [
    pytest.param(("SIGKILL", "SIGKILL"), 0, id="SIGKILL-SIGKILL"),
    pytest.param(("SIGINT", "SIGTERM"), 1, id="SIGINT-SIGTERM"),
    pytest.param(("SIGKILL",) * 5, 3, id="SIGKILLx5", marks=pytest.mark.slow),
    pytest.param(("SIGINT",) * 2, 4, id="SIGINTx2", marks=pytest.mark.slow)])
def test_a_driver_stopped_at_random_moments_loses_nothing_finished(reference, plan, seed):
    root, trials, wall = reference
    run = killed_run(REPO, root, plan, wall, random.Random(seed), trials, search=TINY,
                     after_checkpoint_share={"SIGTERM": 1.0})
    print(f"\n{run['signal']}: kill points {run['kill_points']}; TERMINATED before a kill: "
          f"{run['terminated_before_kills']}")
    assert {p["signal"] for p in run["kill_points"] if p["delivered"]} == set(plan), run["kill_points"]
    assert run["survived"], run["problems"]
