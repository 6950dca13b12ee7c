"""results/: read a real (tiny) Ray Tune experiment from disk: Parquet tables, leaderboard, plots, CLI, errors.

One module-scoped Tune run (ASHA, 4 trials, sequential so ASHA's decisions are deterministic, max_failures=1):
  quality 0.90 -> crashes once at epoch 3, Ray restores it from its epoch-2 checkpoint, runs all 4 epochs (best)
  quality 0.95 -> passes ASHA's first rung, then raises at epoch 2, also after its retry (ERROR)
  quality 0.50, 0.40 -> below the rung-1 median: ASHA stops them after epoch 1 (TERMINATED, stopped early)
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from results import ResultsError, load_trials, read_experiment, write_results
from results.experiment_dir import _last_failure_message
from results.plots import project_2d

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 4
QUALITIES = [0.9, 0.95, 0.5, 0.4]
FAILING_QUALITY = 0.95
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic_r1(quality: float, epoch: int) -> float:
    return quality * 50.0 * (1.0 - math.exp(-epoch / 2.0))


def _make_trainable():
    # Nested so cloudpickle ships it by value: Ray workers need not import this test module.
    def trainable(config):
        import json as _json
        import math as _math
        import os as _os
        import tempfile as _tempfile

        import numpy as _np
        from ray import tune as _tune

        q = config["quality"]
        rng = _np.random.default_rng(int(q * 100))
        text = rng.normal(size=(40, 16)).astype(_np.float32)
        start = 1
        restored = _tune.get_checkpoint()  # set when Ray retries the trial after a failure
        if restored is not None:
            with restored.as_directory() as ckpt:
                with open(_os.path.join(ckpt, "metrics.json")) as fh:
                    start = _json.load(fh)["epoch"] + 1
        for epoch in range(start, config["epochs"] + 1):
            if q == 0.95 and epoch == 2:
                raise RuntimeError(f"loss became NaN at epoch {epoch}, step 3 (lr={config['lr']})")
            if q == 0.9 and epoch == 3 and not _os.path.exists(config["crash_marker"]):
                open(config["crash_marker"], "w").close()  # crash once, like a lost node, then resume
                raise OSError("simulated worker crash at epoch 3")
            r1 = q * 50.0 * (1.0 - _math.exp(-epoch / 2.0))
            metrics = {"epoch": epoch, "recall_at_1": r1, "recall_at_5": min(100.0, 2.5 * r1),
                       "weighted_recall": 1.5 * r1, "medr": float(20 - 4 * epoch * q),
                       "full_t2m_R1": r1 / 2, "m2t_recall_at_1": 0.9 * r1, "train_loss": 3.0 / epoch,
                       "lr": config["lr"], "num_params": 12345}
            # Motion embeddings approach their captions as "training" goes on: (40, 16) unit rows.
            motion = text + rng.normal(size=text.shape).astype(_np.float32) * (1.5 - q) / epoch
            with _tempfile.TemporaryDirectory() as ckpt:
                _np.savez(_os.path.join(ckpt, "embeddings.npz"),
                          text=text / _np.linalg.norm(text, axis=1, keepdims=True),
                          motion=motion / _np.linalg.norm(motion, axis=1, keepdims=True),
                          ids=_np.array([f"M{i:03d}" for i in range(40)]),
                          captions=_np.array([f"a person does move number {i}" for i in range(40)]))
                with open(_os.path.join(ckpt, "metrics.json"), "w") as fh:
                    _json.dump(metrics, fh)
                _tune.report(metrics, checkpoint=_tune.Checkpoint.from_directory(ckpt))
    return trainable


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    storage = tmp_path_factory.mktemp("ray_results")
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            _make_trainable(),
            param_space={"quality": tune.grid_search(QUALITIES), "epochs": EPOCHS, "lr": 1e-3,
                         "model": {"dim": 16}, "crash_marker": str(storage / "crashed_once")},
            tune_config=tune.TuneConfig(
                metric="recall_at_1", mode="max", max_concurrent_trials=1, reuse_actors=True,
                scheduler=ASHAScheduler(max_t=EPOCHS, grace_period=1, reduction_factor=2)),
            run_config=tune.RunConfig(
                name="tiny", storage_path=str(storage), verbose=0, failure_config=tune.FailureConfig(max_failures=1),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="recall_at_1",
                                                        checkpoint_score_order="max")),
        )
        tuner.fit()
    finally:
        if started:
            ray.shutdown()
    return storage / "tiny"


@pytest.fixture(scope="module")
def rendered(experiment):
    return write_results(experiment, quiet=True, top=10)


def _by_quality(table) -> dict[float, dict]:
    return {row["config/quality"]: row for row in table.to_pylist()}


def test_parquet_tables_have_one_row_per_trial_and_per_epoch(experiment, rendered):
    trials = pq.read_table(experiment / "trials.parquet")
    epochs = pq.read_table(experiment / "epochs.parquet")
    assert trials.num_rows == len(QUALITIES)
    rows = _by_quality(trials)
    assert {q: r["epochs_run"] for q, r in rows.items()} == {0.9: 4, 0.95: 1, 0.5: 1, 0.4: 1}
    assert epochs.num_rows == sum(r["epochs_run"] for r in rows.values()) == 7
    assert set(epochs.column("trial_id").to_pylist()) == set(trials.column("trial_id").to_pylist())
    for column in ("recall_at_1", "weighted_recall", "medr", "full_t2m_R1", "train_loss", "time_total_s"):
        assert column in epochs.column_names
    # Config columns are flattened and keep their types.
    assert str(trials.schema.field("config/quality").type) == "double"
    assert str(trials.schema.field("config/model/dim").type) == "int64"
    assert str(trials.schema.field("last_num_params").type) == "int64"
    assert rows[0.9]["node_ip"] and rows[0.9]["hostname"] and rows[0.9]["wall_seconds"] > 0
    assert Path(rows[0.9]["trial_dir"]).is_dir()


def test_statuses_errors_and_early_stopping(rendered):
    rows = _by_quality(rendered.trials)
    assert {r["status"] for r in rows.values()} == {"TERMINATED", "ERROR"}
    assert rows[FAILING_QUALITY]["status"] == "ERROR"
    assert rows[FAILING_QUALITY]["error"].startswith("RuntimeError: loss became NaN at epoch 2, step 3")
    assert rows[FAILING_QUALITY]["num_failures"] == 2  # the retry failed the same way
    # A recovered trial keeps its failure on record but finishes normally.
    assert rows[0.9]["status"] == "TERMINATED" and rows[0.9]["num_failures"] == 1
    assert rows[0.9]["error"] == "OSError: simulated worker crash at epoch 3"
    assert rows[0.5]["error"] is None and rows[0.5]["num_failures"] == 0
    assert {q: r["stopped_early"] for q, r in rows.items()} == {0.9: False, 0.95: False, 0.5: True, 0.4: True}


def test_best_trial_metrics_config_and_checkpoint(rendered):
    rows = _by_quality(rendered.trials)
    best = rows[0.9]
    assert rendered.best_trial_id == best["trial_id"] and best["rank"] == 1
    assert [r["rank"] for r in rendered.trials.to_pylist()] == [1, 2, 3, 4]
    assert best["best_epoch"] == 4
    assert best["best_recall_at_1"] == pytest.approx(synthetic_r1(0.9, 4))
    assert best["best_weighted_recall"] == pytest.approx(1.5 * synthetic_r1(0.9, 4))
    assert best["last_train_loss"] == pytest.approx(3.0 / 4)
    assert rows[0.5]["best_recall_at_1"] == pytest.approx(synthetic_r1(0.5, 1))
    assert {k: v for k, v in rendered.best_config.items() if k != "crash_marker"} == {
        "quality": 0.9, "epochs": EPOCHS, "lr": 1e-3, "model/dim": 16}
    ckpt = rendered.best_checkpoint
    assert ckpt is not None and ckpt.is_absolute() and (ckpt / "embeddings.npz").is_file()
    assert json.loads((ckpt / "metrics.json").read_text())["epoch"] == 4
    assert str(ckpt) == best["best_checkpoint"] and best["best_checkpoint_epoch"] == 4


def test_leaderboard_text(rendered):
    lines = rendered.leaderboard_text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rank"))
    assert "best R@1" in lines[header] and "quality" in lines[header]
    first = lines[header + 2].split()
    assert first[:3] == ["1", rendered.best_trial_id, "TERMINATED"]
    assert f"{synthetic_r1(0.9, 4):.2f}" in lines[header + 2]
    assert "1/4*" in rendered.leaderboard_text  # ASHA-stopped trials are flagged
    assert "loss became NaN" in rendered.leaderboard_text
    assert "1 recovered after failures" in rendered.leaderboard_text
    assert "simulated worker crash" not in rendered.leaderboard_text  # only fatal errors are listed
    assert "lr" not in lines[header].split()  # constant config keys are not shown


def test_plots_are_valid_pngs(experiment, rendered):
    names = sorted(p.name for p in rendered.plots)
    assert names == ["best_similarity.png", "best_tsne.png", "recall_vs_epoch.png"]
    for plot in rendered.plots:
        assert plot.parent == experiment / "plots"
        data = plot.read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 20_000, plot


def test_cli_rerenders(experiment, tmp_path):
    trials_file = experiment / "trials.parquet"
    trials_file.unlink()
    proc = subprocess.run([sys.executable, "-m", "results", str(experiment), "--top", "2"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "showing top 2" in proc.stdout and str(trials_file) in proc.stdout
    assert "recall_vs_epoch.png" in proc.stdout
    assert pq.read_table(trials_file).num_rows == len(QUALITIES)

    empty = tmp_path / "not_an_experiment"
    empty.mkdir()
    proc = subprocess.run([sys.executable, "-m", "results", str(empty)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "not a Ray Tune experiment directory" in proc.stderr
    assert str(empty) in proc.stderr


def test_bad_directories_raise_one_clear_error(experiment, tmp_path):
    with pytest.raises(ResultsError, match="does not exist"):
        write_results(tmp_path / "missing", quiet=True)
    with pytest.raises(ResultsError, match="not a Ray Tune experiment directory"):
        write_results(tmp_path, quiet=True)
    with pytest.raises(ResultsError, match="pass one of its experiments: tiny"):
        read_experiment(experiment.parent)  # the storage root, one level too high


def test_no_finished_epoch_is_reported_clearly(experiment, tmp_path):
    copy = Path(shutil.copytree(experiment, tmp_path / "copy"))
    for result in copy.glob("*/result.json"):
        result.unlink()
    with pytest.raises(ResultsError, match="no trial has finished an epoch") as info:
        write_results(copy, quiet=True)
    assert "loss became NaN" in str(info.value)
    assert pq.read_table(copy / "trials.parquet").num_rows == len(QUALITIES)  # statuses stay inspectable


def test_state_gaps_torn_lines_and_missing_checkpoints(experiment, rendered, tmp_path):
    copy = Path(shutil.copytree(experiment, tmp_path / "copy"))
    best_dir = Path(_by_quality(rendered.trials)[0.9]["trial_dir"].replace(str(experiment), str(copy)))
    # A driver killed mid-write leaves a torn last line; a resume can repeat an epoch (the later one wins).
    lines = (best_dir / "result.json").read_text().splitlines()
    # NaN/Infinity are valid for Python's json but are damage here: an epoch or a score never is one.
    damaged = [json.dumps({**json.loads(lines[-1]), "epoch": float("nan")}), '{"epoch": 9, "recall_at_1": NaN}',
               '{"epoch": 9, "recall_at_1": "high"}', '{"epoch": Infinity, "recall_at_1": 1.0}']
    (best_dir / "result.json").write_text("\n".join(lines + [lines[-1], *damaged, '{"epoch": 5, "recall_']) + "\n")
    # The newest checkpoint (epoch 4) is gone: the best one left on disk is epoch 3's.
    newest = max(best_dir.glob("checkpoint_*"))
    shutil.rmtree(newest)
    # The driver died before saving the state of the ERROR trial.
    state_file = max(copy.glob("experiment_state-*.json"))
    state = json.loads(state_file.read_text())
    failing_id = _by_quality(rendered.trials)[FAILING_QUALITY]["trial_id"]
    state["trial_data"] = [e for e in state["trial_data"] if json.loads(e[0])["trial_id"] != failing_id]
    state_file.write_text(json.dumps(state))

    res = write_results(copy, quiet=True)
    rows = _by_quality(res.trials)
    assert rows[0.9]["epochs_run"] == 4 and res.epochs.num_rows == 7
    assert rows[0.9]["best_checkpoint_epoch"] == 3
    assert json.loads((res.best_checkpoint / "metrics.json").read_text())["epoch"] == 3
    assert rows[FAILING_QUALITY]["status"] == "ERROR" and not rows[FAILING_QUALITY]["in_experiment_state"]
    assert rows[FAILING_QUALITY]["error"].startswith("RuntimeError: loss became NaN")
    assert any("skipped 5 unreadable line" in w for w in res.warnings), res.warnings
    assert any(failing_id in w and "not in" in w for w in res.warnings)

    # No checkpoint left at all: embedding plots are skipped and stale copies removed.
    for ckpt in best_dir.glob("checkpoint_*"):
        shutil.rmtree(ckpt)
    res = write_results(copy, quiet=True)
    assert res.best_checkpoint is None and [p.name for p in res.plots] == ["recall_vs_epoch.png"]
    assert not (copy / "plots" / "best_similarity.png").exists()
    assert any("no checkpoint left" in w for w in res.warnings)


def test_load_trials_builds_or_reads_the_ranked_table(experiment, rendered, tmp_path):
    copy = Path(shutil.copytree(experiment, tmp_path / "copy"))
    (copy / "trials.parquet").unlink()
    built = load_trials(copy)
    assert (copy / "trials.parquet").is_file()
    assert built.column("trial_id").to_pylist() == rendered.trials.column("trial_id").to_pylist()
    assert load_trials(copy).equals(built)
    # Newer results than the table (a resumed search) make load_trials rebuild it.
    before = (copy / "trials.parquet").stat().st_mtime_ns
    result_file = next(copy.glob("*/result.json"))
    os.utime(result_file, ns=(before + 10**9, before + 10**9))
    assert load_trials(copy).equals(built)
    assert (copy / "trials.parquet").stat().st_mtime_ns != before
    assert built.slice(0, 2).column("rank").to_pylist() == [1, 2]  # top-K = the first K rows


def test_a_copied_or_damaged_table_is_rebuilt_for_where_the_experiment_is(experiment, rendered, tmp_path):
    copy = Path(shutil.copytree(experiment, tmp_path / "synced"))   # copytree keeps mtimes: the table looks fresh
    trial_dirs = load_trials(copy).column("trial_dir").to_pylist()
    assert trial_dirs and all(Path(d).is_relative_to(copy) for d in trial_dirs)   # not the original's checkpoints
    assert all(Path(c).is_relative_to(copy) for c in load_trials(copy).column("best_checkpoint").to_pylist() if c)
    data = (copy / "trials.parquet").read_bytes()
    (copy / "trials.parquet").write_bytes(data[: len(data) // 2])   # torn by a full disk or a killed copy
    assert load_trials(copy).column("trial_id").to_pylist() == rendered.trials.column("trial_id").to_pylist()


def test_error_txt_parsing_takes_the_last_failure():
    text = ("Failure # 1 (occurred at 2026-01-01_00-00-00)\n"
            "ray::ImplicitFunc.train() (pid=1, ip=10.0.0.1)\n"
            '  File "/x/train.py", line 3, in f\n    raise OSError("disk")\n'
            "OSError: disk\n"
            "Failure # 2 (occurred at 2026-01-01_00-01-00)\n"
            "ray::ImplicitFunc.train() (pid=2, ip=10.0.0.1)\n"
            '  File "/x/train.py", line 9, in f\n    raise ConfigError(msg)\n    ^^^^^^^^^^\n'
            "core.config.ConfigError: config key 'lr' = -1 is invalid.\nFix: use a positive lr.\n")
    assert _last_failure_message(text) == ("core.config.ConfigError: config key 'lr' = -1 is invalid.\n"
                                           "Fix: use a positive lr.")
    # A worker that died has no traceback: the whole block is the message.
    died = "Failure # 1 (occurred at 2026-01-01_00-00-00)\nThe actor died unexpectedly before finishing this task.\n"
    assert _last_failure_message(died) == "The actor died unexpectedly before finishing this task."


def test_projection_falls_back_to_pca_without_sklearn(monkeypatch):
    points = np.random.default_rng(0).normal(size=(30, 8))
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)  # makes `from sklearn.manifold import` fail
    xy, method = project_2d(points)
    assert xy.shape == (30, 2) and method.startswith("PCA")
    centered = points - points.mean(axis=0)
    assert np.var(xy[:, 0]) == pytest.approx(np.linalg.svd(centered, compute_uv=False)[0] ** 2 / 30)


def test_one_ranking_rule_breaks_ties_by_weighted_recall_then_id():
    from results.tables import trial_rank_key

    trials = [(50.0, 60.0, "b"), (50.0, 70.0, "c"), (50.0, None, "a"), (55.0, 10.0, "z"), (50.0, 70.0, "a")]
    ranked = sorted(trials, key=lambda t: trial_rank_key(*t))
    assert [t[2] for t in ranked] == ["z", "a", "c", "b", "a"]
    assert ranked[1] == (50.0, 70.0, "a") and ranked[-1] == (50.0, None, "a")   # no weighted recall: last of a tie


def test_a_damaged_search_args_or_an_emptied_study_are_named_and_never_written(experiment, tmp_path):
    """Found by the issue-23 hunt: a search_args.json holding a list made the study note an AttributeError that named
    no file, and opening a 0-byte optuna.db wrote an empty schema into it (results/ only reads)."""
    import shutil

    from results.study_report import study_storage

    copy = Path(shutil.copytree(experiment, tmp_path / "copy"))
    (copy / "search_args.json").write_text("[1, 2]")
    assert study_storage(copy) == (f"sqlite:///{copy / 'optuna.db'}", "copy")   # what a search writes by default
    (copy / "optuna.db").write_bytes(b"")
    result = write_results(copy, quiet=True)
    assert any("optuna.db is empty: the study is gone" in w for w in result.warnings), result.warnings
    assert (copy / "optuna.db").stat().st_size == 0 and result.trials.num_rows == len(QUALITIES)
