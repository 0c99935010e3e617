"""Linear: every session of a journey gets the same share (the simplest multi-touch baseline)."""

from __future__ import annotations

import polars as pl

from attribution.models.base import Attributor
from attribution.vocabulary import in_journey_order


class Linear(Attributor):
    name = "linear"

    def attribute(self, journeys: pl.DataFrame) -> pl.DataFrame:
        return in_journey_order(journeys).select("conv_id", "session_id", ihc=1.0 / pl.len().over("conv_id"))
