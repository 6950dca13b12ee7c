"""Ray Tune / Optuna / W&B wiring around ``core.train.train_retrieval``.

    from search import main, run, resolve_args
    run(resolve_args({"space": "aligned_loss", "smoke_test": True}))   # -> SearchOutcome

Split by concern: ``args`` (flags -> frozen SearchArgs), ``trial_config`` (base config, sampler,
preflight), ``trainable`` (Tune adapter), ``tuner`` (searcher/scheduler/RunConfig),
``wandb_setup``, ``post`` (results/ensemble/summary), ``run`` (orchestration), ``cli``.
Importing this package does not import Ray; ``run`` does.
"""
from .args import ArgsError, SearchArgs, resolve_args
from .cli import main


def run(args: SearchArgs):
    from .run import run as _run

    return _run(args)


__all__ = ["ArgsError", "SearchArgs", "main", "resolve_args", "run"]
