"""Last non-direct touch: all credit to the last session that did not come in directly.

Why: a customer who types the address to buy was usually brought by an earlier touch; last touch would
credit Direct for it. Which channels count as direct is configurable.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from attribution.models.base import JOURNEY, Attributor, journey_frame

DEFAULT_DIRECT_CHANNELS = frozenset({"Direct Traffic"})


class LastNonDirect(Attributor):
    """All credit to the last session outside ``direct_channels``; a journey of only direct sessions
    gives its credit to its last session (as last touch would)."""

    name = "last-non-direct"

    def __init__(self, direct_channels: Iterable[str] = DEFAULT_DIRECT_CHANNELS) -> None:
        self.direct_channels = frozenset(direct_channels)

    def attribute(self, journeys: pl.DataFrame) -> pl.DataFrame:
        frame = journey_frame(journeys)
        indirect = ~pl.col("channel_name").is_in(sorted(self.direct_channels))
        last_indirect = pl.when(indirect).then(pl.col("position")).max().over(JOURNEY)
        target = pl.coalesce(last_indirect, pl.col("length") - 1)
        return frame.select("conv_id", "session_id", ihc=(pl.col("position") == target).cast(pl.Float64))
