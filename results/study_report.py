"""Which hyperparameters mattered: importances and a parallel-coordinates view, read from a search's Optuna study.

    study = load_search_study(experiment_dir)          # <exp>/optuna.db, or the --optuna-storage URL it used
    report = study_report(study, out_dir)              # importances (printed, JSON) + two PNG plots

Every trial that reported at least one epoch counts, valued by the best val R@1 it reached (the project's
ranking rule, ``results.tables.trial_rank_key``): with early stopping most trials are PRUNED, and Optuna's own
importance and plot functions read COMPLETE trials only, which would leave a handful.  So the study is viewed
through an in-memory copy in which each such trial is COMPLETE with that value.  Importance is PED-ANOVA
(Watanabe et al. 2023; needs no scikit-learn): how much each parameter's distribution among the top 10 % of
trials differs from all trials.  Pruned trials stopped early, so their best R@1 is an early one: the ranking
is of "what reached a high val R@1 within its budget", which is what the search selected on too.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from core.atomic import atomic_write_text
from results.errors import ResultsError
from results.plots import save_figure

STUDY_FILE = "optuna.db"
IMPORTANCE_FILE = "param_importances.json"
IMPORTANCE_PLOT, PARALLEL_PLOT = "param_importances.png", "parallel_coordinates.png"
MIN_TRIALS = 4      # PED-ANOVA compares the top 10 % (at least 2 trials) with all trials
FEW_TRIALS = 20     # below this the top 10 % is 2 trials: the ranking is a hint


@dataclass
class StudyReport:
    study_name: str
    storage: str
    trials: int                                   # trials with at least one reported epoch
    states: dict[str, int]                        # COMPLETE / PRUNED / FAIL / RUNNING counts
    importances: dict[str, float] = field(default_factory=dict)   # parameter -> importance, largest first
    note: str = ""
    plots: list[Path] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"Optuna study {self.study_name!r} ({self.storage}): "
                 + ", ".join(f"{n} {s}" for s, n in sorted(self.states.items()))]
        if self.importances:
            lines.append(f"parameter importance (PED-ANOVA, best val R@1 each of {self.trials} trials reached):")
            width = max(len(k) for k in self.importances)
            lines += [f"  {k:<{width}}  {v:6.3f}  {'#' * round(40 * v)}" for k, v in self.importances.items()]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def study_url(path: Path | str) -> str:
    """An SQLite URL for a local study file (absolute, so it means the same from any working directory)."""
    return f"sqlite:///{Path(path).expanduser().resolve()}"


def study_storage(experiment_dir: Path | str) -> tuple[str, str]:
    """(storage URL, study name) a search in ``experiment_dir`` used (its search_args.json says; default SQLite)."""
    exp = Path(experiment_dir)
    stored = {}
    args_file = exp / "search_args.json"
    if args_file.is_file():
        try:
            stored = json.loads(args_file.read_text())
        except (OSError, json.JSONDecodeError):
            stored = {}
    if not isinstance(stored, dict):   # a list or null: damaged; the defaults below are what a search writes
        stored = {}
    name = stored.get("name") or exp.name
    url = stored.get("optuna_storage") or study_url(exp / STUDY_FILE)
    return url, name


class StudyGone(ResultsError):
    """The experiment's study database is there but holds nothing (said, unlike an experiment that never had one)."""


def load_search_study(experiment_dir: Path | str) -> optuna.Study:
    url, name = study_storage(experiment_dir)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        raise ResultsError(f"no Optuna study here ({url[len('sqlite:///'):]} does not exist).",
                           where=experiment_dir, fix="searches write it since the study moved into a database; "
                                                     "older experiments keep theirs in Tune's searcher state only.")
    if url.startswith("sqlite:///") and Path(url[len("sqlite:///"):]).stat().st_size == 0:
        # opening it would write an empty schema into the user's file (results/ only reads)
        raise StudyGone(f"{url[len('sqlite:///'):]} is empty: the study is gone.", where=experiment_dir,
                           fix="restore optuna.db from a copy; the trials' own records are read without it.")
    try:
        return optuna.load_study(study_name=name, storage=url)
    except KeyError:
        raise ResultsError(f"the database {url} has no study named {name!r}.", where=experiment_dir) from None


