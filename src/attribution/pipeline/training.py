"""Training the local IHC engine on a range's journeys, and storing a conversion type's parameters.

Why not a runner: it stores no credit and touches no report; it reads the range's journeys once
(``range_journeys``) and hands them to a pure function (``train_ihc``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from attribution.errors import ConfigError
from attribution.models.ihc import IHCParameters
from attribution.models.ihc_training import train_ihc, training_sessions
from attribution.pipeline.range_journeys import range_journeys
from attribution.pipeline.settings import Settings
from attribution.store.parameters import BUILTIN_CONV_TYPE, save_parameters
from attribution.warehouse.schema import create_output_tables


@dataclass(frozen=True)
class StoredType:
    """A conversion type's parameters as ``train-ihc`` or ``calibrate-ihc`` stored them."""

    conv_type_id: str
    version: int
    journeys: int
    phase_weights: tuple[float, float, float]
    warnings: list[str] = field(default_factory=list)


def check_storable(conv_type_id: str) -> None:
    """Refuse the built-in conversion type before any fit: its parameters are the engine's defaults."""
    if conv_type_id == BUILTIN_CONV_TYPE:
        raise ConfigError(
            f"'{BUILTIN_CONV_TYPE}' is the built-in conversion type; store under another name (--conv-type-id)"
        )


def store_conversion_type(
    settings: Settings, parameters: IHCParameters, journeys: int, notes: list[str] | None = None
) -> StoredType:
    """Store ``parameters`` as the next version of the settings' conversion type."""
    with settings.open_warehouse() as engine:
        create_output_tables(engine)
        version = save_parameters(engine, settings.ihc_api.conv_type_id, parameters, journeys=journeys)
    weights = (parameters.initializer_weight, parameters.holder_weight, parameters.closer_weight)
    rounded = (round(weights[0], 3), round(weights[1], 3), round(weights[2], 3))
    return StoredType(settings.ihc_api.conv_type_id, version, journeys, rounded, notes or [])


def train_conversion_type(settings: Settings) -> StoredType:
    """Fit IHC parameters on the range's journeys and store them as the next version of the conversion type."""
    check_storable(settings.ihc_api.conv_type_id)
    journeys = range_journeys(settings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parameters = train_ihc(journeys)
    count = training_sessions(journeys)["conv_id"].n_unique()
    return store_conversion_type(settings, parameters, count, [str(w.message) for w in caught])
