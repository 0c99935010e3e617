"""The ``Attributor`` interface: journeys in, per-session credit out, and the checks every model must pass.

Why a checker outside the models: the invariant (each conversion's credit is non-negative and sums to
1 over exactly its sessions) is what makes the report's numbers true, so it is verified before any
write, whichever model, local or remote, produced the credit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

import polars as pl

from attribution.errors import IntegrityError

CREDIT_TOLERANCE = 1e-6
"""Largest allowed distance of a conversion's credit total from 1 (remote answers are rounded)."""

CREDIT_SCHEMA: dict[str, pl.DataType] = {
    "conv_id": pl.String(),
    "session_id": pl.String(),
    "ihc": pl.Float64(),
}


class Attributor(ABC):
    """Turns a journeys frame (see ``attribution.journeys.JOURNEY_SCHEMA``) into per-session credit.

    Implementations are pure: no I/O, the same input gives the same output whatever its row order.
    """

    name: ClassVar[str]

    @abstractmethod
    def attribute(self, journeys: pl.DataFrame) -> pl.DataFrame:
        """Return one row per journey session: ``conv_id``, ``session_id``, ``ihc`` (extra columns allowed)."""


def in_journey_order(journeys: pl.DataFrame) -> pl.DataFrame:
    """Sort sessions by conversion, then time, then id, so models can use positions within a journey."""
    return journeys.sort("conv_id", "timestamp", "session_id")


def position_columns() -> list[pl.Expr]:
    """Zero-based position and length of each session within its (sorted) journey."""
    return [
        pl.int_range(pl.len()).over("conv_id").alias("position"),
        pl.len().over("conv_id").alias("length"),
    ]


def validate_credits(
    journeys: pl.DataFrame, credits: pl.DataFrame, tolerance: float = CREDIT_TOLERANCE
) -> None:
    """Raise ``IntegrityError`` unless credits cover exactly the journeys' sessions and sum to 1 each."""
    keys = ["conv_id", "session_id"]
    if credits.height != journeys.height or credits.select(keys).is_duplicated().any():
        raise IntegrityError(
            f"Model returned {credits.height} credit rows for {journeys.height} journey sessions"
        )
    missing = journeys.select(keys).join(credits.select(keys), on=keys, how="anti")
    if missing.height:
        raise IntegrityError(f"Model left {missing.height} sessions without credit, e.g. {missing.row(0)}")
    if credits["ihc"].is_null().any() or credits["ihc"].is_nan().any() or (credits["ihc"] < 0).any():
        raise IntegrityError("Model returned null, NaN or negative credit")
    sums = credits.group_by("conv_id").agg(pl.col("ihc").sum())
    bad = sums.filter((pl.col("ihc") - 1).abs() > tolerance)
    if bad.height:
        conv_id, total = bad.row(0)
        raise IntegrityError(f"Credit of conversion {conv_id} sums to {total:.6f}, not 1 ({bad.height} such)")


TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_timestamp(column: str) -> pl.Expr:
    """A text timestamp column of the journeys frame as a datetime (the warehouse stores UTC text)."""
    return pl.col(column).str.to_datetime(TIMESTAMP_FORMAT, time_unit="ms")


def hours_between(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    """Fractional hours from ``earlier`` to ``later``."""
    return (later - earlier).dt.total_seconds(fractional=True) / 3600


def journey_frame(journeys: pl.DataFrame) -> pl.DataFrame:
    """Sessions in journey order with their ``position`` and the journey's ``length``.

    Why not ``position_columns``: per-group window functions (``int_range().over``) run group by group
    and cost seconds on a million journeys; aggregations over a materialised row index do not.
    """
    return (
        in_journey_order(journeys)
        .with_row_index("_row")
        .with_columns(
            position=(pl.col("_row") - pl.col("_row").min().over("conv_id")).cast(pl.Int64),
            length=pl.len().over("conv_id").cast(pl.Int64),
        )
        .drop("_row")
    )


def previous_in_journey(expr: pl.Expr) -> pl.Expr:
    """``expr`` on the previous session of the same journey, null on a first session (frame in journey order).

    Why a masked global shift: ``shift().over`` runs group by group and is slow on many small journeys.
    """
    return pl.when(pl.col("conv_id") == pl.col("conv_id").shift(1)).then(expr.shift(1))


def normalised_credit(frame: pl.DataFrame, raw: pl.Expr) -> pl.DataFrame:
    """Credit rows from non-negative raw weights that have mass in every journey: ``raw / journey total``."""
    return frame.select("conv_id", "session_id", ihc=raw / raw.sum().over("conv_id"))


def credit_by_channel_score(journeys: pl.DataFrame, scores: Mapping[str, float]) -> pl.DataFrame:
    """Split each journey's conversion over its channels in proportion to their scores.

    The sessions of a channel share that channel's part equally; channels without a score count 0 and
    negative scores are treated as 0. A journey whose channels all score 0 is split equally over its
    sessions (linear), so every conversion still sums to 1.
    """
    score = (
        pl.col("channel_name")
        .replace_strict(dict(scores), default=0.0, return_dtype=pl.Float64)
        .clip(lower_bound=0.0)
    )
    per_session = score / pl.len().over("conv_id", "channel_name")
    total = per_session.sum().over("conv_id")
    ihc = pl.when(total > 0).then(per_session / total).otherwise(1.0 / pl.len().over("conv_id"))
    return in_journey_order(journeys).select("conv_id", "session_id", ihc=ihc)
