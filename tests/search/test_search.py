"""run_search / search: flag validation, Optuna wiring, and REAL small Ray Tune searches (ASHA, W&B
offline, best config; SIGINT/SIGTERM + --resume: test_search_interrupts.py)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from search import ArgsError, main, resolve_args, run
from search.args import SMOKE_OVERRIDES, check_resume_compatible
from spaces import get_space, sample_space

from .drivers import epochs_of, history_of, trials_of
from .services import silent_server
from .wandb_records import history



# ---------------------------------------------------------------- flags (no Ray)

@pytest.mark.parametrize("flags, flag_in_message", [
    ({"grace_period": 7, "max_epochs": 6}, "--grace-period"),
    ({"space": "no_such_space"}, "--space"),
    ({"max_concurrent": 0}, "--max-concurrent"),
    ({"num_samples": 0}, "--num-samples"),
    ({"reduction_factor": 1.0}, "--reduction-factor"),
    ({"cpus_per_trial": 10_000}, "--cpus-per-trial"),
    ({"gpus_per_trial": 1.5}, "--gpus-per-trial"),
    ({"address": "nowhere"}, "--address"),
    ({"name": "a/b"}, "--name"),
    ({"overrides": ["temprature=0.1"]}, "temperature"),        # did-you-mean from TrainConfig
    ({"overrides": ["epochs=3"]}, "--max-epochs"),             # owned by a flag
    ({"overrides": ["lr"]}, "KEY=VALUE"),
    ({"resume": True}, "--name"),
    ({"storage": "ftp://host/dir"}, "--storage"),
    ({"scheduler": "median"}, "--scheduler"),
    ({"sampler": "cmaes"}, "--sampler"),
    ({"refit_top_k": -1}, "--refit-top-k"),
    ({"refit_seeds": 0}, "--refit-seeds"),
    ({"refit_epochs": 0}, "--refit-epochs"),
])
def test_bad_flags_fail_before_ray_with_the_flag_named(tmp_path, flags, flag_in_message):
    given = {"storage": str(tmp_path), **flags}
    with pytest.raises(ArgsError) as err:
        resolve_args(given)
    assert flag_in_message in str(err.value)


def test_unwritable_storage_is_rejected(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ArgsError, match="--storage"):
        resolve_args({"storage": str(blocker / "experiments")})


def test_defaults_smoke_defaults_and_typed_overrides(tmp_path):
    args = resolve_args({"storage": str(tmp_path)})
    assert (args.space, args.num_samples, args.address) == ("aligned_loss", 6, "local")
    assert args.grace_period <= args.max_epochs and args.name.startswith("aligned_loss-")
    assert Path(args.storage).is_absolute() and args.experiment_path == str(tmp_path / args.name)

    smoke = resolve_args({"storage": str(tmp_path), "smoke_test": True, "max_epochs": 3,
                          "overrides": ["hidden_dim=128", "learn_temperature=true"]})
    assert smoke.data == "synthetic:n=200" and smoke.max_epochs == 3  # a given flag beats smoke defaults
    fixed = smoke.fixed_overrides
    assert fixed["hidden_dim"] == 128 and fixed["learn_temperature"] is True  # typed, user wins
    assert fixed["max_frames"] == SMOKE_OVERRIDES["max_frames"]


def test_resume_refuses_flags_that_change_the_search(tmp_path):
    stored = resolve_args({"storage": str(tmp_path), "name": "exp1", "num_samples": 4})
    same = check_resume_compatible(stored, {"resume": True, "name": "exp1", "num_samples": 4,
                                            "ensemble_top_k": 0}, storage=stored.storage)
    assert same.resume and same.num_samples == 4 and same.ensemble_top_k == 0
    with pytest.raises(ArgsError, match="--space"):
        check_resume_compatible(stored, {"resume": True, "space": "temos"}, storage=stored.storage)


def test_list_spaces_prints_names_and_docs(capsys):
    assert main(["--list-spaces"]) == 0
    out = capsys.readouterr().out
    for name in ("aligned_loss", "architecture", "temos", "infonce", "full"):
        assert f"\n{name}\n" in f"\n{out}"
    assert "log-uniform [0.02, 0.2]" in out


def test_resume_of_a_missing_experiment_is_a_clear_error(tmp_path, capsys):
    assert main(["--resume", "--name", "never-ran", "--storage", str(tmp_path)]) == 2
    assert "no experiment 'never-ran'" in capsys.readouterr().err


def test_study_searcher_builds_configs_like_sample_space(tmp_path):
    """Our searcher's suggestion is exactly sample_space's (sampled params + the space's fixed values)."""
    import optuna

    from search.study import StudySearcher, study_url

    for name in ("architecture", "full"):
        searcher = StudySearcher(name, study_url(tmp_path / f"{name}.db"), name, optuna.samplers.TPESampler(seed=3))
        ray_config = searcher.suggest("t1")
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3))
        assert ray_config == sample_space(get_space(name), study.ask())


