"""The model registry: ``--model`` names to ``Attributor`` classes.

Why a registry: the CLI, the DAG and the server pick models by name, and a typo should get a suggestion,
not a traceback. ``ihc-api`` (the remote service's client) is not registered here: it needs a client
configuration, so the pipeline builds it itself.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from inspect import signature
from typing import Any

from attribution.errors import ConfigError
from attribution.models.base import Attributor
from attribution.models.names import check_model_name

_HOMES = {
    "ihc": ("ihc", "IHC"),
    "first-touch": ("first_touch", "FirstTouch"),
    "last-touch": ("last_touch", "LastTouch"),
    "last-non-direct": ("last_non_direct", "LastNonDirect"),
    "linear": ("linear", "Linear"),
    "time-decay": ("time_decay", "TimeDecay"),
    "position-based": ("position_based", "PositionBased"),
    "markov": ("markov", "Markov"),
    "shapley": ("shapley", "Shapley"),
}
"""Each registered name's module and class. Why not the classes: a run imports the one model it uses, not
every model's module (a test keeps each class's ``name`` equal to its key here)."""


def model_class(name: str) -> type[Attributor]:
    """The class registered as ``name`` (a ``KeyError`` for another name), its module imported now."""
    module, attribute = _HOMES[name]
    return getattr(import_module(f"attribution.models.{module}"), attribute)


MODELS: dict[str, type[Attributor]]
"""Every registered name and its class: each model's module is imported when ``MODELS`` is first used."""


def __getattr__(name: str) -> Any:
    if name != "MODELS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _every_model()


@cache
def _every_model() -> dict[str, type[Attributor]]:
    return {model: model_class(model) for model in _HOMES}


def get_model(name: str, **options: Any) -> Attributor:
    """Instantiate the model registered as ``name`` with its constructor ``options``, or explain which
    names (or options) exist."""
    check_model_name(name)
    if name not in _HOMES:
        raise ConfigError(f"Model '{name}' is built by the pipeline from its settings, not by get_model")
    model = model_class(name)
    accepted = signature(model).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"Model '{name}' has no option {', '.join(map(repr, unknown))}. "
            f"Its options: {', '.join(accepted) or 'none'}"
        )
    return model(**options)
