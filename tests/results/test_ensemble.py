"""build_ensemble / query on a Ray-Tune-shaped experiment of 3 differently configured tiny trained members."""
import csv
import json
import math
import shutil

import numpy as np
import pyarrow as pa
import pytest
import torch

import results.ensemble as ens
from results.ensemble import build_ensemble, query
from results.ensemble_members import search_candidates
from results.ensemble_report import ENSEMBLE_DIR
from results.errors import ResultsError
from results.demo_experiment import write_demo_experiment

BASE = {"data": "synthetic:n=300", "hidden_dim": 32, "latent_dim": 32, "num_layers": 1, "num_heads": 2,
        "batch_size": 32, "epochs": 2, "max_frames": 64, "num_threads": 1, "lr": 1e-3, "device": "cpu"}
MEMBERS = [{"motion_encoder": "tmr", "seed": 0}, {"motion_encoder": "gru", "seed": 1},
           {"motion_encoder": "transformer", "seed": 2, "hidden_dim": 64, "num_heads": 4}]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    torch.set_num_threads(1)
    return write_demo_experiment(tmp_path_factory.mktemp("exp") / "demo", [{**BASE, **m} for m in MEMBERS])


def _reload(directory):
    manifest = json.loads((directory / "manifest.json").read_text())
    metrics = json.loads((directory / "metrics.json").read_text())
    with open(directory / "predictions_test.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    return manifest, metrics, rows


def test_auto_build_studies_every_fusion_and_writes_files_that_reload(experiment, capsys):
    res = build_ensemble(experiment, top_k=3)
    assert res.directory == experiment / ENSEMBLE_DIR and res.source == "search" and len(res.candidates) == 3
    manifest, metrics, rows = _reload(res.directory)
    assert [m["rank"] for m in manifest["members"]] == [1, 2, 3] and manifest["fallback"] == res.fallback
    assert {m["config"]["motion_encoder"] for m in manifest["members"]} == {"tmr", "gru", "transformer"}
    assert all((experiment / m["checkpoint"]).exists() for m in manifest["members"])
    reported = [m["reported_val_recall_at_1"] for m in manifest["members"]]
    assert reported == sorted(reported, reverse=True)
    # One evaluation seed for every training seed -> each member's val R@1 is reproduced exactly.
    for member in manifest["members"]:
        assert metrics["members"][member["member_id"]]["val"]["recall_at_1"] == pytest.approx(
            member["reported_val_recall_at_1"])
    # Every fusion variant that kept >= 2 members is in the study, with paired gains and CIs; the automatic
    # choice is mean_sim over greedily chosen members, kept only when its val gain is decided.
    assert {(v["method"], v["weighting"], v["selection"]) for v in metrics["variants"]} <= {
        (m, w, s) for m in ("borda", "rrf", "mean_sim") for w, s in (("equal", "all"), ("val", "all"),
                                                                    ("equal", "greedy"))}
    assert sum(v["selection"] == "all" for v in metrics["variants"]) == 6
    default = [v for v in metrics["variants"] if (v["method"], v["weighting"], v["selection"]) == (
        "mean_sim", "equal", "greedy")]       # absent when greedy kept one member: then it is that member
    assert res.fallback == (not default or default[0]["minus_best_member"]["val"]["recall_at_1"]["low"] <= 0)
    for block in [*metrics["members"].values(), *metrics["variants"], metrics["chosen"]]:
        for split in ("val", "test"):
            m = block[split]
            assert m["recall_at_1_lo"] <= m["recall_at_1"] <= m["recall_at_1_hi"]
            gain = block["minus_best_member"][split]["recall_at_1"]
            assert gain["low"] <= gain["value"] <= gain["high"]
    if res.fallback:   # the chosen model is then the best member itself: zero gain, by construction
        assert res.method == "single" and res.selected == [metrics["best_single_member"]]
        assert metrics["ensemble_minus_best_member"]["test"]["recall_at_1"]["value"] == 0
    n_test = metrics["split_sizes"]["test"]
    assert rows[0] == ["query_id", "query_text", *(f"rank_{k}" for k in range(1, 11))]
    assert len(rows) == n_test + 1 and all(len(r) == 12 for r in rows[1:])
    test_ids = {r[0] for r in rows[1:]}
    assert len(test_ids) == n_test and all(set(r[2:]) <= test_ids and len(set(r[2:])) == 10 for r in rows[1:])
    assert (res.directory / "members_vs_ensemble.png").read_bytes()[:8] == PNG_SIGNATURE
    out = capsys.readouterr().out
    assert "val gain [paired CI]" in out and "test R@1 [CI]" in out and "ensemble: " in out
    assert ("falls back to the best member" in out) == res.fallback


def test_explicit_method_builds_exactly_it_and_reports_its_gain(experiment):
    res = build_ensemble(experiment, top_k=3, method="rrf", weighting="val", select="all", quiet=True)
    manifest, metrics, rows = _reload(res.directory)
    assert not res.fallback and res.method == manifest["method"] == "rrf" and manifest["weighting"] == "val"
    assert res.selected == [m["member_id"] for m in manifest["members"]] and manifest["selection"] == "all"
    assert max(manifest["weights"]) == 1.0 and all(0 <= w <= 1 for w in manifest["weights"])
    gain = metrics["ensemble_minus_best_member"]["test"]["recall_at_1"]
    best = metrics["best_single_member"]
    assert gain["value"] == pytest.approx(metrics["ensemble"]["test"]["recall_at_1"]
                                          - metrics["members"][best]["test"]["recall_at_1"])
    # The tie-broken fusion ranks the whole test split: the CSV's top-1 agrees with its full-split R@1.
    hits = np.mean([r[2] == r[0] for r in rows[1:]]) * 100
    assert metrics["ensemble"]["test"]["full_t2m_R1"] == pytest.approx(hits)


def test_greedy_trace_and_rebuild_replaces_the_folder(experiment):
    build_ensemble(experiment, top_k=3, method="borda", quiet=True)
    res = build_ensemble(experiment, top_k=3, method="mean_sim", select="greedy", quiet=True)
    manifest, metrics, _ = _reload(res.directory)
    assert manifest["method"] in ("mean_sim", "single") and manifest["selection"] in ("greedy", "-")
    assert not list(experiment.glob(".ensemble-*"))
    for variant in (v for v in metrics["variants"] if v["selection"] == "greedy"):
        trace = variant["greedy_trace"]
        accepted = [trace[0]["added"]] + [step["added"] for step in trace[1:] if step["accepted"]]
        assert len(accepted) == len(variant["members"])
        # greedy starts from the best single member on val, as evaluated here
        assert trace[0]["added"] == metrics["best_member_label"]
        assert variant["val"]["recall_at_1"] >= metrics["members"][metrics["best_single_member"]]["val"]["recall_at_1"]


def test_eval_data_is_scored_for_every_member_and_fusion_but_never_chosen_on(experiment):
    from core.crossdata import EvalData
    from core.data.errors import DataError

    plain = build_ensemble(experiment, top_k=3, quiet=True)
    crossed = build_ensemble(experiment, top_k=3, quiet=True, eval_data=EvalData("synthetic:n=300,seed=1"))
    assert (crossed.chosen, crossed.selected, crossed.fallback) == (plain.chosen, plain.selected, plain.fallback)
    for split in ("val", "test"):   # the same numbers: the other dataset changes nothing else
        assert crossed.metrics["ensemble"][split] == plain.metrics["ensemble"][split]
    block = crossed.metrics["eval_data"]
    assert (block["data"], block["split"], block["layout"]) == ("synthetic:n=300,seed=1", "test", "interx396")
    assert crossed.metrics["split_sizes"]["eval_data"] == block["motions"]
    for entry in [*crossed.metrics["members"].values(), *crossed.metrics["variants"]]:
        assert "recall_at_1_lo" in entry["eval_data"] and "recall_at_1" in entry["minus_best_member"]["eval_data"]
    assert "eval-data R@1 [CI]" in crossed.table and "eval-data = synthetic:n=300,seed=1" in crossed.table
    assert _reload(crossed.directory)[0]["eval_data"] == {"data": "synthetic:n=300,seed=1", "format": None,
                                                          "split": "test"}
    with pytest.raises(DataError, match=r"'joints22' feature layout \(137-d\), but the model trains on 'interx396'"):
        build_ensemble(experiment, top_k=3, quiet=True, eval_data=EvalData("synthetic:n=60,people=1"))


def test_fewer_trials_than_k_and_bad_input(experiment):
    with pytest.warns(UserWarning, match="fewer than top_k=5"):
        res = build_ensemble(experiment, top_k=5, quiet=True)
    assert len(res.candidates) == 3 and res.warnings
    with pytest.raises(ResultsError, match="--allow-fewer"):
        build_ensemble(experiment, top_k=5, quiet=True, allow_fewer=False)
    with pytest.raises(ResultsError, match="weights"):
        build_ensemble(experiment, top_k=3, quiet=True, weights=[1.0, 2.0])
    with pytest.raises(ResultsError, match="method"):
        build_ensemble(experiment, method="vote")
    with pytest.raises(ResultsError, match="no finished refit"):
        build_ensemble(experiment, members="refit")


def test_no_finished_trial_is_a_clear_error(tmp_path):
    trial = tmp_path / "train_trial_0badc0de_1_demo"
    trial.mkdir()
    (trial / "params.json").write_text("{}")
    (trial / "result.json").write_text(json.dumps({"epoch": 1, "recall_at_1": 3.0, "trial_id": "0badc0de",
                                                   "done": True}) + "\n")
    with pytest.raises(ResultsError, match="no finished trial"):
        build_ensemble(tmp_path, quiet=True)


def test_a_crash_while_writing_keeps_the_previous_ensemble(experiment, monkeypatch):
    build_ensemble(experiment, top_k=2, method="borda", quiet=True)
    before = (experiment / ENSEMBLE_DIR / "manifest.json").read_text()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ens, "plot_members_vs_ensemble", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        build_ensemble(experiment, top_k=3, method="mean_sim", quiet=True)
    assert (experiment / ENSEMBLE_DIR / "manifest.json").read_text() == before
    assert sorted(p.name for p in (experiment / ENSEMBLE_DIR).iterdir()) == [
        "manifest.json", "members_vs_ensemble.png", "metrics.json", "predictions_test.csv"]
    assert not list(experiment.glob(".ensemble-*"))


def test_query_the_ensemble_and_a_single_checkpoint(experiment):
    res = build_ensemble(experiment, top_k=3, method="borda", quiet=True)
    manifest, metrics, rows = _reload(res.directory)
    test_ids = {r[0] for r in rows[1:]}
    n = len(test_ids)
    hits = query(experiment, "a person hands an object to another")
    assert [h.rank for h in hits] == list(range(1, 11)) and {h.motion_id for h in hits} <= test_ids
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and 0 <= scores[-1] and scores[0] <= 3 * n   # Borda points
    assert all(h.caption for h in hits)
    ckpt = experiment / manifest["members"][0]["checkpoint"]   # stored relative to the experiment
    single = query(ckpt, rows[1][1], split="val", top=5)
    assert len(single) == 5 and all(-1 - 1e-6 <= h.score <= 1 + 1e-6 for h in single)
    with pytest.raises(ResultsError, match="checkpoint"):
        query(experiment / "plots", "anything")


def test_rank_candidates_orders_by_recall_then_weighted_recall_then_id(tmp_path):
    for name in ("a", "b", "c", "d", "e"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "checkpoint.pt").write_bytes(b"")
    table = pa.table({
        "trial_id": ["t5", "t1", "t2", "t3", "t4", "t6"],
        "status": ["TERMINATED", "TERMINATED", "ERROR", "TERMINATED", "RUNNING", "TERMINATED"],
        "best_recall_at_1": [10.0, 10.0, 10.0, 12.0, 50.0, math.nan],
        "best_weighted_recall": [20.0, 20.0, 25.0, 1.0, 60.0, 5.0],
        "best_checkpoint": [str(tmp_path / x) for x in ("a", "b", "c", "d", "e")] + [str(tmp_path / "a")],
    })
    ranked = search_candidates(table)
    assert [c.member_id for c in ranked] == ["t3", "t2", "t1", "t5"]  # RUNNING and NaN left out
    shutil.rmtree(tmp_path / "d")
    assert [c.member_id for c in search_candidates(table)] == ["t2", "t1", "t5"]  # checkpoint gone
