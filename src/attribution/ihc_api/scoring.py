"""What the project's server computes for one request: parse the rows, score the journeys, round the answer.

Why the conversion session's time stands in for the conversion time: the API is never told when the
conversion happened, only which session converted, so the closer phase is measured up to that session.
Why largest-remainder rounding: the contract promises 4-decimal values whose phases still sum to 1 per
journey; rounding each value on its own can leave a journey 0.0003 short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from attribution.ihc_api.contract import TIMESTAMP_FORMAT_WITH_OFFSET, TIMESTAMP_PATTERN
from attribution.models.ihc import IHC, IHCParameters, redistribute
from attribution.models.redistribution import RedistributionParameter
from attribution.vocabulary import CREDIT_VALUES, TIMESTAMP_FORMAT

DECIMALS = 4
_UNITS = 10**DECIMALS

BAD_TIMESTAMP = f"timestamp not in '{TIMESTAMP_FORMAT}' or '{TIMESTAMP_FORMAT_WITH_OFFSET}'"


@dataclass(frozen=True)
class Scored:
    """Wire-named credit rows of the journeys that could be scored, and one error per journey that could not."""

    credits: pl.DataFrame
    errors: list[dict[str, Any]]

    @property
    def status(self) -> int:
        return 206 if self.errors else 200


def score(
    rows: pl.DataFrame, parameters: IHCParameters, redistribution: RedistributionParameter | None = None
) -> Scored:
    """Score the request rows (wire column names) with the local IHC engine and the conversion type's parameters."""
    parsed = rows.with_columns(_ts=_parsed_timestamp())
    problems = _journey_problems(parsed)
    good = parsed.join(problems, on="conversion_id", how="anti")
    credits = IHC(parameters).attribute(_engine_frame(good))
    if redistribution is not None:
        credits = redistribute(credits, _engine_frame(good), redistribution, parameters)
    errors = [
        {"conversion_id": conv_id, "statusCode": 406, "error": message}
        for conv_id, message in problems.iter_rows()
    ]
    return Scored(credits=rounded(credits).rename({"conv_id": "conversion_id"}), errors=errors)


def _parsed_timestamp() -> pl.Expr:
    """The row's time as naive UTC, or null when the text is in neither accepted format."""
    text = pl.col("timestamp")
    naive = text.str.to_datetime(TIMESTAMP_FORMAT, strict=False, time_unit="ms")
    offset = (
        text.str.to_datetime(TIMESTAMP_FORMAT_WITH_OFFSET, strict=False, time_unit="ms")
        .dt.convert_time_zone("UTC")
        .dt.replace_time_zone(None)
    )
    return pl.when(text.str.contains(TIMESTAMP_PATTERN)).then(pl.coalesce(naive, offset))


def _journey_problems(parsed: pl.DataFrame) -> pl.DataFrame:
    """One row (conversion_id, message) per journey the service cannot parse; the rest are scored."""
    bad_rows = pl.col("_ts").is_null().sum()
    converting = pl.col("conversion").cast(pl.Int32).sum()
    last_converts = pl.col("conversion").sort_by("_ts", "session_id").last() == 1
    checks = parsed.group_by("conversion_id", maintain_order=True).agg(
        message=pl.when(bad_rows > 0)
        .then(pl.format("{} row(s) dropped: {}", bad_rows, pl.lit(BAD_TIMESTAMP)))
        .when(pl.col("session_id").is_duplicated().any())
        .then(pl.lit("duplicate session_id within the journey"))
        .when((converting != 1) | ~last_converts)
        .then(pl.lit("conversion must be 1 on exactly one session, the last one"))
    )
    return checks.filter(pl.col("message").is_not_null())


def _engine_frame(parsed: pl.DataFrame) -> pl.DataFrame:
    """The rows in the local engine's journeys schema, times normalised to naive UTC text."""
    timestamp = pl.col("_ts").dt.strftime(TIMESTAMP_FORMAT)
    return parsed.select(
        conv_id=pl.col("conversion_id"),
        conv_ts=timestamp.filter(pl.col("conversion") == 1).first().over("conversion_id"),
        session_id=pl.col("session_id"),
        timestamp=timestamp,
        channel_name=pl.col("channel_label"),
        holder_engagement=pl.col("holder_engagement"),
        closer_engagement=pl.col("closer_engagement"),
        impression_interaction=pl.col("impression_interaction"),
        conversion=pl.col("conversion"),
    )


def rounded(credits: pl.DataFrame) -> pl.DataFrame:
    """Round every credit column to 4 decimals so that each journey's non-zero totals stay exactly 1.

    Largest remainder: floor every value, then give the missing units to the largest remainders.
    """
    return credits.with_columns(_round_to_units(column) for column in CREDIT_VALUES)


def _round_to_units(column: str) -> pl.Expr:
    scaled = pl.col(column) * _UNITS
    floor = scaled.floor()
    has_mass = pl.col(column).sum().over("conv_id") > 0.5
    missing = (_UNITS - floor.sum()).over("conv_id")
    gets_unit = (scaled - floor).rank("ordinal", descending=True).over("conv_id") <= missing
    units = floor + pl.when(has_mass & gets_unit).then(1.0).otherwise(0.0)
    return (units / _UNITS).round(DECIMALS).alias(column)
