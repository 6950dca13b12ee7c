"""What every trial trains with: the base config (defaults + flags + --set) and the seeded sampler.

A trial's config is ``{**base, **space sample}``: Tune holds only the sample (its state would repeat the
constants for every trial); the trainable and the trial records (trial.json: W&B and the results tables read it)
put the base config under it.
Keys fixed with ``--set`` that the space also samples are pinned inside Optuna itself
(``PartialFixedSampler``), so the study's history matches what actually ran.
"""
from __future__ import annotations

import hashlib
import warnings
from typing import Any

import optuna

from core.config import ConfigError, TrainConfig, default_flat
from spaces import SpaceError, get_space, sample_space

from .args import ArgsError, SearchArgs

# A --set value outside the space's range is pinned anyway (e.g. --smoke-test's hidden_dim=64);
# preflight prints that once, instead of Optuna warning at every trial.
OUT_OF_RANGE_WARNING = r"Fixed parameter .* is out of range"
warnings.filterwarnings("ignore", message=OUT_OF_RANGE_WARNING, category=UserWarning)

METRIC = "recall_at_1"
MODE = "max"
PREFLIGHT_SAMPLES = 8


def base_config(args: SearchArgs) -> dict[str, Any]:
    flat = default_flat()
    flat["epochs"] = args.max_epochs
    flat["seed"] = args.seed
    # One BLAS thread per reserved CPU: more would oversubscribe the cores of concurrent trials.
    flat["num_threads"] = max(1, int(args.cpus_per_trial))
    if args.data is not None:
        flat["data"] = args.data
    if args.format is not None:
        flat["format"] = args.format
    flat.update(args.fixed_overrides)
    try:
        return TrainConfig.from_flat(flat).to_flat()
    except ConfigError as e:
        raise ArgsError(f"base config (from --data/--format/--set/--max-epochs): {e}") from None


class TrialSeededRandomSampler(optuna.samplers.RandomSampler):
    """Uniform random sampling in which trial n's params depend only on (seed, n, param name), not on how many
    draws came before: trials that run concurrently, or a search killed and resumed (whose sampler state is
    restored from an earlier save), still get exactly the params an uninterrupted run gives them."""

    def __init__(self, seed: int = 0):
        super().__init__(seed=seed)
        self.seed = seed

    def sample_independent(self, study, trial, param_name, param_distribution):
        key = int.from_bytes(hashlib.blake2b(f"{self.seed}\0{trial.number}\0{param_name}".encode(),
                                             digest_size=4).digest(), "little")
        return optuna.samplers.RandomSampler(seed=key).sample_independent(study, trial, param_name, param_distribution)


def make_sampler(args: SearchArgs) -> optuna.samplers.BaseSampler:
    fixed = args.fixed_overrides
    # `group` (what models conditional params jointly) and PartialFixedSampler are flagged
    # experimental by Optuna; both are stable in practice.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if args.sampler == "random":
            base = TrialSeededRandomSampler(seed=args.seed)
        else:
            # TPE needs some random points before it can model the space; with small budgets it must
            # start modelling early or it never does.
            startup = max(3, min(10, args.num_samples // 3))
            base = optuna.samplers.TPESampler(multivariate=True, group=True, seed=args.seed,
                                              n_startup_trials=startup)
        return optuna.samplers.PartialFixedSampler(fixed, base) if fixed else base


def preflight(args: SearchArgs) -> tuple[dict[str, Any], list[str]]:
    """Validate the base config and a few samples of the space BEFORE Ray starts.

    Returns the base config and the keys the space samples (progress-table columns).
    """
    base = base_config(args)
    space = get_space(args.space)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(args))
    keys: dict[str, None] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", message=OUT_OF_RANGE_WARNING, category=UserWarning)
        for _ in range(PREFLIGHT_SAMPLES):
            trial = study.ask()
            try:
                sample = sample_space(space, trial)
                TrainConfig.from_flat({**base, **sample})
            except (ConfigError, SpaceError, ValueError) as e:
                hint = (" A --set key that the space samples must fit it (a categorical's value "
                        "must be one of its choices)." if args.overrides else "")
                raise ArgsError(f"--space {args.space}: a sample does not make a valid config "
                                f"with the base config: {e}.{hint}") from None
            keys.update(dict.fromkeys(trial.params))
            study.tell(trial, 0.0)
    for message in sorted({str(w.message) for w in caught if w.category is UserWarning}):
        print(f"note: {message} (pinned by --set/--smoke-test; the search uses the fixed value)")
    return base, list(keys)
