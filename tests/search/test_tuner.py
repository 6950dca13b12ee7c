"""search/tuner.py: the scheduler and sampler flags pick their baselines, and old search_args.json still resume."""
from __future__ import annotations

from search import resolve_args
from search.args import SearchArgs


def test_scheduler_and_sampler_flags_pick_the_baselines(tmp_path):
    import optuna
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from search.trial_config import make_sampler
    from search.tuner import build_scheduler

    default = resolve_args({"storage": str(tmp_path)})
    assert isinstance(build_scheduler(default), ASHAScheduler)
    assert isinstance(make_sampler(default), optuna.samplers.TPESampler)
    base = resolve_args({"storage": str(tmp_path), "scheduler": "fifo", "sampler": "random"})
    assert isinstance(build_scheduler(base), FIFOScheduler)
    assert isinstance(make_sampler(base), optuna.samplers.RandomSampler)
    from ray.tune.schedulers import HyperBandScheduler
    from ray.tune.search import ConcurrencyLimiter

    from search.study import StudySearcher
    from search.tuner import build_search_alg

    hyperband = resolve_args({"storage": str(tmp_path), "scheduler": "hyperband"})
    assert isinstance(build_scheduler(hyperband), HyperBandScheduler)
    # HyperBand pauses trials at its rungs: a concurrency limit would count them and never fill a bracket
    assert isinstance(build_search_alg(hyperband), StudySearcher)
    assert isinstance(build_search_alg(default), ConcurrencyLimiter)
    pinned = resolve_args({"storage": str(tmp_path), "sampler": "random", "overrides": ["lr=0.001"]})
    assert isinstance(make_sampler(pinned), optuna.samplers.PartialFixedSampler)
    # search_args.json written before the flags existed still resumes (as ASHA + TPE)
    old = {k: v for k, v in default.to_json().items() if k not in ("scheduler", "sampler")}
    assert (SearchArgs.from_json(old).scheduler, SearchArgs.from_json(old).sampler) == ("asha", "tpe")
