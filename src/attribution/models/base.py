"""The ``Attributor`` interface: journeys in, per-session credit out, and the checks every model must pass.

Why a checker outside the models: the invariant (each conversion's credit is non-negative and sums to
1 over exactly its sessions) is what makes the report's numbers true, so it is verified before any
write, whichever model, local or remote, produced the credit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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
