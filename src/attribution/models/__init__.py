"""The attribution models: pure functions of journeys to credit, picked by name from the registry.

Names load on first use, so a caller that needs only the models' names (``names``: the CLI's help) does not
import Polars and every model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attribution.lazy import lazy_names

if TYPE_CHECKING:
    from attribution.models.base import Attributor, validate_credits
    from attribution.models.first_touch import FirstTouch
    from attribution.models.ihc import IHC, IHCParameters
    from attribution.models.last_non_direct import LastNonDirect
    from attribution.models.last_touch import LastTouch
    from attribution.models.linear import Linear
    from attribution.models.markov import Markov
    from attribution.models.names import MODEL_NAMES, check_model_name
    from attribution.models.position_based import PositionBased
    from attribution.models.registry import MODELS, get_model
    from attribution.models.shapley import Shapley
    from attribution.models.time_decay import TimeDecay

_HOMES = {
    "IHC": "ihc",
    "MODELS": "registry",
    "MODEL_NAMES": "names",
    "Attributor": "base",
    "FirstTouch": "first_touch",
    "IHCParameters": "ihc",
    "LastNonDirect": "last_non_direct",
    "LastTouch": "last_touch",
    "Linear": "linear",
    "Markov": "markov",
    "PositionBased": "position_based",
    "Shapley": "shapley",
    "TimeDecay": "time_decay",
    "check_model_name": "names",
    "get_model": "registry",
    "validate_credits": "base",
}

__all__ = [
    "IHC",
    "MODELS",
    "MODEL_NAMES",
    "Attributor",
    "FirstTouch",
    "IHCParameters",
    "LastNonDirect",
    "LastTouch",
    "Linear",
    "Markov",
    "PositionBased",
    "Shapley",
    "TimeDecay",
    "check_model_name",
    "get_model",
    "validate_credits",
]

__getattr__ = lazy_names(__name__, _HOMES)
