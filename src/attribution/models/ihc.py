"""A local IHC (Initializer, Holder, Closer) engine: an open re-implementation of the published method.

Why: users without a vendor account, every test and the project's IHC-compatible server need credit that
follows the same method as the service. This is not the vendor's trained model; the method is described
in docs/models.md and its untrained defaults are the constants below.

Per session of a journey (times in hours):

- initializer membership ``m_I = gap^k / (gap^k + g^k)`` of the gap since the previous session (the first
  session has an infinite gap, so ``m_I = 1``): a long silence means the session starts the journey anew;
- closer membership ``m_C = c^k / (t^k + c^k)`` of the time ``t`` to the conversion, over closer-eligible
  sessions (``closer_engagement = 1`` or the conversion session);
- holder value ``(1 - m_I)(1 - m_C)`` over holder-engaged sessions: neither starting nor closing;

each times the channel's weight for that phase, normalised to sum to 1 within the journey, and combined
as ``ihc = (w_I I + w_H H + w_C C) / (w_I + w_H [H has mass] + w_C)``.
"""

from __future__ import annotations

from typing import Annotated

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from attribution.models.base import Attributor, in_journey_order

PositiveFloat = Annotated[float, Field(gt=0)]

DEFAULT_PHASE_WEIGHT = 1 / 3
DEFAULT_INITIALIZER_GAP_HOURS = 24.0
DEFAULT_CLOSER_HOURS = 24.0
DEFAULT_SHAPE = 2.0
PHASES = ("initializer", "holder", "closer")


class IHCParameters(BaseModel):
    """The parameters of one conversion type; the defaults are the engine's documented untrained values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    initializer_weight: PositiveFloat = DEFAULT_PHASE_WEIGHT
    holder_weight: PositiveFloat = DEFAULT_PHASE_WEIGHT
    closer_weight: PositiveFloat = DEFAULT_PHASE_WEIGHT
    initializer_gap_hours: PositiveFloat = DEFAULT_INITIALIZER_GAP_HOURS
    closer_hours: PositiveFloat = DEFAULT_CLOSER_HOURS
    shape: PositiveFloat = DEFAULT_SHAPE
    channel_weights: dict[str, dict[str, PositiveFloat]] = Field(
        default_factory=dict, description="phase -> channel -> weight; channels not listed weigh 1"
    )


def _hours(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    return (later - earlier).dt.total_seconds(fractional=True) / 3600


def _channel_weight(params: IHCParameters, phase: str) -> pl.Expr:
    weights = params.channel_weights.get(phase)
    if not weights:
        return pl.lit(1.0)
    return pl.col("channel_name").replace_strict(weights, default=1.0, return_dtype=pl.Float64)


def _normalised(raw: pl.Expr) -> pl.Expr:
    total = raw.sum().over("conv_id")
    return pl.when(total > 0).then(raw / total).otherwise(0.0)


class IHC(Attributor):
    """Local IHC engine; outputs the three phase values and ``ihc`` per session, like the API."""

    name = "ihc"

    def __init__(self, parameters: IHCParameters | None = None) -> None:
        self.parameters = parameters or IHCParameters()

    def attribute(self, journeys: pl.DataFrame) -> pl.DataFrame:
        p = self.parameters
        ts = pl.col("timestamp").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="ms")
        conv_ts = pl.col("conv_ts").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="ms")
        gap = _hours(ts, ts.shift(1).over("conv_id"))
        to_conversion = _hours(conv_ts, ts)
        m_init = (
            pl.when(gap.is_null())
            .then(1.0)
            .otherwise(gap.pow(p.shape) / (gap.pow(p.shape) + p.initializer_gap_hours**p.shape))
        )
        m_close = p.closer_hours**p.shape / (to_conversion.pow(p.shape) + p.closer_hours**p.shape)
        closer_eligible = (pl.col("closer_engagement") == 1) | (pl.col("conversion") == 1)
        phases = (
            in_journey_order(journeys)
            .with_columns(
                m_init.alias("m_init"), m_close.alias("m_close"), closer_eligible.alias("closer_eligible")
            )
            .with_columns(
                initializer=_normalised(pl.col("m_init") * _channel_weight(p, "initializer")),
                holder=_normalised(
                    (pl.col("holder_engagement") == 1).cast(pl.Float64)
                    * (1 - pl.col("m_init"))
                    * (1 - pl.col("m_close"))
                    * _channel_weight(p, "holder")
                ),
                closer=_normalised(
                    pl.col("closer_eligible").cast(pl.Float64)
                    * pl.col("m_close")
                    * _channel_weight(p, "closer")
                ),
            )
        )
        holder_weight = (
            pl.when(pl.col("holder").sum().over("conv_id") > 0).then(p.holder_weight).otherwise(0.0)
        )
        ihc = (
            p.initializer_weight * pl.col("initializer")
            + holder_weight * pl.col("holder")
            + p.closer_weight * pl.col("closer")
        ) / (p.initializer_weight + holder_weight + p.closer_weight)
        return phases.select("conv_id", "session_id", *PHASES, ihc=ihc)
