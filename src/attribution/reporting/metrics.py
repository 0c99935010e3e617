"""CPO and ROAS, defined once for the files, the dashboard and the CLI's tables.

Why one place: an undefined ratio (no credit, no cost) is a null, never ``inf`` or ``0``, everywhere a
ratio is shown; three copies of the rule would drift.
"""

from __future__ import annotations

import polars as pl

RATIO_COLUMNS = ("CPO", "ROAS")


def with_ratios(frame: pl.DataFrame) -> pl.DataFrame:
    """Add CPO = cost / ihc and ROAS = ihc_revenue / cost, null where the denominator is not positive."""
    return frame.with_columns(
        CPO=pl.when(pl.col("ihc") > 0).then(pl.col("cost") / pl.col("ihc")),
        ROAS=pl.when(pl.col("cost") > 0).then(pl.col("ihc_revenue") / pl.col("cost")),
    )


def totals_with_ratios(frame: pl.DataFrame) -> dict[str, float | None]:
    """Cost, credit and revenue summed over ``frame``, with their CPO and ROAS (``None``: undefined)."""
    sums = frame.select(pl.col("cost", "ihc", "ihc_revenue").sum().cast(pl.Float64))
    return with_ratios(sums).row(0, named=True)
