"""Read what a Ray Tune search wrote (from disk, no Ray cluster): per-trial/per-epoch Parquet, leaderboard, plots.

    from results import write_results, load_trials
    res = write_results("~/ray_results/my_search")   # trials.parquet, epochs.parquet, plots/*.png
    res.best_trial_id, res.best_config, res.best_checkpoint
    top5 = load_trials("~/ray_results/my_search").slice(0, 5)   # rows are ranked by best recall_at_1

CLI: python -m results <experiment_dir> [--top N]
"""
from results.errors import ResultsError
from results.experiment_dir import ExperimentDir, TrialRecord, read_experiment
from results.leaderboard import format_leaderboard
from results.report import ExperimentResults, load_trials, write_results
from results.tables import PRIMARY_METRIC

__all__ = ["ExperimentDir", "ExperimentResults", "PRIMARY_METRIC", "ResultsError", "TrialRecord",
           "format_leaderboard", "load_trials", "read_experiment", "write_results"]
