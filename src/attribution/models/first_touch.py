"""First touch: all credit to the journey's first session (the touch that brought the customer in)."""

from __future__ import annotations

import polars as pl

from attribution.models.base import Attributor, journey_frame


class FirstTouch(Attributor):
    """All credit to the earliest session; sessions at the same time are ordered by id."""

    name = "first-touch"

    def attribute(self, journeys: pl.DataFrame) -> pl.DataFrame:
        frame = journey_frame(journeys)
        return frame.select("conv_id", "session_id", ihc=(pl.col("position") == 0).cast(pl.Float64))
