"""Registry of named search spaces: a space is one decorated define-by-run function.

A space is ``fn(trial: optuna.Trial) -> dict | None``: it calls ``trial.suggest_*`` for the
hyper-parameters it searches (their names ARE flat ``TrainConfig`` keys) and returns the values it
fixes (also flat keys), e.g. ``{"loss": "aligned"}``.  This is the define-by-run convention of
Ray's ``OptunaSearch``, which builds a trial's config as ``{**suggested, **returned}``;
``sample_space`` reproduces that merge so a space can be exercised with a plain Optuna study.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

import optuna

SpaceFn = Callable[[optuna.Trial], Optional[dict]]

_SPACES: dict[str, SpaceFn] = {}


class SpaceError(ValueError):
    """An unknown or malformed search space."""


def register_space(fn: SpaceFn) -> SpaceFn:
    """Decorator: register ``fn`` under its function name (adding a space = one decorated function)."""
    name = fn.__name__
    if name in _SPACES and _SPACES[name] is not fn:
        raise SpaceError(f"search space {name!r} is registered twice ({_SPACES[name].__module__} and "
                         f"{fn.__module__}); give one of the functions another name.")
    if not (fn.__doc__ or "").strip():
        raise SpaceError(f"search space {name!r} ({fn.__module__}) has no docstring; document its "
                         "ranges and fixed values there (run_search.py --list-spaces prints it).")
    _SPACES[name] = fn
    return fn


def get_space(name: str) -> SpaceFn:
    try:
        return _SPACES[name]
    except KeyError:
        known = ", ".join(sorted(_SPACES)) or "(none)"
        raise SpaceError(f"unknown search space {name!r}. Known spaces: {known}. "
                         "List them with `python run_search.py --list-spaces`, or add one as a "
                         "@register_space function in spaces/.") from None


def list_spaces() -> dict[str, str]:
    """Space name -> its docstring (dedented), in registration order."""
    return {name: inspect.cleandoc(fn.__doc__ or "") for name, fn in _SPACES.items()}


def sample_space(space: SpaceFn, trial: optuna.Trial) -> dict[str, Any]:
    """One config sample as Ray's OptunaSearch would build it: suggested params, then fixed values."""
    fixed = space(trial)
    if fixed is not None and not isinstance(fixed, dict):
        raise SpaceError(f"search space {getattr(space, '__name__', space)!r} returned "
                         f"{type(fixed).__name__}; a space returns a dict of fixed values or None.")
    return {**trial.params, **(fixed or {})}
