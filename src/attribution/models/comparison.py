"""Side-by-side comparison of attribution models: channel credit and attributed revenue per model.

Why: models disagree most where it matters (which channel started or closed the journey); a table of the
same journeys under every model shows the size of those disagreements before one model is chosen.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from attribution.models import Attributor, validate_credits

COMPARISON_SCHEMA: dict[str, pl.DataType] = {
    "model": pl.String(),
    "channel_name": pl.String(),
    "credit": pl.Float64(),
    "revenue": pl.Float64(),
    "credit_share": pl.Float64(),
}
"""Long form: one row per model and channel; ``credit`` in conversions, ``credit_share`` of all conversions."""


def compare_models(journeys: pl.DataFrame, models: Mapping[str, Attributor]) -> pl.DataFrame:
    """Attribute ``journeys`` with every model (each checked by ``validate_credits``) and total by channel.

    Returns the long frame (``COMPARISON_SCHEMA``): models in the mapping's order, channels sorted; every
    channel of the journeys appears under every model, with 0 where a model gave it nothing.
    """
    frames = []
    for name, model in models.items():
        credits = model.attribute(journeys)
        validate_credits(journeys, credits)
        frames.append(channel_totals(journeys, credits).sort("channel_name").with_columns(model=pl.lit(name)))
    if not frames:
        return pl.DataFrame(schema=COMPARISON_SCHEMA)
    return pl.concat(frames).select(COMPARISON_SCHEMA.keys())


def channel_totals(journeys: pl.DataFrame, credits: pl.DataFrame) -> pl.DataFrame:
    """One model's credit, attributed revenue and share of all conversions, per channel."""
    keys = ["conv_id", "session_id"]
    joined = credits.select(*keys, "ihc").join(journeys.select(*keys, "channel_name", "revenue"), on=keys)
    return (
        joined.group_by("channel_name")
        .agg(credit=pl.col("ihc").sum(), revenue=(pl.col("ihc") * pl.col("revenue")).sum())
        .with_columns(credit_share=pl.col("credit") / pl.col("credit").sum())
    )


def wide_comparison(comparison: pl.DataFrame, value: str = "credit") -> pl.DataFrame:
    """The long comparison pivoted: one row per channel, one ``value`` column per model (in model order)."""
    models = comparison["model"].unique(maintain_order=True).to_list()
    return (
        comparison.pivot(on="model", index="channel_name", values=value)
        .select("channel_name", *models)
        .sort("channel_name")
    )
