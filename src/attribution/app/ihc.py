"""The commands of the local IHC engine: train it (``train-ihc``), fit it to the service's answers
(``calibrate-ihc``), and serve it as the IHC API (``serve-ihc``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from attribution.models import IHCParameters
    from attribution.pipeline.calibration import CalibratedType
    from attribution.pipeline.training import StoredType


def train_ihc(**flags: object) -> StoredType:
    """Train the local IHC engine on the range's journeys; the parameters stored as a new version."""
    from attribution.pipeline.settings import load_settings
    from attribution.pipeline.training import train_conversion_type

    return train_conversion_type(load_settings(**flags))


def calibrate_ihc(answers: Path | None, from_conv_type: str | None, **flags: object) -> CalibratedType:
    """Fit the local IHC engine to the service's answers (a CSV, else those earlier ihc-api runs of
    ``from_conv_type``, default the conversion type, stored); stored as a new version of the type."""
    from attribution.pipeline.calibration import calibrate_conversion_type, read_answers, stored_api_answers
    from attribution.pipeline.settings import load_settings

    settings = load_settings(**flags)
    source = from_conv_type or settings.ihc_api.conv_type_id
    frame = read_answers(answers) if answers else stored_api_answers(settings, source)
    return calibrate_conversion_type(frame, settings)


def serve_ihc(args: list[str]) -> int:
    """Run the project's IHC-compatible server with its command line ``args``; its exit code."""
    from attribution.ihc_api.command import main

    return main(args, trained_types)


def trained_types(db: str) -> dict[str, IHCParameters]:
    """The conversion types trained in ``db``, for ``serve-ihc --db``."""
    from attribution.store.parameters import load_all_parameters
    from attribution.warehouse.engine import open_engine

    with open_engine(db) as engine:
        return load_all_parameters(engine)
