"""Position based (U-shaped): fixed shares for the first and last sessions, the rest spread over the middle.

Why: it credits both the touch that started the journey and the one that closed it, and still gives the
touches in between something. Default 40 / 20 / 40.
"""

from __future__ import annotations

import polars as pl

from attribution.errors import ConfigError
from attribution.models.base import Attributor, journey_frame

DEFAULT_WEIGHTS = (0.4, 0.2, 0.4)
"""First, middle (shared by all middle sessions), last."""


class PositionBased(Attributor):
    """First and last sessions get their weights, middle sessions share the middle weight equally.

    One session gets everything; two sessions get 50 / 50 whatever the weights (there is no middle to
    hand out, and neither end is favoured), as the common analytics tools do.
    """

    name = "position-based"

    def __init__(self, first: float = 0.4, middle: float = 0.2, last: float = 0.4) -> None:
        weights = (first, middle, last)
        if min(weights) < 0 or abs(sum(weights) - 1) > 1e-9:
            raise ConfigError(
                f"Bad position weights {weights}: expected three non-negative numbers (first, middle, last) "
                f"summing to 1, e.g. {DEFAULT_WEIGHTS}"
            )
        self.first, self.middle, self.last = weights

    def attribute(self, journeys: pl.DataFrame) -> pl.DataFrame:
        position, length = pl.col("position"), pl.col("length")
        ihc = (
            pl.when(length == 1)
            .then(1.0)
            .when(length == 2)
            .then(0.5)
            .when(position == 0)
            .then(self.first)
            .when(position == length - 1)
            .then(self.last)
            .otherwise(self.middle / (length - 2))
        )
        return journey_frame(journeys).select("conv_id", "session_id", ihc=ihc)
