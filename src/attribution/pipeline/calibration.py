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
from attribution.models.ihc_answers import ANSWER_SCHEMA, check_answers
from attribution.models.ihc_calibration import Fidelity, calibrate, cross_validate
from attribution.pipeline.settings import Settings
from attribution.pipeline.training import StoredType, check_storable, store_conversion_type


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


def calibrate_conversion_type(answers_path: Path, settings: Settings) -> CalibratedType:
    """Check and fit the answers, measure the fit by cross-validation, and store the parameters fitted on
    all of them as the next version of the settings' conversion type (nothing is stored on an error)."""
    check_storable(settings.conv_type_id)
    answers = check_answers(read_answers(answers_path))
    fidelity = cross_validate(answers)
    parameters = calibrate(answers)
    journeys = answers.filter(pl.len().over("conversion_id") >= 2)["conversion_id"].n_unique()
    return CalibratedType(store_conversion_type(settings, parameters, journeys), fidelity)