# ---------------------------------------------------------------- real searches

@pytest.fixture(scope="module")
def aligned_search_run(ray_local, tmp_path_factory):
    """A search of 6 trials, with a W&B key and a W&B server that accepts connections and never answers (a proxy
    or a dead network behind one): W&B must log offline after one warning, and the search lose nothing."""
    import contextlib
    import io

    from search import wandb_setup

    storage = tmp_path_factory.mktemp("experiments")
    # One trial at a time: TPE's suggestions and ASHA's rung comparisons then happen in a fixed
    # order, and the seeded trainer is deterministic, so whether ASHA stops a trial is too.
    args = resolve_args({"space": "aligned_loss", "smoke_test": True, "num_samples": 6, "max_epochs": 3,
                         "grace_period": 1, "reduction_factor": 2, "max_concurrent": 1,
                         "storage": str(storage), "name": "asha-aligned", "ensemble_top_k": 0})
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as env, silent_server() as port, contextlib.redirect_stderr(stderr), \
            contextlib.redirect_stdout(stdout):
        env.delenv("WANDB_MODE")
        env.setenv("WANDB_API_KEY", "k" * 40)
        env.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
        env.setattr(wandb_setup, "WANDB_CONNECT_TIMEOUT_S", 1.0)
        env.setattr(wandb_setup, "_DECIDED", [])
        outcome = run(args)
    return args, outcome, stdout.getvalue() + stderr.getvalue()


@pytest.fixture(scope="module")
def aligned_search(aligned_search_run):
    args, outcome, _ = aligned_search_run
    return args, outcome