def best_reached_view(study: optuna.Study) -> optuna.Study:
    """An in-memory study: every trial with >= 1 reported epoch, COMPLETE, valued by its best report."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)   # not Optuna's "A new study created in memory" line
    try:
        view = optuna.create_study(direction="maximize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    for t in study.get_trials(deepcopy=False):
        values = [v for v in t.intermediate_values.values() if math.isfinite(v)]
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None:
            values.append(t.value)
        if not values or not t.params:
            continue
        view.add_trial(optuna.trial.create_trial(params=t.params, distributions=t.distributions, value=max(values),
                                                 user_attrs={"number": t.number, "state": t.state.name}))
    return view


def importances(view: optuna.Study) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        raw = optuna.importance.get_param_importances(view, evaluator=evaluator)
    return {k: float(v) for k, v in raw.items()}


def plot_importances(values: dict[str, float], path: Path, title: str) -> Path:
    from matplotlib.figure import Figure

    names = list(values)[::-1]
    fig = Figure(figsize=(7, 0.35 * len(names) + 1.4))
    ax = fig.add_subplot()
    ax.barh(names, [values[n] for n in names], color="#4C72B0")
    ax.set_xlabel("importance (PED-ANOVA, sums to 1)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _axis_scale(view: optuna.Study, name: str, present: list):
    """(value -> [0, 1], (low label, high label)) for one parameter axis (log axes for log distributions)."""
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in present):
        a, b = min(present), max(present)
        dist = view.trials[0].distributions.get(name)
        log = isinstance(dist, optuna.distributions.FloatDistribution) and dist.log and a > 0
        if b <= a:
            return (lambda v: 0.5), (f"{a:.3g}", f"{b:.3g}")
        if log:
            return (lambda v: math.log(v / a) / math.log(b / a)), (f"{a:.3g}", f"{b:.3g}")
        return (lambda v: (v - a) / (b - a)), (f"{a:.3g}", f"{b:.3g}")
    choices = sorted({str(c) for c in present})
    return (lambda v: choices.index(str(v)) / max(1, len(choices) - 1)), (choices[0], choices[-1])


def plot_parallel(view: optuna.Study, params: list[str], path: Path, title: str) -> Path:
    """One line per trial across the (up to 8 most important) parameters, coloured by best val R@1; a trial
    without a parameter (a conditional one, e.g. ssm_state for a transformer) skips that axis."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    axes, trials = params[:8], sorted(view.trials, key=lambda t: t.value)   # best drawn last, on top
    lo, hi = trials[0].value, trials[-1].value
    scales, labels = [], []
    for name in axes:
        scale, label = _axis_scale(view, name, [t.params[name] for t in trials if name in t.params])
        scales.append(scale)
        labels.append(f"{name}\n[{label[0]} .. {label[1]}]")
    fig = Figure(figsize=(1.4 * len(axes) + 2.5, 4.2))
    ax = fig.add_subplot()
    cmap, norm = colormaps["viridis"], Normalize(lo, hi if hi > lo else lo + 1)
    for t in trials:
        points = [(j, scales[j](t.params[n])) for j, n in enumerate(axes) if n in t.params]
        ax.plot([x for x, _ in points], [y for _, y in points], color=cmap(norm(t.value)), alpha=0.7, lw=1.2)
    ax.set_xticks(range(len(axes)), labels, fontsize=7)
    ax.set_yticks([0, 1], ["low", "high"])
    ax.set_title(title, fontsize=10)
    fig.colorbar(ScalarMappable(cmap=cmap, norm=norm), ax=ax, label="best val R@1 reached")
    fig.tight_layout()
    return save_figure(fig, path)


def study_report(study: optuna.Study, out_dir: Path | None = None, storage: str = "") -> StudyReport:
    """Importances (and, with ``out_dir``, param_importances.json + the two plots) of a search's study."""
    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name] = states.get(t.state.name, 0) + 1
    view = best_reached_view(study)
    report = StudyReport(study.study_name, storage, len(view.trials), states)
    if len(view.trials) < MIN_TRIALS:
        report.note = (f"parameter importance needs >= {MIN_TRIALS} trials with a reported epoch; "
                       f"this study has {len(view.trials)}.")
        return report
    report.importances = importances(view)
    if len(view.trials) < FEW_TRIALS:
        report.note = (f"note: {len(view.trials)} trials are few for importances (their top 10 % is "
                       f"{max(2, len(view.trials) // 10)} trials): read the ranking as a hint, not a verdict.")
    if out_dir is not None and report.importances:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        title = f"{study.study_name}: {len(view.trials)} trials"
        report.plots.append(plot_importances(report.importances, out_dir / IMPORTANCE_PLOT, title))
        report.plots.append(plot_parallel(view, list(report.importances), out_dir / PARALLEL_PLOT, title))
        atomic_write_text(out_dir / IMPORTANCE_FILE, json.dumps(
            {"study": study.study_name, "storage": storage, "trials": len(view.trials), "states": states,
             "method": "PED-ANOVA over the best val R@1 each trial reached", "importances": report.importances},
            indent=1))
    return report
