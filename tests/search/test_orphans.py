"""A driver killed between a trial's start and Tune's next state save: the study holds trials the restored search
does not know. The searcher hands them out again, with the same params, before asking anything new, so a resumed
search runs the same trials as an uninterrupted one (tests/faults/test_kill_points.py: the whole path)."""
from __future__ import annotations

import pickle

import optuna

from results.trial_record import CONTINUED, last_of_chain
from search.study import CONTINUES_KEY, STOPPED_KEY, StudySearcher, study_url
from search.trial_config import TrialSeededRandomSampler


def searcher(tmp_path) -> StudySearcher:
    return StudySearcher("aligned_loss", study_url(tmp_path / "optuna.db"), "s", TrialSeededRandomSampler(seed=0))


def test_trials_asked_after_the_last_save_are_handed_out_again(tmp_path):
    first = searcher(tmp_path)
    a = first.suggest("a")
    saved = tmp_path / "searcher.pkl"
    first.save(str(saved))                      # Tune saved its state here...
    b = first.suggest("b")                      # ...then the driver asked b and c, and was killed
    c = first.suggest("c")
    first.on_trial_complete("b", {"recall_at_1": 10.0, "epoch": 1, "finished": True})   # b had even ended

    resumed = searcher(tmp_path)
    resumed.restore(str(saved))
    again_b, again_c, new = resumed.suggest("b2"), resumed.suggest("c2"), resumed.suggest("d")
    assert again_b == {**b, CONTINUES_KEY: "b", STOPPED_KEY: True}      # same params; it had ended
    assert again_c == {**c, CONTINUES_KEY: "c", STOPPED_KEY: False}
    assert CONTINUES_KEY not in new and new != a
    study = optuna.load_study(study_name="s", storage=study_url(tmp_path / "optuna.db"))
    assert len(study.trials) == 4                                       # nothing asked twice
    # an uninterrupted search draws the same params for trial number 3 (random: a function of the number)
    (tmp_path / "other").mkdir()
    fresh = searcher(tmp_path / "other")
    assert [fresh.suggest(t) for t in "abcd"][3] == new


def test_a_trial_killed_while_its_params_were_drawn_gets_the_rest_drawn(tmp_path):
    first = searcher(tmp_path)
    saved = tmp_path / "searcher.pkl"
    first.save(str(saved))
    trial = first.study.ask()                   # asked; the driver died before drawing its params
    trial.set_user_attr("ray_trial_id", "x")
    trial.suggest_float("lr", 1e-5, 1e-3, log=True)

    resumed = searcher(tmp_path)
    resumed.restore(str(saved))
    config = resumed.suggest("x2")
    assert config[CONTINUES_KEY] == "x" and config["lr"] == trial.params["lr"]
    assert {"temperature", "weight_decay", "batch_size"} <= set(config)


def test_a_continued_trial_is_followed_to_the_trial_that_holds_it_now():
    records = {"a": {"status": CONTINUED, "continued_as": "b"}, "b": {"status": CONTINUED, "continued_as": "c"},
               "c": {"status": "TERMINATED"}, "x": {"status": CONTINUED, "continued_as": "me"}}
    assert last_of_chain("a", records.get) == "c"
    assert last_of_chain("x", records.get, me="me") == "x"      # never to the trial asking
    assert last_of_chain("zz", records.get) == "zz"
