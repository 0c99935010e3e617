"""Answers of the IHC service, one row per session, as calibration takes them: checked, and as journeys.

Why checked here, before any fit: a calibration stores parameters that every later run uses, so a file
that is not what the service answers (a column missing, a journey whose shares do not sum to 1, a session
twice) must stop it with one line naming the row, before anything is fitted or stored.
"""

from __future__ import annotations

import polars as pl

from attribution.errors import InputError
from attribution.vocabulary import ANSWER_SUM_TOLERANCE, BUILT_JOURNEY_SCHEMA, PHASES, TIMESTAMP_FORMAT

FLAGS = ("holder_engagement", "closer_engagement", "conversion", "impression_interaction")
ANSWER_SCHEMA: dict[str, pl.DataType] = {
    "conversion_id": pl.String(),
    "session_id": pl.String(),
    "timestamp": pl.String(),
    "channel_label": pl.String(),
    **{flag: pl.Int8() for flag in FLAGS},
    **{phase: pl.Float64() for phase in PHASES},
    "ihc": pl.Float64(),
}
"""The columns of an answers frame: a request row of ``POST /v1/compute_ihc`` plus the service's answer."""


def check_answers(answers: pl.DataFrame) -> pl.DataFrame:
    """``answers`` cast to ``ANSWER_SCHEMA`` (extra columns dropped), or ``InputError`` naming the first bad row.

    Checks: every column present; no empty value; timestamps in the API's format; 0/1 flags; phase values
    in [0, 1]; no session twice in a journey; per journey initializer and closer sum to 1 and holder to 1 or 0.
    """
    missing = [column for column in ANSWER_SCHEMA if column not in answers.columns]
    if missing:
        raise InputError(f"Answers lack column(s) {', '.join(missing)}; expected {', '.join(ANSWER_SCHEMA)}")
    frame = answers.select(
        pl.col(column).cast(dtype, strict=False) for column, dtype in ANSWER_SCHEMA.items()
    ).with_row_index("_row", offset=1)
    for problem, rows in _row_problems(frame).items():
        _refuse_first(frame.filter(rows), problem)
    _check_sums(frame)
    return frame.drop("_row")


def _row_problems(frame: pl.DataFrame) -> dict[str, pl.Expr]:
    """Per kind of problem, the rows that have it (checked in this order)."""
    empty = pl.any_horizontal(pl.col(column).is_null() for column in ANSWER_SCHEMA)
    flags = pl.any_horizontal(~pl.col(flag).is_in([0, 1]) for flag in FLAGS)
    shares = pl.any_horizontal(~pl.col(phase).is_between(0, 1) for phase in (*PHASES, "ihc"))
    timestamp = pl.col("timestamp").str.to_datetime(TIMESTAMP_FORMAT, strict=False)
    return {
        "an empty or non-numeric value": empty,
        "an engagement or conversion flag other than 0 or 1": flags,
        "a phase value outside [0, 1]": shares,
        f"a timestamp not in '{TIMESTAMP_FORMAT}'": timestamp.is_null(),
        "an unknown session: its session_id appears earlier in the same journey": pl.struct(
            "conversion_id", "session_id"
        )
        .is_first_distinct()
        .not_(),
    }


def _refuse_first(bad: pl.DataFrame, problem: str) -> None:
    if bad.height:
        row = bad.row(0, named=True)
        raise InputError(
            f"Answers row {row['_row']} (journey {row['conversion_id']}, session {row['session_id']}) has "
            f"{problem} ({bad.height} such row(s)); fix the answers and calibrate again"
        )


def _check_sums(frame: pl.DataFrame) -> None:
    """Refuse the first journey whose initializer or closer does not sum to 1, or holder to 1 or 0."""
    totals = frame.group_by("conversion_id", maintain_order=True).agg(
        pl.col("_row").first(), *(pl.col(phase).sum() for phase in PHASES)
    )
    for phase in PHASES:
        total = pl.col(phase)
        off = (total - 1).abs() > ANSWER_SUM_TOLERANCE
        if phase == "holder":
            off = off & (total.abs() > ANSWER_SUM_TOLERANCE)
        bad = totals.filter(off)
        if bad.height:
            conv_id, row, value = bad.select("conversion_id", "_row", phase).row(0)
            expected = "1 or 0" if phase == "holder" else "1"
            raise InputError(
                f"Answers journey {conv_id} (from row {row}): {phase} sums to {value:.4f}, not {expected} "
                f"({bad.height} such journey(s)); each journey must be one whole answer of the service"
            )


def answer_journeys(answers: pl.DataFrame) -> pl.DataFrame:
    """The checked answers as the engine's journeys (``BUILT_JOURNEY_SCHEMA``).

    Why the last session converts: the service is told no conversion time, only (at best) which session
    converted, and the vendor's guidance is to send the last one as such; so the closer is measured up to
    the journey's last session, whatever the ``conversion`` column holds.
    """
    last = pl.col("timestamp").max().over("conversion_id")
    ordered = answers.sort("conversion_id", "timestamp", "session_id")
    is_last = pl.int_range(pl.len()).over("conversion_id") == pl.len().over("conversion_id") - 1
    return ordered.select(
        conv_id="conversion_id",
        conv_ts=last,
        revenue=pl.lit(0.0),
        session_id="session_id",
        timestamp="timestamp",
        channel_name="channel_label",
        holder_engagement="holder_engagement",
        closer_engagement="closer_engagement",
        impression_interaction="impression_interaction",
        conversion=is_last.cast(pl.Int8),
    ).cast(BUILT_JOURNEY_SCHEMA)
