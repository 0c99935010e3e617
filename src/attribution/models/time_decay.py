"""Time decay: sessions closer to the conversion get exponentially more credit.

A session ``t`` hours before the conversion weighs ``2^(-t / half_life)``: one half-life earlier, half
the weight. Weights are normalised within the journey.
"""

from __future__ import annotations

import polars as pl

from attribution.errors import ConfigError
from attribution.models.base import (
    JOURNEY,
    Attributor,
    hours_between,
    journey_frame,
    normalised_credit,
    parse_timestamp,
)

DEFAULT_HALF_LIFE_HOURS = 168.0
"""Seven days, the common default of analytics tools."""


class TimeDecay(Attributor):
    """Credit ``∝ 2^(-(t_conv - t) / half_life_hours)`` per session."""

    name = "time-decay"

    def __init__(self, half_life_hours: float = DEFAULT_HALF_LIFE_HOURS) -> None:
        if not half_life_hours > 0:
            raise ConfigError(f"Bad half-life {half_life_hours!r} hours: expected a number above 0")
        self.half_life_hours = half_life_hours

    def attribute(self, journeys: pl.DataFrame) -> pl.DataFrame:
        frame = journey_frame(journeys).with_columns(_ts=parse_timestamp("timestamp"))
        # Measured from the journey's last session, not the conversion: the common factor cancels in the
        # normalisation, and the last session weighs 1, so old journeys cannot underflow to 0 / 0.
        age = hours_between(pl.col("_ts").max().over(JOURNEY), pl.col("_ts"))
        return normalised_credit(frame, pl.lit(2.0).pow(-age / self.half_life_hours))
