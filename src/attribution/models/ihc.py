"""A local IHC (Initializer, Holder, Closer) engine, calibrated on real answers of the vendor's service.

Why: users without a vendor account, every test and the project's IHC-compatible server need credit that
is as close to the service as a small explainable model allows. Per session of a journey (times in hours):

- initializer: 1 on the first session; on a later one, a curve of the gap since the previous session
  (a long silence means the session starts the journey anew);
- closer: a curve of the time to the conversion, over closer-eligible sessions (``closer_engagement = 1``
  or the conversion session);
- holder: a surface of the session's own (normalised) initializer and closer shares, over holder-engaged
  sessions of journeys of two or more sessions: a session that starts or closes the journey holds little;

each times the channel's weight for that phase, normalised to sum to 1 within the journey, and combined as
``ihc = (w_I I + w_H H + w_C C) / (w_I + w_H [H has mass] + w_C)``. The time curves are piecewise-linear
in log-hours; the shipped defaults (``ihc_defaults``) were calibrated on the vendor's answers.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from attribution.models.base import (
    JOURNEY,
    Attributor,
    hours_between,
    journey_frame,
    journey_totals,
    parse_timestamp,
    previous_in_journey,
)
from attribution.models.curves import Surface, TimeCurve
from attribution.models.ihc_defaults import (
    CHANNEL_WEIGHTS,
    CLOSER_CURVE,
    CLOSER_WEIGHT,
    HOLDER_SURFACE,
    HOLDER_WEIGHT,
    INITIALIZER_CURVE,
    INITIALIZER_WEIGHT,
)
from attribution.models.redistribution import MOVED_SCHEMA, RedistributionParameter, redistribute_phases
from attribution.vocabulary import PHASES

PositiveFloat = Annotated[float, Field(gt=0)]


class IHCParameters(BaseModel):
    """The parameters of one conversion type; the defaults are the calibrated ones of ``ihc_defaults``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    initializer_weight: PositiveFloat = INITIALIZER_WEIGHT
    holder_weight: PositiveFloat = HOLDER_WEIGHT
    closer_weight: PositiveFloat = CLOSER_WEIGHT
    initializer: TimeCurve = Field(
        default=INITIALIZER_CURVE,
        description="raw initializer of a later session by hours since the previous one",
    )
    closer: TimeCurve = Field(default=CLOSER_CURVE, description="raw closer by hours to the conversion")
    holder: Surface = Field(
        default=HOLDER_SURFACE, description="raw holder by the session's initializer and closer shares"
    )
    channel_weights: dict[str, dict[str, PositiveFloat]] = Field(
        default_factory=lambda: {phase: dict(weights) for phase, weights in CHANNEL_WEIGHTS.items()},
        description="phase -> channel -> weight; channels not listed weigh 1",
    )


def session_channel_weights(sessions: pl.DataFrame, params: IHCParameters) -> dict[str, pl.Series]:
    """Per phase with channel weights, each session's weight (1 for channels not listed, or null).

    Why codes: the channels are cast once to categorical codes and each phase's weight is a numpy lookup
    by code; a text lookup per phase hashes every session again (3 times as slow with trained weights).
    Codes and names come from the one cast series: the codes of separate casts need not agree.
    """
    listed = {phase: weights for phase, weights in params.channel_weights.items() if weights}
    if not listed:
        return {}
    channels = sessions["channel_name"].cast(pl.Categorical)
    present = channels.unique().drop_nulls()
    names, name_codes = present.cast(pl.String).to_list(), present.to_physical().to_numpy()
    null_code = int(name_codes.max(initial=0)) + 1
    codes = channels.to_physical().fill_null(null_code).to_numpy()
    tables = {phase: np.ones(null_code + 1) for phase in listed}
    for phase, weights in listed.items():
        tables[phase][name_codes] = [weights.get(name, 1.0) for name in names]
    return {phase: pl.Series(phase, table.take(codes)) for phase, table in tables.items()}


def _normalised(frame: pl.DataFrame, column: str) -> pl.Expr:
    """``column`` divided by its journey's total (0 in a journey without mass)."""
    total = journey_totals(frame, column)
    return pl.when(total > 0).then(pl.col(column) / total).otherwise(0.0)


