"""The refit stage: planning (distinct configs, seeds, reuse of the search's own full-length run), and a real
search whose refit is interrupted and resumed, ranked by the seed mean, logged to W&B and written to Parquet."""
from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from results.refit import refit_members, summarize_refit
from search import resolve_args
from search.refit import SearchTrial, config_identity, plan_refit, trials_from_table

from .drivers import REPO, interrupt_when


def trial(tid: str, r1: float, epochs_run: int = 4, ok: bool = True, **config) -> SearchTrial:
    return SearchTrial(tid, {"lr": 1e-3, "seed": 0, "epochs": 4, "num_threads": 1, **config}, r1, epochs_run, ok)


def test_plan_takes_the_top_distinct_configs_and_reuses_full_length_runs(tmp_path):
    args = resolve_args({"storage": str(tmp_path), "refit_top_k": 2, "refit_seeds": 3, "max_epochs": 4})
    trials = [trial("a", 60, lr=1e-3), trial("b", 70, epochs_run=2, lr=2e-3),
              trial("c", 65, lr=1e-3, num_threads=2),      # the same config as "a" (threads do not count)
              trial("d", 90, ok=False, lr=5e-3),           # diverged/errored: never refit
              trial("e", 50, lr=3e-3)]
    runs = plan_refit(args, trials)
    assert [(r.config_rank, r.source_trial, r.seed) for r in runs] == [
        (1, "b", 0), (1, "b", 1), (1, "b", 2), (2, "c", 0), (2, "c", 1), (2, "c", 2)]
    # b was stopped early by ASHA (2 of 4 epochs): every seed is trained; c ran 4/4 with seed 0: reused.
    assert [r.reused_trial for r in runs] == [None, None, None, "c", None, None]
    assert all(r.config["epochs"] == 4 and r.config["seed"] == r.seed for r in runs)
    assert config_identity(runs[3].config) == config_identity(trials[0].config)
    longer = resolve_args({"storage": str(tmp_path), "refit_top_k": 1, "refit_seeds": 1, "refit_epochs": 6})
    assert [r.reused_trial for r in plan_refit(longer, trials)] == [None]   # other length: retrained


def test_the_refit_space_holds_the_shared_values_and_a_choice_where_the_points_differ():
    from ray.tune.search.sample import Categorical

    from search.refit import refit_space

    space = refit_space([{"lr": 1e-3, "seed": 1, "loss": "aligned"}, {"lr": 1e-3, "seed": 2, "loss": "aligned"},
                         {"lr": 2e-3, "seed": 1, "loss": "aligned"}])
    assert space["loss"] == "aligned"
    assert isinstance(space["seed"], Categorical) and space["seed"].categories == [1, 2]
    assert space["lr"].categories == [1e-3, 2e-3] and all(space[k].is_valid(v) for k, v in (("seed", 2), ("lr", 2e-3)))


def test_trials_from_table_reads_parquet_rows():
    import pyarrow as pa

    table = pa.table({"trial_id": ["t1", "t2", "t3"], "status": ["TERMINATED", "ERROR", "TERMINATED"],
                      "diverged": [False, False, True], "best_recall_at_1": [50.0, 60.0, 0.0],
                      "epochs_run": [4, 2, 1], "config/lr": [1e-3, 2e-3, 0.5], "config/seed": [0, 0, 0]})
    got = trials_from_table(table)
    assert [(t.trial_id, t.ok, t.config["lr"]) for t in got] == [("t1", True, 1e-3), ("t2", False, 2e-3),
                                                                 ("t3", False, 0.5)]


