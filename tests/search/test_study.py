"""Our Optuna searcher: what the study learns about scheduler-stopped, finished and diverged trials."""
from __future__ import annotations

import pickle

import optuna
import pytest

from search.study import RAY_TRIAL_ATTR, StudySearcher, open_study, study_url

State = optuna.trial.TrialState


def _searcher(tmp_path, name="exp"):
    return StudySearcher("aligned_loss", study_url(tmp_path / "optuna.db"), name,
                         optuna.samplers.RandomSampler(seed=0))


def _epochs(searcher, trial_id, values, finished_at=None):
    """Tune's calls for a trial reporting ``values`` per epoch; the last one is the result it completes with."""
    for epoch, value in enumerate(values[:-1], 1):
        searcher.on_trial_result(trial_id, {"recall_at_1": value, "epoch": epoch, "finished": False})
    last = {"recall_at_1": values[-1], "epoch": len(values), "finished": len(values) == finished_at}
    return last


def test_states_values_and_intermediate_values_reach_the_database(tmp_path):
    s = _searcher(tmp_path)
    configs = {tid: s.suggest(tid) for tid in ("a", "b", "c", "d", "e")}
    assert all(c["loss"] == "aligned" and "temperature" in c for c in configs.values())
    s.on_trial_complete("a", _epochs(s, "a", [10.0, 30.0, 20.0], finished_at=3))   # ran to its end
    s.on_trial_complete("b", _epochs(s, "b", [12.0], finished_at=3))                # ASHA stopped it at epoch 1
    s.on_trial_complete("c", _epochs(s, "c", [8.0, 9.0], finished_at=3), error=True)   # diverged at epoch 3
    s.on_trial_complete("d", None, error=True)                                     # crashed before any epoch
    s.on_trial_result("e", {"recall_at_1": 5.0, "epoch": 1})                       # still running

    study = optuna.load_study(study_name="exp", storage=study_url(tmp_path / "optuna.db"))
    by_ray = {t.user_attrs[RAY_TRIAL_ATTR]: t for t in study.trials}
    assert by_ray["a"].state == State.COMPLETE and by_ray["a"].value == 30.0          # its best epoch
    assert by_ray["a"].intermediate_values == {1: 10.0, 2: 30.0, 3: 20.0}
    assert by_ray["b"].state == State.PRUNED and by_ray["b"].intermediate_values == {1: 12.0}
    assert by_ray["c"].state == State.PRUNED and by_ray["c"].intermediate_values == {1: 8.0, 2: 9.0}
    assert by_ray["d"].state == State.FAIL
    assert by_ray["e"].state == State.RUNNING and by_ray["e"].intermediate_values == {1: 5.0}
    assert by_ray["a"].params["temperature"] == configs["a"]["temperature"]


def test_the_searcher_pickles_without_a_connection_and_resumes_its_running_trials(tmp_path):
    s = _searcher(tmp_path)
    s.suggest("a")
    s.on_trial_result("a", {"recall_at_1": 5.0, "epoch": 1})
    path = tmp_path / "searcher.pkl"
    s.save(str(path))
    assert b"sqlalchemy" not in pickle.dumps(s)              # Tune pickles it into tuner.pkl

    again = _searcher(tmp_path)                               # a new driver after --resume
    again.restore(str(path))
    again.on_trial_result("a", {"recall_at_1": 5.0, "epoch": 1})     # a repeated epoch is not reported twice
    again.on_trial_result("a", {"recall_at_1": 7.0, "epoch": 2})
    again.on_trial_complete("a", {"recall_at_1": 6.0, "epoch": 3, "finished": True})
    again.on_trial_complete("a", {"recall_at_1": 6.0, "epoch": 3, "finished": True})   # told twice: no error
    (trial,) = open_study(study_url(tmp_path / "optuna.db"), "exp", create=False).trials
    assert trial.state == State.COMPLETE and trial.value == 7.0
    assert trial.intermediate_values == {1: 5.0, 2: 7.0, 3: 6.0}


def test_tpe_sees_pruned_trials_by_their_intermediate_values(tmp_path):
    """The point of PRUNED: TPE's below/above split ranks pruned trials by their last intermediate value
    (Ray's OptunaSearch told them COMPLETE with an early score as if it were final)."""
    s = StudySearcher("aligned_loss", study_url(tmp_path / "optuna.db"), "exp",
                      optuna.samplers.TPESampler(seed=0, n_startup_trials=2))
    for i in range(6):
        s.suggest(str(i))
        s.on_trial_complete(str(i), _epochs(s, str(i), [float(i)], finished_at=4))
    assert {t.state for t in s.study.trials} == {State.PRUNED}
    assert s.suggest("next")["loss"] == "aligned"                 # TPE samples from the pruned history


@pytest.mark.parametrize("mode", ["min"])
def test_only_maximisation_is_supported(tmp_path, mode):
    with pytest.raises(ValueError, match="maximizes"):
        StudySearcher("aligned_loss", study_url(tmp_path / "x.db"), "x", optuna.samplers.RandomSampler(), mode=mode)


def test_a_diverged_trial_is_pruned_at_zero_with_its_reason(tmp_path):
    s = _searcher(tmp_path)
    s.suggest("a")
    s.on_trial_result("a", {"recall_at_1": 9.0, "epoch": 1})
    # search/trainable.py reports divergence as one more epoch with R@1 0 and the reason
    s.on_trial_complete("a", {"recall_at_1": 0.0, "epoch": 2, "diverged": 1.0, "diverged_reason": "loss is nan"})
    (trial,) = s.study.trials
    assert trial.state == State.PRUNED and trial.intermediate_values == {1: 9.0, 2: 0.0}
    assert trial.user_attrs["diverged"] == "loss is nan"


def test_resume_refuses_a_lost_study_only_once_tune_had_saved(tmp_path):
    """A driver killed while it created the study leaves an empty optuna.db, or one without a study, and no Tune
    state: --resume starts the search again in place and creates the study (found by test_kill_points). Once Tune
    had saved its state, the same file means the trials' history is gone: refused in one line."""
    from search.study import StudyStorageError, check_resumable_study

    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    schema_only = tmp_path / "schema.db"
    optuna.storages.RDBStorage(study_url(schema_only))   # the tables, no study yet
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(bytes(range(256)) * 32)
    for path in (empty, schema_only, tmp_path / "missing.db"):
        check_resumable_study(study_url(path), search_began=lambda: False)
    with pytest.raises(StudyStorageError, match="is empty: the search's study"):
        check_resumable_study(study_url(empty), search_began=lambda: True)
    with pytest.raises(StudyStorageError, match="holds no study"):
        check_resumable_study(study_url(schema_only), search_began=lambda: True)
    for began in (False, True):
        with pytest.raises(StudyStorageError, match="is damaged"):
            check_resumable_study(study_url(garbage), search_began=lambda: began)
