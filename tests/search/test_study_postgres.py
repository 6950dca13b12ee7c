"""--optuna-storage: one PostgreSQL database holding a search's study, on a real server started here."""
from __future__ import annotations

import optuna
import pytest

from search import ArgsError, resolve_args, run

from .services import postgres_server


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as url:
        yield url


def test_a_search_writes_its_study_into_postgres(postgres, ray_local, tmp_path):
    flags = {"space": "aligned_loss", "smoke_test": True, "num_samples": 3, "max_epochs": 2, "max_concurrent": 1,
             "storage": str(tmp_path), "name": "pg-search", "ensemble_top_k": 0, "refit_top_k": 0, "wandb": False,
             "optuna_storage": postgres}
    outcome = run(resolve_args(flags))
    assert outcome.num_errors == 0 and not outcome.interrupted
    study = optuna.load_study(study_name="pg-search", storage=postgres)
    assert len(study.trials) == 3 and not (tmp_path / "pg-search" / "optuna.db").exists()
    for t in study.trials:
        assert t.state.is_finished() and t.params and t.intermediate_values
        assert t.user_attrs["ray_trial_id"]
    assert any(t.state == optuna.trial.TrialState.COMPLETE and t.value is not None for t in study.trials)
    # A second search under the same name would append to another search's history: refused up front.
    with pytest.raises(ArgsError, match="a study named 'pg-search' already exists"):
        run(resolve_args({**flags, "storage": str(tmp_path / "elsewhere")}))


def test_an_unreachable_database_is_one_error_before_any_trial(tmp_path):
    flags = {"smoke_test": True, "storage": str(tmp_path), "name": "nodb", "wandb": False,
             "optuna_storage": "postgresql+psycopg2://nobody@127.0.0.1:1/none"}
    with pytest.raises(ArgsError, match="cannot open the database"):
        run(resolve_args(flags))