def test_interrupted_refit_resumes_and_ranks_configs_by_the_seed_mean(tmp_path):
    """A real search whose refit is stopped by Ctrl+C, then --resume: the search is not rerun, every planned
    refit run finishes once, and the results rank configs with spread and CIs."""
    name = "refit"
    cmd = [sys.executable, str(REPO / "run_search.py"), "--storage", str(tmp_path), "--name", name]
    exp = tmp_path / name
    out1 = interrupt_when(cmd + ["--smoke-test", "--num-samples", "3", "--max-epochs", "3", "--grace-period", "3",
                                 "--max-concurrent", "1", "--refit-top-k", "2", "--refit-seeds", "2",
                                 "--ensemble-top-k", "2"], exp, "refit/trial_*/checkpoint_*", timeout=240)
    assert "--resume --name refit" in out1 and "=== refit: 2 distinct config(s) x 2 seed(s)" in out1
    search_trials = sorted(p.name for p in exp.glob("trial_*"))

    second = subprocess.run(cmd + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    assert "the search already finished" in second.stdout and "Refit ranking" in second.stdout
    assert "Pre-set value" not in out1 + second.stdout + second.stderr   # Tune's warning per point and key
    assert sorted(p.name for p in exp.glob("trial_*")) == search_trials        # the search did not run again
    plan = json.loads((exp / "refit" / "refit_plan.json").read_text())["runs"]
    reused = [r for r in plan if r["reused_trial"]]
    assert len(plan) == 4 and len(reused) == 2    # each config's seed-0 run is the search trial itself
    members, missing = refit_members(exp)
    assert len(members) == 4 and not missing
    assert {(m.config_rank, m.seed) for m in members} == {(1, 0), (1, 1), (2, 0), (2, 1)}
    trained = pq.read_table(exp / "refit" / "trials.parquet").to_pylist()
    assert len(trained) == 2 and all(r["status"] == "TERMINATED" and r["epochs_run"] == 3 for r in trained)
    summary = summarize_refit(exp, quiet=True)
    rows = summary.configs.to_pylist()
    assert [r["rank"] for r in rows] == [1, 2] and rows[0]["val_R1_mean"] >= rows[1]["val_R1_mean"]
    for r in rows:
        seeds = [m.val["recall_at_1"] for m in members if m.config_rank == r["search_config_rank"]]
        assert r["val_R1_mean"] == pytest.approx(sum(seeds) / 2) and r["runs"] == 2 and r["val_R1_std"] >= 0
        assert r["val_R1_lo"] <= r["val_R1_mean"] <= r["val_R1_hi"]
    assert rows[1]["diff_lo"] <= rows[1]["diff_vs_best"] <= rows[1]["diff_hi"]
    assert (exp / "refit" / "plots" / "refit_configs.png").is_file()
    manifest = json.loads((exp / "ensemble" / "manifest.json").read_text())
    assert manifest["source"] == "refit" and len(manifest["members"]) == 4
    wandb_ids = {r.name.rsplit("-", 1)[-1] for r in (exp / "wandb").glob("offline-run-*")}
    assert {t["trial_id"] for t in trained} <= wandb_ids   # W&B runs for the refit trials, like the search's

    # A cut embeddings.npz (a full disk, a killed copy) is one warning, not a traceback: the member stays (its recall
    # is in its records) and the tables are written, the plots of that checkpoint left out with a note.
    from results import write_results
    from results.refit import _WARNED_DAMAGED

    cut = members[0].checkpoint / "embeddings.npz"
    cut.write_bytes(cut.read_bytes()[:100])
    _WARNED_DAMAGED.clear()
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        again, missing = refit_members(exp)
        refit_members(exp)
    assert len(again) == 4 and not missing and err.getvalue().count("warning:") == 1, err.getvalue()
    assert f"{cut}: damaged (BadZipFile" in err.getvalue()
    write_results(exp, quiet=True)

    # A planned run whose records are unreadable (trial.json gone, result.json garbage) is named, not silently
    # dropped from the ensemble's members.
    from results.ensemble_members import select_candidates

    reused_trial = exp / next(p.name for p in exp.glob("trial_*") if p.name.endswith(reused[0]["reused_trial"]))
    (reused_trial / "trial.json").unlink()
    (reused_trial / "result.json").write_bytes(bytes(range(256)) * 4)
    candidates, source, notes = select_candidates(exp, top_k=2, allow_fewer=True)
    assert source == "refit" and len(candidates) == 3
    assert any("1 planned refit run(s) are not members" in n and reused[0]["reused_trial"] in n for n in notes), notes
