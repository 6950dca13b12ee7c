"""The Optuna study of a search: a Ray Tune searcher of our own over Optuna's ask/tell API and a real database.

Why not Ray's ``OptunaSearch``: it hard-codes Optuna's ``NopPruner`` and tells the study that a trial ASHA
stopped after 1 epoch is COMPLETE with its 1-epoch score, so TPE models early scores as final results.  Here
the study learns what early stopping did:

* every epoch's val R@1 is an intermediate value, ``trial.report(value, step=epoch)`` (the dashboard's
  intermediate-values plot; TPE ranks pruned trials by them);
* a trial that trained to its end (max epochs, or its own ``patience``) is COMPLETE with its best val R@1
  (the project's one ranking rule, ``results.tables.trial_rank_key``);
* a trial the scheduler stopped is PRUNED (its value is its last intermediate value, as Optuna defines);
* a trial whose loss diverged (NaN/inf) is PRUNED with R@1 0 as its last intermediate value
  (``search/trainable.py`` reports it so; user attr ``diverged`` holds the reason): a config that diverges
  is a bad region and TPE should rank it last, not ignore it;
* a trial that crashed is PRUNED when it reported at least one epoch (what it reached is real information)
  and FAIL when it reported none (nothing to learn from; Optuna ignores FAIL trials).

The study lives in a database (SQLite ``<experiment>/optuna.db`` by default, or ``--optuna-storage URL``),
so ``optuna.load_study(study_name=NAME, storage=URL)`` and ``optuna-dashboard URL`` show every trial with
its params, state, intermediate values and value while the search runs and after.  The searcher itself is
pickled into Tune's state (``tuner.pkl``, the searcher checkpoint): it holds only the URL, the sampler
and the Ray-trial -> Optuna-trial map, never an open connection, and ``--resume`` reconnects to the study.
"""
from __future__ import annotations

import logging
import math
import os
import pickle
import warnings
from pathlib import Path
from typing import Any, Callable

import optuna
from ray.tune.search import Searcher

from results.study_report import STUDY_FILE, study_url   # the file the search writes is the one results reads
from spaces import get_space, sample_space

from .continuation import CONTINUES_KEY, STOPPED_KEY
from .reach import answer_within, hide_credentials

log = logging.getLogger(__name__)
RAY_TRIAL_ATTR = "ray_trial_id"
FINISHED_KEY = "finished"        # reported by core.train: True on the epoch after which the trainer stops itself


def search_study_storage(args) -> str:
    """The study's database URL for a search: --optuna-storage, else ``<experiment>/optuna.db``; with cloud
    storage the SQLite file stays beside the driver (``<cache>/optuna/``) and is uploaded with the experiment."""
    if getattr(args, "optuna_storage", None):
        return args.optuna_storage
    if args.is_local_storage:
        return study_url(f"{args.experiment_path}/{STUDY_FILE}")
    return study_url(str(local_study_file(args.experiment_path)))


def local_study_file(experiment_uri: str):
    """Where the driver keeps the SQLite study of an experiment on cloud storage (one file per experiment URI)."""
    import hashlib

    from core.data.cache import default_cache_dir

    key = hashlib.blake2b(experiment_uri.encode(), digest_size=8).hexdigest()
    folder = default_cache_dir() / "optuna"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{experiment_uri.rstrip('/').rsplit('/', 1)[-1]}-{key}.db"


# Seconds to wait for the study's database server before the search is refused: a driver connecting to a host
# that never answers (a firewall dropping packets) waits for minutes.
DATABASE_TIMEOUT_S = float(os.environ.get("MOTION_SEARCH_DATABASE_TIMEOUT_S", "30"))


