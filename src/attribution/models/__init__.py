"""The model registry: ``--model`` names to ``Attributor`` classes.

Why a registry: the CLI, the DAG and the server pick models by name, and a typo should get a suggestion,
not a traceback.
"""

from __future__ import annotations

from difflib import get_close_matches

from attribution.errors import ConfigError
from attribution.models.base import Attributor, validate_credits
from attribution.models.ihc import IHC, IHCParameters
from attribution.models.last_touch import LastTouch
from attribution.models.linear import Linear

MODELS: dict[str, type[Attributor]] = {model.name: model for model in (IHC, LastTouch, Linear)}


def get_model(name: str) -> Attributor:
    """Instantiate the model registered as ``name``, or explain which names exist."""
    try:
        return MODELS[name]()
    except KeyError:
        close = get_close_matches(name, MODELS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"Unknown model '{name}'.{hint} Known models: {', '.join(sorted(MODELS))}"
        ) from None


__all__ = [
    "IHC",
    "MODELS",
    "Attributor",
    "IHCParameters",
    "LastTouch",
    "Linear",
    "get_model",
    "validate_credits",
]
