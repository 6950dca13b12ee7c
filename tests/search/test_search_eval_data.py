"""run_search.py --eval-data: the spec is checked with the flags, stored in search_args.json for --resume, never
reaches a trial, and after the search the best checkpoint and the ensemble are reported on the other dataset."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from search import ArgsError, main, resolve_args, run
from search.args import SearchArgs, check_resume_compatible
from search.post import EVAL_FILE

OTHER = "synthetic:n=300,seed=1"     # another corpus in the smoke data's layout


@pytest.mark.parametrize("flags, message", [
    ({"eval_format": "bvh"}, "--eval-format is given without --eval-data"),
    ({"eval_data_split": "all"}, "--eval-data-split is given without --eval-data"),
    ({"eval_data": OTHER, "eval_data_split": "train"}, "--eval-data-split 'train' is unknown"),
])
def test_bad_eval_flags_fail_with_the_flags(tmp_path, flags, message):
    with pytest.raises(ArgsError, match=message):
        resolve_args({"storage": str(tmp_path), "smoke_test": True, **flags})


@pytest.mark.parametrize("spec, message", [
    ("/no/such/data", r"--eval-data /no/such/data: dataset path does not exist.*Fix: check --eval-data"),
    ("synthetic:n=5", "--eval-data synthetic:n=5: synthetic option n=5 is too small"),
])
def test_a_bad_eval_spec_fails_when_loaded_before_ray(tmp_path, capsys, monkeypatch, spec, message):
    """As --data's: parsed by the driver (the path may exist only on a cluster's head), before Ray starts.
    (Another test's session-wide Ray may be up in this process: what is checked is that this search never
    reaches the step that starts or joins Ray.)"""
    import search.run

    def ray_reached(*_, **__):
        raise AssertionError("the search reached ensure_ray with a bad --eval-data")

    monkeypatch.setattr(search.run, "ensure_ray", ray_reached)
    assert main(["--smoke-test", "--no-wandb", "--storage", str(tmp_path), "--eval-data", spec]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_the_eval_spec_is_stored_and_kept_on_resume(tmp_path):
    stored = resolve_args({"storage": str(tmp_path), "name": "x", "smoke_test": True, "eval_data": OTHER,
                           "eval_data_split": "all"})
    assert stored.to_json()["eval_data"] == OTHER and stored.eval.split == "all"
    again = SearchArgs.from_json(json.loads(json.dumps(stored.to_json())))
    resumed = check_resume_compatible(again, {"resume": True, "name": "x"}, storage=stored.storage)
    assert resumed.eval == stored.eval
    with pytest.raises(ArgsError, match=r"--eval-data 'synthetic:n=300,seed=2' cannot change on --resume"):
        check_resume_compatible(again, {"resume": True, "eval_data": "synthetic:n=300,seed=2"}, storage=stored.storage)
    # search_args.json written before --eval-data existed still resumes, without one
    old = {k: v for k, v in stored.to_json().items() if not k.startswith("eval_")}
    assert SearchArgs.from_json(old).eval is None


def test_a_search_reports_the_other_dataset_after_choosing_on_val(ray_local, tmp_path):
    args = resolve_args({"smoke_test": True, "num_samples": 2, "max_epochs": 2, "max_concurrent": 1,
                         "storage": str(tmp_path), "name": "xdata", "wandb": False, "refit_top_k": 0,
                         "ensemble_top_k": 2, "eval_data": OTHER})
    outcome = run(args)
    exp = Path(outcome.experiment_path)
    assert json.loads((exp / "search_args.json").read_text())["eval_data"] == OTHER
    for record in exp.glob("trial_*/trial.json"):   # no trial was given (or reported) anything of it
        text = (record.read_text())
        assert "eval_data" not in text and "seed=1" not in text
    report = json.loads((exp / EVAL_FILE).read_text())
    assert report["trial_id"] == outcome.best_trial_id == outcome.eval_report["trial_id"]
    assert report["checkpoint"] == outcome.best_checkpoint and "recall_at_1" in report["test"]
    assert report["eval_data"]["data"] == OTHER and report["eval_data"]["split"] == "test"
    assert report["eval_data"]["metrics"]["recall_at_1_lo"] <= report["eval_data"]["metrics"]["recall_at_1"]
    metrics = json.loads((exp / "ensemble" / "metrics.json").read_text())
    assert metrics["eval_data"]["data"] == OTHER and metrics["split_sizes"]["eval_data"] == report["eval_data"]["motions"]
    assert all("eval_data" in m and "eval_data" in m["minus_best_member"] for m in metrics["members"].values())
    assert "eval-data R@1 [CI]" in outcome.ensemble.table
