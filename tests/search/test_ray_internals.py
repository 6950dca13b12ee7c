"""search/ray_internals.py: the one place that touches Ray's private API. These tests fail loudly when the
installed Ray is outside the tested range or has moved one of the internals the project uses."""
from __future__ import annotations

import warnings
from pathlib import Path

import ray
import pytest

from search import ray_internals


def test_the_installed_ray_is_inside_the_tested_range():
    assert ray_internals.ray_version_supported(), (
        f"Ray {ray.__version__} is outside {ray_internals.TESTED_RAY}: check search/ray_internals.py against it, "
        "then widen TESTED_RAY and the pin in pyproject.toml")
    assert ray_internals.check_ray_version()


@pytest.mark.parametrize("version", ["3.1.0", "2.49.9", "2.61.0", "nightly"])
def test_an_untested_ray_version_is_named(version):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not ray_internals.check_ray_version(version)
    assert f"Ray {version} is outside the tested range 2.50-2.60" in str(caught[0].message)


def test_tunes_state_files_are_named_as_we_read_them(tmp_path):
    """Tune's own constants for the files search/tune_state.py copies."""
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.search_generator import SearchGenerator
    from ray.tune.search.searcher import Searcher

    patterns = ray_internals.TUNE_STATE_PATTERNS
    assert TuneController.CKPT_FILE_TMPL.format("*") in patterns
    assert SearchGenerator.CKPT_FILE_TMPL.format("*") in patterns
    assert Searcher.CKPT_FILE_TMPL.format("*") in patterns
    assert BasicVariantGenerator.CKPT_FILE_TMPL.format("*") in patterns


def test_the_launcher_validation_rejects_an_unknown_key():
    with pytest.raises(Exception, match="bogus_key|Additional properties"):
        ray_internals.validate_launcher_config({"cluster_name": "x", "provider": {"type": "local", "head_ip": "h",
                                                                                   "worker_ips": []},
                                                "bogus_key": 1})


def test_a_folder_with_tuner_pkl_but_no_experiment_state_is_not_resumable(tmp_path):
    """A driver killed between Tune writing tuner.pkl and its first experiment state: Tune's restore would restart
    with --num-samples lost (bench/kill_points.py caught a search that ran 1 of 6 trials); start it in place."""
    from ray import tune

    from search.ray_internals import can_resume

    (tmp_path / "tuner.pkl").write_bytes(b"")
    assert tune.Tuner.can_restore(str(tmp_path)) and not can_resume(str(tmp_path))
    (tmp_path / "experiment_state-2026-12-07_02-47-01.json").write_text("{}")
    assert can_resume(str(tmp_path))
    assert not can_resume(str(tmp_path / "missing"))


def test_a_trial_stores_its_next_checkpoint_after_the_one_it_continues_from(ray_local, tmp_path):
    """Through Tune itself: after continue_checkpoint_numbering(".../checkpoint_000004") the trial's next checkpoint
    is checkpoint_000005; a folder behind Tune's own count changes nothing."""
    from ray import tune

    source = tmp_path / "source"

    def trainable(config):
        ray_internals.continue_checkpoint_numbering(str(tmp_path / "elsewhere" / "checkpoint_000004"))
        for epoch in (5, 6):
            folder = source / str(epoch)
            folder.mkdir(parents=True)
            (folder / "weights").write_text(str(epoch))
            tune.report({"epoch": epoch}, checkpoint=tune.Checkpoint.from_directory(str(folder)))
            ray_internals.continue_checkpoint_numbering(str(tmp_path / "elsewhere" / "checkpoint_000001"))

    tuner = tune.Tuner(trainable, run_config=tune.RunConfig(storage_path=str(tmp_path / "store"), name="numbering",
                                                            verbose=0))
    result = tuner.fit()[0]
    assert result.error is None
    trial = Path(result.path)
    assert sorted(p.name for p in trial.glob("checkpoint_*")) == ["checkpoint_000005", "checkpoint_000006"]
    assert (trial / "checkpoint_000006" / "weights").read_text() == "6"
