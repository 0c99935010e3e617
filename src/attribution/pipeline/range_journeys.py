"""A whole range's journeys in one frame, for the work done outside a run: training and comparing models.

Why the run's checks first: a duplicate key must stop here in one line, as it stops a run over that range,
not deep inside a model.
"""

from __future__ import annotations

import polars as pl

from attribution.errors import InputError
from attribution.journeys import build_journeys
from attribution.pipeline.settings import Settings
from attribution.warehouse.bad_rows import enforce
from attribution.warehouse.schema import prepare_warehouse


def range_journeys(settings: Settings, *, null_paths: bool = False) -> pl.DataFrame:
    """Every journey of the settings' range, in one frame (training and comparison need them all), after
    the input checks a run over that range makes (``null_paths``: a model also reads every session of the
    range's dates), so a duplicate key stops here in one line, not inside a model.

    Raises ``InputError`` when the range holds none: neither can say anything about no journeys.
    """
    with settings.open_warehouse() as engine:
        prepare_warehouse(engine, settings.warehouse.create_indexes)
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
