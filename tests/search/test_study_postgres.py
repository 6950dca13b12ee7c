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


def _refused(flags: dict, match: str, tmp_path) -> None:
    with pytest.raises(ArgsError, match=match):
        run(resolve_args({"smoke_test": True, "storage": str(tmp_path), "name": "nodb", "wandb": False, **flags}))


def test_a_database_server_that_never_answers_is_given_up_after_the_bounded_wait(tmp_path, monkeypatch):
    import socket
    import time

    import search.study

    monkeypatch.setattr(search.study, "DATABASE_TIMEOUT_S", 1.0)
    with socket.socket() as server:   # accepts connections (the kernel does), never answers PostgreSQL's startup
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        t0 = time.perf_counter()
        _refused({"optuna_storage": f"postgresql+psycopg2://u:secret@127.0.0.1:{server.getsockname()[1]}/db"},
                 r"--optuna-storage postgresql\+psycopg2://\*\*\*@127\.0\.0\.1:\d+/db: no answer within 1 s "
                 r"\(MOTION_SEARCH_DATABASE_TIMEOUT_S\)", tmp_path)
        assert time.perf_counter() - t0 < 10


def test_a_missing_database_on_a_real_server_is_named(postgres, tmp_path):
    _refused({"optuna_storage": postgres.rsplit("/", 1)[0] + "/no_such_db"},
             r'cannot open the database \(OperationalError: .*database "no_such_db" does not exist', tmp_path)


def test_an_unknown_role_on_a_real_server_is_named(postgres, tmp_path):
    _refused({"optuna_storage": postgres.replace("postgres@", "nobody:secret@", 1)},
             r'--optuna-storage postgresql\+psycopg2://\*\*\*@.*cannot open the database \(OperationalError: .*'
             r'role "nobody" does not exist', tmp_path)


def test_a_driver_that_is_not_installed_is_named_with_the_fix(tmp_path):
    import importlib.util

    if importlib.util.find_spec("pg8000") is not None:
        pytest.skip("pg8000 is installed here: this test needs a PostgreSQL driver that is not")
    _refused({"optuna_storage": "postgresql+pg8000://u@127.0.0.1:1/db"},
             r"its database driver, the module 'pg8000', is not installed\. Fix: pip install it, or name an "
             r"installed driver in the URL", tmp_path)
