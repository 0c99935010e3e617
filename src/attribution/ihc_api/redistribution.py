"""The optional ``redistribution_parameter``: move the listed channels' phase credit to other sessions.

Why: channels a marketer cannot influence (Direct) should not keep credit that belongs to the touches
that brought the customer. Each listed ("donor") session hands its whole value in that phase to the other,
unlisted sessions of its journey that lie in the allowed direction and whose own value is above the
receive threshold, in proportion to their values; a donor with no such session keeps its credit. Phase
totals are unchanged, so ``ihc`` is recombined with the engine's formula (``attribution.models.ihc``).
"""

from __future__ import annotations

import polars as pl

from attribution.ihc_api.contract import RedistributionParameter, RedistributionRule
from attribution.models.ihc import IHCParameters

_KEYS = ["conv_id", "session_id"]


def redistribute(
    credits: pl.DataFrame,
    journeys: pl.DataFrame,
    parameter: RedistributionParameter,
    parameters: IHCParameters,
) -> pl.DataFrame:
    """Apply each phase's rule to the engine's credits (journey order), then recombine ``ihc``."""
    frame = credits.join(
        journeys.select(*_KEYS, "channel_name"), on=_KEYS, how="left", maintain_order="left"
    ).with_columns(_pos=pl.int_range(pl.len()).over("conv_id"))
    for phase, rule in parameter.rules().items():
        frame = frame.with_columns(_moved(frame, phase, rule))
    return frame.with_columns(combined_ihc(parameters)).select(credits.columns)


def combined_ihc(parameters: IHCParameters) -> pl.Expr:
    """The engine's ihc from the three phases; without holder mass the weights cover the other two."""
    p = parameters
    holder_weight = pl.when(pl.col("holder").sum().over("conv_id") > 0).then(p.holder_weight).otherwise(0.0)
    weighted = (
        p.initializer_weight * pl.col("initializer")
        + holder_weight * pl.col("holder")
        + p.closer_weight * pl.col("closer")
    )
    return (weighted / (p.initializer_weight + holder_weight + p.closer_weight)).alias("ihc")


def _moved(frame: pl.DataFrame, phase: str, rule: RedistributionRule) -> pl.Series:
    """The phase's values after donors handed their value to the eligible receivers."""
    donor = pl.col("channel_name").is_in(rule.redistribution_channel_labels)
    donors = frame.filter(donor & (pl.col(phase) > 0)).select("conv_id", d_pos="_pos", d_val=phase)
    receivers = frame.filter(~donor & (pl.col(phase) > rule.receive_threshold)).select(
        "conv_id", _pos="_pos", r_val=phase
    )
    pairs = (
        donors.join(receivers, on="conv_id")
        .filter(_allowed(rule.direction))
        .with_columns(
            share=pl.col("d_val") * pl.col("r_val") / pl.col("r_val").sum().over("conv_id", "d_pos")
        )
    )
    gained = pairs.group_by("conv_id", "_pos").agg(gain=pl.col("share").sum())
    given = pairs.select("conv_id", _pos="d_pos", give="d_val").unique()
    moved = (
        frame.join(gained, on=["conv_id", "_pos"], how="left", maintain_order="left")
        .join(given, on=["conv_id", "_pos"], how="left", maintain_order="left")
        .select(pl.col(phase) + pl.col("gain").fill_null(0.0) - pl.col("give").fill_null(0.0))
    )
    return moved[phase]


def _allowed(direction: str) -> pl.Expr:
    if direction == "earlier_sessions_only":
        return pl.col("_pos") < pl.col("d_pos")
    if direction == "later_sessions_only":
        return pl.col("_pos") > pl.col("d_pos")
    return pl.lit(True)
