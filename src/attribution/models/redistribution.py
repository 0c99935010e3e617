"""The IHC ``redistribution_parameter``: move the listed channels' phase credit to other sessions.

Why: channels a marketer cannot influence (Direct) should not keep credit that belongs to the touches
that brought the customer. Each listed ("donor") session hands its whole value in that phase to the other,
unlisted sessions of its journey that lie in the allowed direction and whose own value is above the
receive threshold, in proportion to their values; a donor with no such session keeps its credit. Phase
totals are unchanged, so ``ihc`` is recombined afterwards with the engine's formula.

Used by the local engine (``attribution.models.ihc``) and by the project's IHC server, whose request contract
takes the rules from here: one implementation, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from attribution.vocabulary import PHASES

Direction = Literal["earlier_sessions_only", "later_sessions_only", "any_session"]


class RedistributionRule(BaseModel):
    """Hand the listed channels' credit in one phase to other sessions of the journey."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    direction: Direction
    receive_threshold: Annotated[float, Field(ge=0, le=1)] = 0.0
    redistribution_channel_labels: list[StrictStr]


class RedistributionParameter(BaseModel):
    """Optional per-phase redistribution rules of a request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initializer: RedistributionRule | None = None
    holder: RedistributionRule | None = None
    closer: RedistributionRule | None = None

    def rules(self) -> dict[str, RedistributionRule]:
        """The phases that have a rule."""
        return {phase: rule for phase in PHASES if (rule := getattr(self, phase)) is not None}


MOVED_SCHEMA: dict[str, pl.DataType] = {
    "channel_name": pl.String(),
    "phase": pl.String(),
    "credit_moved": pl.Float64(),
}
"""Per channel and phase, the phase credit its sessions handed away (in conversions: a journey's phase sums to 1)."""


def redistribute_phases(
    frame: pl.DataFrame, parameter: RedistributionParameter
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply each phase's rule to a frame of phase values (``conv_id``, ``position``, ``channel_name``, phases).

    Returns the frame with the moved values (same rows, same order) and the credit moved (``MOVED_SCHEMA``).
    """
    moved = [pl.DataFrame(schema=MOVED_SCHEMA)]
    for phase, rule in parameter.rules().items():
        values, given = _moved(frame, phase, rule)
        frame = frame.with_columns(values)
        moved.append(given.select(MOVED_SCHEMA.keys()))
    return frame, pl.concat(moved).sort("phase", "channel_name")


def _moved(frame: pl.DataFrame, phase: str, rule: RedistributionRule) -> tuple[pl.Series, pl.DataFrame]:
    """The phase's values after donors handed their value to the eligible receivers, and what each channel gave."""
    donor = pl.col("channel_name").is_in(rule.redistribution_channel_labels)
    donors = frame.filter(donor & (pl.col(phase) > 0)).select(
        "conv_id", d_pos="position", d_val=phase, d_channel="channel_name"
    )
    receivers = frame.filter(~donor & (pl.col(phase) > rule.receive_threshold)).select(
        "conv_id", "position", r_val=phase
    )
    pairs = (
        donors.join(receivers, on="conv_id")
        .filter(_allowed(rule.direction))
        .with_columns(
            share=pl.col("d_val") * pl.col("r_val") / pl.col("r_val").sum().over("conv_id", "d_pos")
        )
    )
    gained = pairs.group_by("conv_id", "position").agg(gain=pl.col("share").sum())
    given = pairs.group_by("conv_id", "d_pos").agg(
        give=pl.col("d_val").first(), channel=pl.col("d_channel").first()
    )
    values = (
        frame.join(gained, on=["conv_id", "position"], how="left", maintain_order="left")
        .join(
            given.select("conv_id", "give", position="d_pos"),
            on=["conv_id", "position"],
            how="left",
            maintain_order="left",
        )
        .select(pl.col(phase) + pl.col("gain").fill_null(0.0) - pl.col("give").fill_null(0.0))
    )
    summary = given.group_by("channel").agg(credit_moved=pl.col("give").sum())
    return values[phase], summary.select(
        channel_name="channel", phase=pl.lit(phase), credit_moved="credit_moved"
    )


def _allowed(direction: str) -> pl.Expr:
    if direction == "earlier_sessions_only":
        return pl.col("position") < pl.col("d_pos")
    if direction == "later_sessions_only":
        return pl.col("position") > pl.col("d_pos")
    return pl.lit(True)
