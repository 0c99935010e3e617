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

from attribution.models.base import (
    JOURNEY,
    Attributor,
    hours_between,
    journey_frame,
    parse_timestamp,
    previous_in_journey,
)
from attribution.models.redistribution import MOVED_SCHEMA, RedistributionParameter, redistribute_phases

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


def _channel_weight(params: IHCParameters, phase: str) -> pl.Expr:
    weights = params.channel_weights.get(phase)
    if not weights:
        return pl.lit(1.0)
    return pl.col("channel_name").replace_strict(weights, default=1.0, return_dtype=pl.Float64)


def _normalised(raw: pl.Expr) -> pl.Expr:
    total = raw.sum().over(JOURNEY)
    return pl.when(total > 0).then(raw / total).otherwise(0.0)


def timed_sessions(journeys: pl.DataFrame) -> pl.DataFrame:
    """Sessions in journey order with ``gap_hours`` (null on a first session), ``hours_to_conversion`` and
    ``closer_eligible``: the inputs of the membership functions, shared with training."""
    ts = pl.col("_ts")
    return (
        journey_frame(journeys)
        .with_columns(_ts=parse_timestamp("timestamp"), _conv_ts=parse_timestamp("conv_ts"))
        .with_columns(
            gap_hours=hours_between(ts, previous_in_journey(ts)),
            hours_to_conversion=hours_between(pl.col("_conv_ts"), ts),
            closer_eligible=(pl.col("closer_engagement") == 1) | (pl.col("conversion") == 1),
        )
    )


def phase_values(sessions: pl.DataFrame, params: IHCParameters) -> pl.DataFrame:
    """Add the raw phase values (memberships times channel weights) and the per-journey normalised phases."""
    k, gap, to_conversion = params.shape, pl.col("gap_hours"), pl.col("hours_to_conversion")
    # x^k / (x^k + g^k) as 1 / (1 + (g / x)^k): one power per session; a zero gap gives 0 through g / 0 = inf.
    memberships = sessions.with_columns(
        _m_init=pl.when(gap.is_null())
        .then(1.0)
        .otherwise(1 / (1 + (params.initializer_gap_hours / gap).pow(k))),
        _m_close=1 / (1 + (to_conversion / params.closer_hours).pow(k)),
    )
    m_init, m_close = pl.col("_m_init"), pl.col("_m_close")
    raw = {
        "initializer": m_init,
        "holder": (pl.col("holder_engagement") == 1).cast(pl.Float64) * (1 - m_init) * (1 - m_close),
        "closer": pl.col("closer_eligible").cast(pl.Float64) * m_close,
    }
    return memberships.with_columns(
        (raw[phase] * _channel_weight(params, phase)).alias(f"raw_{phase}") for phase in PHASES
    ).with_columns(_normalised(pl.col(f"raw_{phase}")).alias(phase) for phase in PHASES)


def combined_ihc(params: IHCParameters) -> pl.Expr:
    """``ihc`` from the three phases; without holder mass the weights cover the other two."""
    p = params
    holder_weight = pl.when(pl.col("holder").sum().over(JOURNEY) > 0).then(p.holder_weight).otherwise(0.0)
    weighted = (
        p.initializer_weight * pl.col("initializer")
        + holder_weight * pl.col("holder")
        + p.closer_weight * pl.col("closer")
    )
    return (weighted / (p.initializer_weight + holder_weight + p.closer_weight)).alias("ihc")


class IHC(Attributor):
    """Local IHC engine; outputs the three phase values and ``ihc`` per session, like the API.

    With a ``redistribution`` rule set (the API's ``redistribution_parameter``) the listed channels' phase
    credit is moved before ``ihc`` is combined; after each ``attribute`` call, ``last_redistributed``
    holds what each listed channel handed away, per phase (``MOVED_SCHEMA``; empty without rules).
    """

    name = "ihc"

    def __init__(
        self, parameters: IHCParameters | None = None, redistribution: RedistributionParameter | None = None
    ) -> None:
        self.parameters = parameters or IHCParameters()
        self.redistribution = redistribution
        self.last_redistributed = pl.DataFrame(schema=MOVED_SCHEMA)

    def attribute(self, journeys: pl.DataFrame) -> pl.DataFrame:
        phases = phase_values(timed_sessions(journeys), self.parameters)
        if self.redistribution is not None:
            phases, self.last_redistributed = redistribute_phases(phases, self.redistribution)
        return phases.select("conv_id", "session_id", *PHASES, combined_ihc(self.parameters))


def redistribute(
    credits: pl.DataFrame,
    journeys: pl.DataFrame,
    parameter: RedistributionParameter,
    parameters: IHCParameters,
) -> pl.DataFrame:
    """Apply ``parameter`` to credits the engine already computed (the server's path), then recombine ``ihc``."""
    keys = ["conv_id", "session_id"]
    frame = credits.join(
        journey_frame(journeys).select(*keys, "channel_name", "position", JOURNEY),
        on=keys,
        how="left",
        maintain_order="left",
    )
    moved, _ = redistribute_phases(frame, parameter)
    return moved.with_columns(combined_ihc(parameters)).select(credits.columns)