def study_exists(storage: str, name: str, timeout: float | None = None) -> bool:
    """Whether the database at ``storage`` holds a study ``name``: the search's first question to its database,
    so one that cannot answer (down, unreachable, no driver, bad credentials) is named here, before Ray starts."""
    if storage.startswith("sqlite:///") and not Path(storage[len("sqlite:///"):]).is_file():
        return False        # do not create an empty database file just to look
    timeout = DATABASE_TIMEOUT_S if timeout is None else timeout
    fix = ("Fix: check the URL, that the server runs and this machine reaches it, the credentials, and that its "
           "driver is installed (PostgreSQL: pip install psycopg2-binary).")
    try:
        names = answer_within(lambda: optuna.study.get_all_study_names(storage=storage), timeout)
    except TimeoutError:
        raise StudyStorageError(f"--optuna-storage {hide_credentials(storage)}: no answer within {timeout:g} s "
                                f"(MOTION_SEARCH_DATABASE_TIMEOUT_S). {fix}") from None
    except ImportError as exc:  # optuna names no module; its cause does (postgresql:// means psycopg 3 to SQLAlchemy 2.1)
        module = getattr(exc.__cause__, "name", None) or "?"
        raise StudyStorageError(f"--optuna-storage {hide_credentials(storage)}: its database driver, the module "
                                f"{module!r}, is not installed. Fix: pip install it, or name an installed driver in "
                                f"the URL (e.g. postgresql+psycopg2://user@host/db with psycopg2-binary).") from None
    except Exception as exc:   # an unreachable server, bad credentials, a missing driver: say which, up front
        said = " ".join(str(exc).split("(Background on this error")[0].split()) or type(exc).__name__
        raise StudyStorageError(f"--optuna-storage {hide_credentials(storage)}: cannot open the database "
                                f"({type(exc).__name__}: {hide_credentials(said)[:300]}). {fix}") from None
    return name in names


# The database a resumed search continues in: the one its flags and folder name now. Tune's state pickles the
# searcher with the URL of the folder it was started in, so an experiment moved or copied elsewhere would otherwise
# go on writing into the original's optuna.db (set by check_study before Tune restores the searcher).
RESUMED_STORAGE: str | None = None


def check_resumable_study(url: str, search_began: Callable[[], bool]) -> None:
    """--resume: the study's SQLite file must be a readable database holding a study (a cut, emptied or overwritten
    optuna.db ended the resumed search with a traceback from inside Tune, after Ray had started).
    ``search_began()``: Tune had saved its state (search/ray_internals.can_resume; asked only when the file holds no
    study, since fit_search asks it again and on cloud storage it lists the folder). Before that, an empty optuna.db
    or one without a study is what a driver killed while it created the study leaves (found by
    tests/faults/test_kill_points.py): nothing was recorded yet, and the search, started again in place, creates it."""
    if not url.startswith("sqlite:///"):
        return   # a server database: study_exists' checks apply when the searcher opens it
    path = Path(url[len("sqlite:///"):])
    fix = ("Fix: restore optuna.db from a copy, or start a new --name (the finished trials stay readable with "
           "python -m results).")
    if not path.is_file():
        return   # the driver died before the study was created: the resumed search creates it
    if path.stat().st_size == 0:
        if not search_began():
            return   # SQLite takes an empty file as an empty database
        raise StudyStorageError(f"--resume: {path} is empty: the search's study (its trials' history) is gone. {fix}")
    try:
        names = answer_within(lambda: optuna.study.get_all_study_names(storage=url), DATABASE_TIMEOUT_S)
    except Exception as exc:   # sqlite3.DatabaseError: "file is not a database", "database disk image is malformed"
        said = " ".join(str(exc).split("(Background on this error")[0].split()) or type(exc).__name__
        raise StudyStorageError(f"--resume: {path} is damaged ({type(exc).__name__}: {said[:200]}). {fix}") from None
    if not names and search_began():
        raise StudyStorageError(f"--resume: {path} holds no study: the search's trial history is gone. {fix}")


class StudyStorageError(ValueError):
    """The study's database cannot be used (named in one line before the search starts)."""


def check_study(args) -> None:
    """A new search must not append to another search's study; --resume needs its study (downloaded first
    when the experiment is on cloud storage)."""
    global RESUMED_STORAGE
    url = search_study_storage(args)
    RESUMED_STORAGE = None   # a searcher built (or copied) for a new search keeps its own URL
    if args.resume:
        if not args.optuna_storage and not args.is_local_storage:
            download_study(args)
        from .ray_internals import can_resume

        check_resumable_study(url, search_began=lambda: can_resume(args.experiment_path))
        RESUMED_STORAGE = url
        return
    if study_exists(url, args.name):
        raise StudyStorageError(f"--optuna-storage {hide_credentials(url)}: a study named {args.name!r} already exists there (another "
                                f"search's history). Fix: continue that search with --resume, or choose another "
                                f"--name.")


