"""``calibrate-ihc``: fit a conversion type's IHC parameters to answers of the real service, and store them.

Why beside the CLI and not in ``models``: reading the answers file and writing the warehouse are I/O; the
fit itself (``models.ihc_calibration``) takes a frame, so answers stored from ``--model ihc-api`` runs can
feed it the same way as a CSV.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from attribution.errors import InputError
from attribution.ihc_api.client import IHCApiAttributor
from attribution.models.ihc_answers import ANSWER_SCHEMA, check_answers
from attribution.models.ihc_calibration import Fidelity, calibrate, cross_validate
from attribution.pipeline.settings import Settings
from attribution.pipeline.training import StoredType, check_storable, store_conversion_type
from attribution.store.credit import stored_answers
from attribution.warehouse.schema import create_output_tables


@dataclass(frozen=True)
class CalibratedType:
    """What ``calibrate-ihc`` stored, and the cross-validated error of the fit."""

    stored: StoredType
    fidelity: Fidelity


def read_answers(path: Path) -> pl.DataFrame:
    """The answers CSV (one row per session: the request row and the service's answer), ids kept as text.

    Raises ``InputError`` when the file is missing or is not CSV; the columns are checked by calibration.
    """
    if not path.is_file():
        raise InputError(
            f"Answers file {path} not found: pass the CSV of the service's answers with --answers"
        )
    text_columns = {column: ANSWER_SCHEMA[column] for column in ("conversion_id", "session_id", "timestamp")}
    try:
        return pl.read_csv(path, schema_overrides=text_columns, infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"Cannot read answers file {path} as CSV: {str(exc).splitlines()[0]}") from None


def stored_api_answers(settings: Settings, conv_type_id: str) -> pl.DataFrame:
    """The answers earlier ``--model ihc-api`` runs stored for ``conv_type_id``, as an answers frame: the
    last session of each journey is its conversion session (the request marked it so)."""
    with settings.open_warehouse() as engine:
        create_output_tables(engine)  # a database no run has written to yet holds no answers
        with engine.connect() as conn:
            answers = stored_answers(conn, IHCApiAttributor.name, conv_type_id)
    if answers.is_empty():
        raise InputError(
            f"No stored IHC API answers for conversion type {conv_type_id!r} in {settings.warehouse.safe_db}: run "
            f"--model ihc-api --conv-type-id {conv_type_id} on a sample first, or pass --answers FILE"
        )
    last = pl.int_range(pl.len()).over("conversion_id") == pl.len().over("conversion_id") - 1
    return answers.with_columns(conversion=last.cast(pl.Int8))


def calibrate_conversion_type(answers: pl.DataFrame, settings: Settings) -> CalibratedType:
    """Check and fit the answers, measure the fit by cross-validation, and store the parameters fitted on
    all of them as the next version of the settings' conversion type (nothing is stored on an error)."""
    check_storable(settings.ihc_api.conv_type_id)
    answers = check_answers(answers)
    fidelity = cross_validate(answers)
    parameters = calibrate(answers)
    journeys = answers.filter(pl.len().over("conversion_id") >= 2)["conversion_id"].n_unique()
    return CalibratedType(store_conversion_type(settings, parameters, journeys), fidelity)