def test_a_wandb_server_that_never_answers_costs_one_warning_and_the_sync_hint(aligned_search_run):
    _, outcome, output = aligned_search_run
    warnings = [line for line in output.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "did not answer an HTTP request within 1 s" in warnings[0], output[-2000:]
    assert "W&B logs offline instead, and the search goes on" in warnings[0]
    assert "W&B ran offline" in output and "wandb sync" in output and outcome.num_errors == 0


def test_asha_stops_a_weak_trial_early(aligned_search):
    args, outcome = aligned_search
    trials = trials_of(outcome.experiment_path)
    assert len(trials) == 6 and outcome.num_errors == 0 and not outcome.interrupted
    assert all(t.status == "TERMINATED" for t in trials)
    iters = sorted(t.last_result["training_iteration"] for t in trials)
    assert iters[0] < args.max_epochs, f"ASHA stopped nothing: {iters}"
    assert iters[-1] == args.max_epochs, f"no trial reached max_t: {iters}"
    for t in trials:  # one report per epoch: training_iteration == epoch
        assert t.last_result["epoch"] == t.last_result["training_iteration"]


def test_the_study_database_holds_every_trial_with_what_early_stopping_did(aligned_search):
    """optuna.load_study on <experiment>/optuna.db: params, state, intermediate values and value per trial;
    ASHA-stopped trials are PRUNED (not COMPLETE with an early score, as Ray's OptunaSearch told them)."""
    import optuna

    args, outcome = aligned_search
    study = optuna.load_study(study_name=args.name, storage=f"sqlite:///{outcome.experiment_path}/optuna.db")
    by_ray = {t.user_attrs["ray_trial_id"]: t for t in study.trials}
    tune_trials = {t.trial_id: t for t in trials_of(outcome.experiment_path)}
    assert set(by_ray) == set(tune_trials)
    for trial_id, t in by_ray.items():
        epochs = tune_trials[trial_id].last_result["training_iteration"]
        reported = history_of(Path(tune_trials[trial_id].path), "recall_at_1")
        assert t.intermediate_values == {e: v for e, v in enumerate(reported, 1)}
        assert t.params and set(t.params) <= set(tune_trials[trial_id].config)
        if epochs == args.max_epochs:
            assert t.state == optuna.trial.TrialState.COMPLETE and t.value == max(reported)
        else:
            assert t.state == optuna.trial.TrialState.PRUNED, (trial_id, epochs)
    assert any(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)


def test_optuna_dashboard_lists_the_trials_in_a_real_browser(aligned_search, tmp_path):
    """optuna-dashboard on the finished study, opened in headless Chromium: the trial list shows every trial."""
    from .services import browse, optuna_dashboard

    args, outcome = aligned_search
    with optuna_dashboard(f"sqlite:///{outcome.experiment_path}/optuna.db") as url:
        shot = tmp_path / "optuna-dashboard.png"
        dom = browse(f"{url}/dashboard/studies/1/trials", tmp_path, shot)
    print(f"\n[optuna-dashboard] screenshot: {shot}")
    assert shot.is_file() and shot.stat().st_size > 10_000
    for number in range(args.num_samples):
        assert f"Trial {number}" in dom, dom[-2000:]
    assert "Pruned" in dom and "Complete" in dom


def test_best_config_and_checkpoint_are_retrievable(aligned_search):
    args, outcome = aligned_search
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(outcome.experiment_path)
    best_r1 = {t.trial_id: max(history_of(t.path, "recall_at_1")) for t in analysis.trials}
    assert outcome.best_metrics["recall_at_1"] == pytest.approx(max(best_r1.values()))
    assert best_r1[outcome.best_trial_id] == pytest.approx(max(best_r1.values()))  # ties allowed
    chosen = next(t for t in analysis.trials if t.trial_id == outcome.best_trial_id)
    record = json.loads((Path(chosen.path) / "trial.json").read_text())   # the full config: Tune's is the sample
    assert record["config"]["loss"] == "aligned" and outcome.best_config["epochs"] == args.max_epochs
    for key in ("temperature", "mse_weight", "uniformity_weight", "lr", "batch_size"):
        assert outcome.best_config[key] == pytest.approx(chosen.config[key]) == pytest.approx(record["config"][key])
    assert outcome.best_config == record["config"]
    assert outcome.best_metrics["full_t2m_R1"] is not None and "recall_at_1_lo" in outcome.best_metrics
    assert (Path(outcome.best_checkpoint) / "checkpoint.pt").is_file()
    assert (Path(outcome.experiment_path) / "search_args.json").is_file()


# Keys Tune adds to every result itself (ray.tune.result): they stay in its state whatever a trial reports.
TUNE_KEYS = {"timestamp", "checkpoint_dir_name", "should_checkpoint", "done", "training_iteration", "trial_id", "date",
             "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip", "config", "time_since_restore",
             "iterations_since_restore", "experiment_tag"}


def test_tunes_state_holds_the_lean_keys_and_the_records_hold_every_metric(aligned_search):
    """Tune's experiment state keeps every reported key several times per trial: trials report only what the
    scheduler, the searcher and the progress table read; the full metrics live in trial.json."""
    from search.trainable import LEAN_KEYS

    args, outcome = aligned_search
    exp = Path(outcome.experiment_path)
    state_file = max(exp.glob("experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    entries = json.loads(state_file.read_text())["trial_data"]
    for trial_json, meta_json in entries:
        meta, trial = json.loads(meta_json), json.loads(trial_json)
        assert set(meta["last_result"]) - TUNE_KEYS <= set(LEAN_KEYS), sorted(meta["last_result"])
        assert set(meta["metric_analysis"]) - TUNE_KEYS <= set(LEAN_KEYS), sorted(meta["metric_analysis"])
        # what the searcher sampled, not the ~45 constants (data, max_frames, ...) again for every trial
        assert "lr" in trial["config"] and not {"data", "max_frames", "hidden_dim"} & set(trial["config"])
    assert state_file.stat().st_size / len(entries) < 20_000   # was ~66 KB per trial with every key reported
    for trial in trials_of(outcome.experiment_path):
        record = json.loads((Path(trial.path) / "trial.json").read_text())
        assert len(record["config"]) > 40 and record["config"]["loss"] == "aligned"
        for row in record["epochs"]:
            for key in ("full_t2m_R1", "m2t_recall_at_1", "recall_at_1_lo", "epoch_seconds", "train_loss", "ray_node_id"):
                assert key in row, (trial.trial_id, key)


def test_checkpoints_are_kept_by_purpose(aligned_search):
    """The latest checkpoint of a trial resumes (training state), its best holds the model only, the rest are
    emptied in place (search/retention.py); results/ picks the best model."""
    from core.checkpoint import TRAINING_STATE_FILE, is_intact

    args, outcome = aligned_search
    for trial in trials_of(outcome.experiment_path):
        record = json.loads((Path(trial.path) / "trial.json").read_text())
        names = [e["checkpoint_dir_name"] for e in record["epochs"]]
        best = max(record["epochs"], key=lambda e: (e["recall_at_1"], -e["epoch"]))["checkpoint_dir_name"]
        latest = Path(trial.path) / names[-1]
        assert is_intact(latest, resumable=True)
        for name in names[:-1]:
            folder = Path(trial.path) / name
            assert folder.is_dir()   # never removed: an older experiment state may name it
            if name == best:
                assert is_intact(folder) and not (folder / TRAINING_STATE_FILE).exists()
            else:
                assert not (folder / "checkpoint.pt").exists() and (folder / "retired.json").is_file()
    assert Path(outcome.best_checkpoint).name == max(
        json.loads((Path(outcome.best_checkpoint).parent / "trial.json").read_text())["epochs"],
        key=lambda e: (e["recall_at_1"], -e["epoch"]))["checkpoint_dir_name"]


def test_wandb_logs_from_inside_the_trials_not_through_a_driver_actor(aligned_search):
    """No Ray W&B callback (a logging actor and a queue actor per trial, fed from the driver's loop): the
    trainable carries the W&B settings and each trial opens its own run."""
    from ray.air.integrations.wandb import WandbLoggerCallback

    from search.tuner import build_run_config
    from search.wandb_setup import TrialWandb, trial_wandb

    args, _ = aligned_search
    run_config = build_run_config(args, callbacks=[], param_columns=[])
    assert not any(isinstance(c, WandbLoggerCallback) for c in run_config.callbacks)
    target = trial_wandb(args)
    assert isinstance(target, TrialWandb) and target.mode == "offline" and target.group == args.name


def test_every_trial_keeps_its_own_record_and_results_need_no_tune_state(aligned_search, tmp_path):
    import shutil

    import pyarrow.parquet as pq

    from results import write_results

    args, outcome = aligned_search
    exp = Path(outcome.experiment_path)
    for trial in trials_of(outcome.experiment_path):
        record = json.loads((Path(trial.path) / "trial.json").read_text())
        assert record["status"] == "TERMINATED" and record["trial_id"] == trial.trial_id
        assert [e["epoch"] for e in record["epochs"]] == epochs_of(Path(trial.path))
        assert [e["recall_at_1"] for e in record["epochs"]] == history_of(trial.path, "recall_at_1")
    # Without Tune's experiment state (or its result.json files) results/ reads the same search from the records.
    copy = Path(shutil.copytree(exp, tmp_path / "copy", ignore=shutil.ignore_patterns(
        "experiment_state-*", "result.json", "progress.csv", "trials.parquet", "epochs.parquet", "refit")))
    original = {r["trial_id"]: r for r in pq.read_table(exp / "trials.parquet").to_pylist()}
    rebuilt = {r["trial_id"]: r for r in write_results(copy, quiet=True).trials.to_pylist()}
    assert rebuilt.keys() == original.keys()
    for trial_id, row in rebuilt.items():
        for key in ("status", "rank", "epochs_run", "best_epoch", "best_recall_at_1", "stopped_early"):
            assert row[key] == original[trial_id][key], (trial_id, key)


def test_wandb_offline_writes_one_run_per_trial_and_a_summary(aligned_search):
    args, outcome = aligned_search
    runs = sorted((Path(outcome.experiment_path) / "wandb").glob("offline-run-*"))
    trial_ids = {t.trial_id for t in trials_of(outcome.experiment_path)}
    refit = Path(outcome.experiment_path) / "refit"
    refit_ids = {t.trial_id for t in trials_of(str(refit))} if list(refit.glob("experiment_state-*")) else set()
    run_ids = {r.name.rsplit("-", 1)[-1] for r in runs}
    assert trial_ids | refit_ids <= run_ids and len(runs) == len(trial_ids) + len(refit_ids) + 1  # + the summary
    by_id = {r.name.rsplit("-", 1)[-1]: r for r in runs}
    for trial in [*trials_of(outcome.experiment_path), *(trials_of(str(refit)) if refit_ids else [])]:
        # Every epoch the trial reported reaches its W&B run, with the same R@1.
        logged = [row for row in history(next(by_id[trial.trial_id].glob("run-*.wandb"))) if "recall_at_1" in row]
        reported = dict(zip(epochs_of(Path(trial.path)), history_of(trial.path, "recall_at_1")))
        assert {row["epoch"]: row["recall_at_1"] for row in logged} == pytest.approx(reported), trial.trial_id
    summary = Path(outcome.wandb_summary_dir).parent
    assert (Path(outcome.experiment_path) / "plots" / "best_similarity.png").is_file()
    assert list(summary.glob("files/media/images/best_similarity*.png"))


def test_second_space_runs_fifo_random_with_wandb_off(ray_local, tmp_path):
    args = resolve_args({"space": "temos", "smoke_test": True, "num_samples": 4, "max_epochs": 2,
                         "storage": str(tmp_path), "name": "temos", "wandb": False, "ensemble_top_k": 0,
                         "refit_top_k": 0, "scheduler": "fifo", "sampler": "random"})
    outcome = run(args)
    trials = trials_of(outcome.experiment_path)
    assert len(trials) == 4 and all(t.status == "TERMINATED" for t in trials)
    assert all(epochs_of(Path(t.path)) == [1, 2] for t in trials)   # FIFO: nobody stopped early
    assert all(t.config["vae"] is True and t.config["loss"] == "temos" for t in trials)   # the space's own values
    configs = [json.loads((Path(t.path) / "trial.json").read_text())["config"] for t in trials]   # + the constants
    assert all(c["max_frames"] == SMOKE_OVERRIDES["max_frames"] and c["vae"] is True for c in configs)
    assert not (Path(outcome.experiment_path) / "wandb").exists()
    assert outcome.best_config["loss"] == "temos"


ENSEMBLED = SimpleNamespace(ensemble_top_k=3, refit_top_k=2)   # a search whose later stages score the test split


def test_small_splits_are_called_out_once_before_any_trial(capsys):
    from core.data import load_corpus
    from search.run import check_small_splits

    corpus = load_corpus("synthetic:n=620,val=20,test=500")
    check_small_splits(corpus, {"eval_split": "val", "eval_batch_size": 32}, ENSEMBLED)
    out = capsys.readouterr().out
    assert "the val split has only 20 motions" in out and "+-22 points" in out and "val=0.2" in out
    assert "test split" not in out and out.count("WARNING") == 1
    # smaller than the protocol's batch: said once, as an easier ranking
    assert "the val split has 20 motions, fewer than the protocol's batch of 32" in out and out.count("note:") == 1


@pytest.mark.parametrize("spec, split, n", [("synthetic:n=60,val=1", "val", 1), ("synthetic:n=60,test=1", "test", 1)])
def test_a_split_too_small_to_score_is_refused_before_ray(spec, split, n):
    from core.data import DataError, load_corpus
    from search.run import check_small_splits

    corpus = load_corpus(spec)
    with pytest.raises(DataError, match=rf"the '{split}' split of dataset .* holds {n} motion\(s\) of 60: retrieval "
                                        rf"recall needs at least 2.*Fix: give it motions: size it in the data spec, "
                                        rf"e.g. --data SPEC:{split}=0.1"):
        check_small_splits(corpus, {"eval_split": "val", "eval_batch_size": 32}, ENSEMBLED)
