"""The model registry: ``--model`` names to ``Attributor`` classes.

Why a registry: the CLI, the DAG and the server pick models by name, and a typo should get a suggestion,
not a traceback. ``ihc-api`` (the remote service's client) is not registered here: it needs a client
configuration, so the pipeline builds it itself.
"""

from __future__ import annotations

from inspect import signature
from typing import Any

from attribution.errors import ConfigError
from attribution.models.base import Attributor
from attribution.models.first_touch import FirstTouch
from attribution.models.ihc import IHC
from attribution.models.last_non_direct import LastNonDirect
from attribution.models.last_touch import LastTouch
from attribution.models.linear import Linear
from attribution.models.markov import Markov
from attribution.models.names import check_model_name
from attribution.models.position_based import PositionBased
from attribution.models.shapley import Shapley
from attribution.models.time_decay import TimeDecay

MODELS: dict[str, type[Attributor]] = {
    model.name: model
    for model in (
        IHC,
        FirstTouch,
        LastTouch,
        LastNonDirect,
        Linear,
        TimeDecay,
        PositionBased,
        Markov,
        Shapley,
    )
}


def get_model(name: str, **options: Any) -> Attributor:
    """Instantiate the model registered as ``name`` with its constructor ``options``, or explain which
    names (or options) exist."""
    check_model_name(name)
    if name not in MODELS:
        raise ConfigError(f"Model '{name}' is built by the pipeline from its settings, not by get_model")
    model = MODELS[name]
    accepted = signature(model).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"Model '{name}' has no option {', '.join(map(repr, unknown))}. "
            f"Its options: {', '.join(accepted) or 'none'}"
        )
    return model(**options)