def timed_sessions(journeys: pl.DataFrame, *, to_conversion_time: bool = False) -> pl.DataFrame:
    """Sessions in journey order with ``gap_hours`` (null on a first session), ``hours_to_conversion`` and
    ``closer_eligible``: the inputs of the membership curves, shared with training and calibration.

    Time to conversion is measured to the journey's last (conversion) session, as the IHC service measures
    it: a request carries the sessions only, never the conversion's own time, so the same journey gets the
    same credit here and from the service. ``to_conversion_time`` measures to ``conv_ts`` instead (training
    learns how long after the last session conversions come).
    """
    ts = pl.col("_ts")
    converted = parse_timestamp("conv_ts") if to_conversion_time else ts.max().over(JOURNEY)
    return (
        journey_frame(journeys)
        .with_columns(_ts=parse_timestamp("timestamp"))
        .with_columns(
            gap_hours=hours_between(ts, previous_in_journey(ts)),
            hours_to_conversion=hours_between(converted, ts).clip(0.0),
            closer_eligible=(pl.col("closer_engagement") == 1) | (pl.col("conversion") == 1),
        )
        .drop("_ts")  # freed now, its memory serves the phases
    )


def initializer_membership(params: IHCParameters) -> pl.Expr:
    """1 on a first session, the initializer curve of the gap on a later one."""
    gap = pl.col("gap_hours")
    return pl.when(gap.is_null()).then(1.0).otherwise(params.initializer.of_hours(gap))


def closer_membership(params: IHCParameters) -> pl.Expr:
    """The closer curve of the time to the conversion on closer-eligible sessions, else 0."""
    eligible = pl.col("closer_eligible").cast(pl.Float64)
    return eligible * params.closer.of_hours(pl.col("hours_to_conversion"))


def holder_eligible() -> pl.Expr:
    """1.0 on holder-engaged sessions of journeys of two or more sessions (a one-session journey has no
    holder, as the API answers), else 0.0."""
    return ((pl.col("holder_engagement") == 1) & (pl.col("length") >= 2)).cast(pl.Float64)


def holder_membership(params: IHCParameters) -> pl.Expr:
    """The holder surface of the session's normalised initializer and closer, on holder-eligible sessions."""
    return holder_eligible() * params.holder.expr(pl.col("initializer"), pl.col("closer"))


def phase_values(sessions: pl.DataFrame, params: IHCParameters) -> pl.DataFrame:
    """Add the raw phase values (memberships times channel weights) and the per-journey normalised phases.

    Why two passes: the holder depends on the session's normalised initializer and closer shares.
    """
    weights = session_channel_weights(sessions, params)
    raw = {"initializer": initializer_membership(params), "closer": closer_membership(params)}
    ends = _with_phases(sessions, weights, raw)
    return _with_phases(ends, weights, {"holder": holder_membership(params)}).select(
        *sessions.columns, *(f"raw_{phase}" for phase in PHASES), *PHASES
    )


def _with_phases(frame: pl.DataFrame, weights: dict[str, pl.Series], raw: dict[str, pl.Expr]) -> pl.DataFrame:
    weighted = frame.with_columns(
        (value * weights.get(phase, 1.0)).alias(f"raw_{phase}") for phase, value in raw.items()
    )
    return weighted.with_columns(_normalised(weighted, f"raw_{phase}").alias(phase) for phase in raw)


def combined_ihc(frame: pl.DataFrame, params: IHCParameters) -> pl.Series:
    """``ihc`` from the three phases of ``frame``; without holder mass the weights cover the other two.

    Why numpy, one operation at a time: as one Polars expression, a session's ``ihc`` could differ in its last
    bit with the other journeys of its frame (19 of 5,607 sessions attributed all at once or 7 journeys at a
    time), so a daily run and a whole-range run stored different credit for the same journey. Each numpy
    operation is exactly rounded, element by element, wherever the element stands.
    """
    p = params
    holder_weight = np.where(journey_totals(frame, "holder").to_numpy() > 0, p.holder_weight, 0.0)
    initializer, holder, closer = (frame[phase].cast(pl.Float64).to_numpy() for phase in PHASES)
    weighted = p.initializer_weight * initializer + holder_weight * holder + p.closer_weight * closer
    return pl.Series("ihc", weighted / (p.initializer_weight + holder_weight + p.closer_weight))


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
        return phases.select("conv_id", "session_id", *PHASES, combined_ihc(phases, self.parameters))


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
    return moved.with_columns(combined_ihc(moved, parameters)).select(credits.columns)
