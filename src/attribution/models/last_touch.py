"""Last touch: all credit to the session closest to the conversion (the industry's default baseline)."""

from __future__ import annotations

import polars as pl

from attribution.models.base import Attributor, position_columns
from attribution.vocabulary import in_journey_order


class LastTouch(Attributor):
    name = "last-touch"

    def attribute(self, journeys: pl.DataFrame) -> pl.DataFrame:
        return (
            in_journey_order(journeys)
            .with_columns(position_columns())
            .select(
                "conv_id", "session_id", ihc=(pl.col("position") == pl.col("length") - 1).cast(pl.Float64)
            )
        )