def _remote_study(args) -> str:
    from .storage import join

    return join(args.experiment_path, STUDY_FILE)


def upload_study(args) -> None:
    """Cloud storage: copy the driver's SQLite study next to the experiment (so it travels with it)."""
    if args.optuna_storage or args.is_local_storage:
        return
    import pyarrow.fs

    local = local_study_file(args.experiment_path)
    if local.is_file():
        fs, inner = pyarrow.fs.FileSystem.from_uri(_remote_study(args))
        pyarrow.fs.copy_files(str(local), inner, destination_filesystem=fs)


def download_study(args) -> None:
    """--resume on cloud storage from another machine: fetch the experiment's study unless a local copy exists."""
    import pyarrow.fs

    local = local_study_file(args.experiment_path)
    if local.is_file():
        return
    fs, inner = pyarrow.fs.FileSystem.from_uri(_remote_study(args))
    if fs.get_file_info(inner).type == pyarrow.fs.FileType.File:
        pyarrow.fs.copy_files(inner, str(local), source_filesystem=fs)


def open_study(storage: str, name: str, *, sampler: optuna.samplers.BaseSampler | None = None,
               create: bool = True) -> optuna.Study:
    """The search's study (direction maximize: val R@1); created when ``create`` and absent."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if create:
            return optuna.create_study(storage=storage, study_name=name, direction="maximize", sampler=sampler,
                                       load_if_exists=True)
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler)


class StudySearcher(Searcher):
    """Suggests configs from the named space with Optuna ask/tell and tells the study what happened."""

    def __init__(self, space: str, storage: str, study_name: str, sampler: optuna.samplers.BaseSampler,
                 metric: str = "recall_at_1", mode: str = "max"):
        if mode != "max":
            raise ValueError("StudySearcher maximizes (val R@1); mode must be 'max'.")
        super().__init__(metric=metric, mode=mode)
        self.space, self.storage, self.study_name, self.sampler = space, storage, study_name, sampler
        self._numbers: dict[str, int] = {}          # Ray trial id -> Optuna trial number
        self._best: dict[str, float] = {}           # Ray trial id -> best reported value
        self._steps: dict[str, int] = {}            # Ray trial id -> last reported epoch
        self._study: optuna.Study | None = None
        self._handles: dict[str, optuna.Trial] = {}
        self._orphans: list[int] | None = None      # asked trials no Ray trial of this run holds (None: not looked)

    # ------------------------------------------------------------------ pickling: no open connection
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_study"], state["_handles"], state["_orphans"] = None, {}, None
        return state

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            self._study = open_study(self.storage, self.study_name, sampler=self.sampler)
        return self._study

    def _handle(self, trial_id: str) -> optuna.Trial | None:
        """The live Optuna trial of a Ray trial (rebuilt from the database after --resume)."""
        if trial_id in self._handles:
            return self._handles[trial_id]
        number = self._numbers.get(trial_id)
        if number is None:
            return None
        frozen = self.study.trials[number]          # trials are listed in number order
        if frozen.state.is_finished():
            return None
        # Optuna has no public "trial by number" handle; Trial(study, storage id) is what study.ask() returns.
        handle = optuna.trial.Trial(self.study, frozen._trial_id)
        self._handles[trial_id] = handle
        return handle

    # ------------------------------------------------------------------ Tune's searcher interface
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        return True   # metric and mode are ours (given at construction); the param_space constants are merged by Tune

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        orphan = self._next_orphan()
        if orphan is not None:
            return self._continue(trial_id, orphan)
        trial = self.study.ask()
        trial.set_user_attr(RAY_TRIAL_ATTR, trial_id)
        sample = sample_space(get_space(self.space), trial)
        self._numbers[trial_id] = trial.number
        self._handles[trial_id] = trial
        return sample

    def _next_orphan(self) -> int | None:
        """The next study trial (in number order) that no Ray trial of this run holds: asked by a driver session
        that was killed before Tune saved a state listing it. It is handed out again before anything new is
        asked, so a killed and resumed search runs the same trials as an uninterrupted one."""
        if self._orphans is None:
            known = set(self._numbers.values())
            # FAIL ones (a crash before any epoch) are left: Optuna ignores them, the search asks anew
            self._orphans = [t.number for t in self.study.get_trials(deepcopy=False)
                             if t.number not in known and t.state != optuna.trial.TrialState.FAIL]
            if self._orphans:
                log.warning("search: %d trial(s) of the study were started after the last saved search state "
                            "(a killed driver); they continue as new Ray trials: %s", len(self._orphans),
                            self._orphans)
        return self._orphans.pop(0) if self._orphans else None

    def _continue(self, trial_id: str, number: int) -> dict[str, Any]:
        """A Ray trial for an orphaned study trial: its params again, and which trial folder it takes over."""
        frozen = self.study.trials[number]
        previous = frozen.user_attrs.get(RAY_TRIAL_ATTR)
        self._numbers[trial_id] = number
        if frozen.state.is_finished():
            sample = sample_space(get_space(self.space), optuna.trial.FixedTrial(frozen.params, number=number))
        else:
            # The live trial: params it has return as they were; any the killed driver had not drawn yet (killed
            # mid-sampling) are drawn now, by the same sampler.
            handle = optuna.trial.Trial(self.study, frozen._trial_id)   # as in _handle
            handle.set_user_attr(RAY_TRIAL_ATTR, trial_id)
            self._handles[trial_id] = handle
            sample = sample_space(get_space(self.space), handle)
        return {**sample, CONTINUES_KEY: previous, STOPPED_KEY: frozen.state.is_finished()} if previous else sample

    def _report(self, trial_id: str, result: dict) -> None:
        value, step = result.get(self.metric), result.get("epoch", result.get("training_iteration"))
        if not isinstance(value, (int, float)) or not math.isfinite(value) or not isinstance(step, (int, float)):
            return
        step = int(step)
        if step <= self._steps.get(trial_id, 0):
            return                                    # a resumed trial repeats no epoch; a duplicate result
        handle = self._handle(trial_id)
        if handle is None:
            return
        handle.report(float(value), step=step)
        if result.get("diverged"):
            handle.set_user_attr("diverged", str(result.get("diverged_reason", "loss became NaN/inf")))
        self._steps[trial_id] = step
        self._best[trial_id] = max(self._best.get(trial_id, -math.inf), float(value))

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._report(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if result:
            self._report(trial_id, result)           # the result a scheduler STOP came with is not sent to on_trial_result
        number = self._numbers.get(trial_id)
        if number is None:
            return
        reported = trial_id in self._best
        if error:
            state = optuna.trial.TrialState.PRUNED if reported else optuna.trial.TrialState.FAIL
        elif result and result.get(FINISHED_KEY) and reported:
            state = optuna.trial.TrialState.COMPLETE
        else:
            state = optuna.trial.TrialState.PRUNED if reported else optuna.trial.TrialState.FAIL
        values = self._best[trial_id] if state == optuna.trial.TrialState.COMPLETE else None
        if self.study.trials[number].state.is_finished():
            return                                    # told before an interruption; --resume re-sends it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # PRUNED without a value: Optuna takes the last report
            self.study.tell(number, state=state, values=values)
        self._handles.pop(trial_id, None)

    # ------------------------------------------------------------------ Tune's searcher checkpoint
    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__getstate__(), f)

    def __setstate__(self, state: dict) -> None:   # tuner.pkl: the database is the one this driver resumes in
        self.__dict__.update(state)
        self.storage = RESUMED_STORAGE or self.storage

    def restore(self, checkpoint_path: str) -> None:
        """Reload the map. Study trials the saved map does not know were asked after Tune last saved its state
        (a killed driver): ``suggest`` hands them out again (``_next_orphan``)."""
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
        self.storage = RESUMED_STORAGE or self.storage
        self._orphans = None
