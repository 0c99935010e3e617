"""Work on a whole range's journeys outside a pipeline run: training the local IHC engine on the
database, and comparing models side by side.

Why not a runner: neither stores credit or touches the report; both read the range's journeys
once and hand them to pure functions (``train_ihc``, ``compare_models``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import polars as pl

from attribution.errors import ConfigError, InputError
from attribution.journeys import build_journeys
from attribution.models.comparison import compare_models, wide_comparison
from attribution.models.ihc import IHCParameters
from attribution.models.ihc_training import train_ihc, training_sessions
from attribution.pipeline.model_setup import build_model, reads_null_paths
from attribution.pipeline.settings import Settings
from attribution.store.parameters import BUILTIN_CONV_TYPE, save_parameters
from attribution.warehouse.bad_rows import enforce
from attribution.warehouse.schema import create_output_tables, prepare


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


def range_journeys(settings: Settings, *, null_paths: bool = False) -> pl.DataFrame:
    """Every journey of the settings' range, in one frame (training and comparison need them all), after
    the input checks a run over that range makes (``null_paths``: a model also reads every session of the
    range's dates), so a duplicate key stops here in one line, not inside a model.

    Raises ``InputError`` when the range holds none: neither can say anything about no journeys.
    """
    with settings.open_warehouse() as engine:
        prepare(engine, settings.warehouse.create_indexes)
        enforce(engine, settings.time_range, settings.policies.on_bad_rows, null_paths=null_paths)
        chunks = build_journeys(
            engine, settings.time_range, settings.journey_options, settings.policies.chunk_conversions
        )
        frames = [chunk.journeys for chunk in chunks if not chunk.journeys.is_empty()]
    if not frames:
        raise InputError(
            f"No journeys in range {settings.time_range} of {settings.warehouse.safe_db}: "
            "no conversion there has an earlier session (check --start and --end)"
        )
    return pl.concat(frames)


def train_conversion_type(settings: Settings) -> StoredType:
    """Fit IHC parameters on the range's journeys and store them as the next version of the conversion type."""
    check_storable(settings.ihc_api.conv_type_id)
    journeys = range_journeys(settings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parameters = train_ihc(journeys)
    count = training_sessions(journeys)["conv_id"].n_unique()
    return store_conversion_type(settings, parameters, count, [str(w.message) for w in caught])


def compare_stored_models(settings: Settings, names: list[str], value: str = "credit") -> pl.DataFrame:
    """Channel ``value`` (credit or revenue) per model on the range's journeys: one column per model."""
    if value not in ("credit", "revenue"):
        raise ConfigError(f"Bad comparison value {value!r}: expected 'credit' or 'revenue'")
    journeys = range_journeys(settings, null_paths=any(reads_null_paths(name) for name in names))
    with settings.open_warehouse() as engine:
        models = {name: build_model(settings.replaced(model=name), engine) for name in names}
    return wide_comparison(compare_models(journeys, models), value)
