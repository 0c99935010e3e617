"""Marketing attribution pipeline: customer journeys, attribution models and channel reports.

The public API is the names below; everything else is internal and may change. Names load on first use,
so ``import attribution`` (and the CLI's start) does not pay for Polars and SQLAlchemy up front.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attribution.lazy import lazy_names

if TYPE_CHECKING:
    from attribution.errors import (
        AttributionError,
        BadRowsError,
        ConfigError,
        DatabaseNotFoundError,
        InputError,
        IntegrityError,
        SchemaError,
        StorageError,
    )
    from attribution.journeys import JourneyOptions, build_journeys
    from attribution.models import MODELS, Attributor, get_model
    from attribution.pipeline.in_process import run
    from attribution.pipeline.settings import Settings, load_settings
    from attribution.reporting.channel_report import build_channel_report
    from attribution.store.runs import RunSummary
    from attribution.timerange import TimeRange

_HOMES = {
    "MODELS": "models",
    "AttributionError": "errors",
    "Attributor": "models",
    "BadRowsError": "errors",
    "ConfigError": "errors",
    "DatabaseNotFoundError": "errors",
    "InputError": "errors",
    "IntegrityError": "errors",
    "JourneyOptions": "journeys",
    "RunSummary": "store.runs",
    "SchemaError": "errors",
    "Settings": "pipeline.settings",
    "StorageError": "errors",
    "TimeRange": "timerange",
    "build_channel_report": "reporting.channel_report",
    "build_journeys": "journeys",
    "get_model": "models",
    "load_settings": "pipeline.settings",
    "run": "pipeline.in_process",
}

__all__ = [
    "MODELS",
    "AttributionError",
    "Attributor",
    "BadRowsError",
    "ConfigError",
    "DatabaseNotFoundError",
    "InputError",
    "IntegrityError",
    "JourneyOptions",
    "RunSummary",
    "SchemaError",
    "Settings",
    "StorageError",
    "TimeRange",
    "build_channel_report",
    "build_journeys",
    "get_model",
    "load_settings",
    "run",
]

__getattr__ = lazy_names(__name__, _HOMES)
