"""Marketing attribution pipeline: customer journeys, attribution models and channel reports.

The public API is the names below; everything else is internal and may change.
"""

from attribution.errors import (
    AttributionError,
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

__all__ = [
    "MODELS",
    "AttributionError",
    "Attributor",
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
