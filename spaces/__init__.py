"""Named Optuna define-by-run search spaces (pure functions: no Ray import).

    from spaces import get_space, list_spaces, sample_space
    space = get_space("aligned_loss")      # fn(optuna.Trial) -> dict of fixed values
    list_spaces()                          # {name: docstring}

Adding a space = adding one ``@register_space`` function (see ``definitions.py``).
"""
from .registry import SpaceError, SpaceFn, get_space, list_spaces, register_space, sample_space
from . import definitions as _definitions  # noqa: F401  (registers the built-in spaces)

__all__ = ["SpaceError", "SpaceFn", "get_space", "list_spaces", "register_space", "sample_space"]
