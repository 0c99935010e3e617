"""Side-by-side comparison of attribution models: channel credit and attributed revenue per model.

Why: models disagree most where it matters (which channel started or closed the journey); a table of the
same journeys under every model shows the size of those disagreements before one model is chosen.

Two splits of a path model's credit (docs/models.md, "Two credit splits"): ``journey`` totals the credit each
journey gives its own channels (what a run stores and reports); ``global`` gives each channel its share of all
the channel scores times the conversions (and the revenue), ChannelAttribution's figure. Other models have
only the first.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from attribution.models import Attributor, validate_credits
from attribution.models.path_model import PathModel, global_credit
from attribution.vocabulary import journey_paths

SPLITS = ("journey", "global")

COMPARISON_SCHEMA: dict[str, pl.DataType] = {
    "model": pl.String(),
    "channel_name": pl.String(),
    "credit": pl.Float64(),
    "revenue": pl.Float64(),
    "credit_share": pl.Float64(),
}
"""Long form: one row per model and channel; ``credit`` in conversions, ``credit_share`` of all conversions."""


def compare_models(
    journeys: pl.DataFrame, models: Mapping[str, Attributor], split: str = "journey"
) -> pl.DataFrame:
    """Attribute ``journeys`` with every model (each checked by ``validate_credits``) and total by channel;
    with ``split="global"``, a path model's totals are its global split instead (``global_totals``).

    Returns the long frame (``COMPARISON_SCHEMA``): models in the mapping's order, channels sorted; every
    channel of the journeys appears under every model, with 0 where a model gave it nothing.
    """
    frames = []
    for name, model in models.items():
        if split == "global" and isinstance(model, PathModel):
            totals = global_totals(journeys, model)
        else:
            credits = model.attribute(journeys)
            validate_credits(journeys, credits)
            totals = channel_totals(journeys, credits)
        frames.append(totals.sort("channel_name").with_columns(model=pl.lit(name)))
    if not frames:
        return pl.DataFrame(schema=COMPARISON_SCHEMA)
    return pl.concat(frames).select(COMPARISON_SCHEMA.keys())


def global_totals(journeys: pl.DataFrame, model: PathModel) -> pl.DataFrame:
    """A path model's global split of the journeys' conversions and revenue: each channel's share of all
    channel scores (learned from these journeys unless the model was trained), the journeys' channels first
    (0 where the model scores none) and any channel scored only through the null paths."""
    trained = model if not model.learns_from_journeys else model.trained_on(journey_paths(journeys))
    shares = global_credit(trained.trained_scores, 1.0)
    channels = sorted(set(journeys["channel_name"].unique()) | set(shares))
    conversions = journeys.unique("conv_id")
    share = pl.Series([shares.get(channel, 0.0) for channel in channels], dtype=pl.Float64)
    return pl.DataFrame({"channel_name": channels, "credit_share": share}).select(
        "channel_name",
        credit=pl.col("credit_share") * conversions.height,
        revenue=pl.col("credit_share") * conversions["revenue"].sum(),
        credit_share="credit_share",
    )


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
