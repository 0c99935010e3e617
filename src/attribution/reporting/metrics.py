"""CPO and ROAS, defined once for the files, the dashboard and the CLI's tables.

Why one place: an undefined ratio is a null, never ``inf`` or ``0``, everywhere a ratio is shown; three
copies of the rule would drift. Both ratios are about money spent, so both need spend: a channel without
cost has no CPO (its orders are not free, they are not bought) and no ROAS. The dashboard recomputes them in
the browser for the dates a reader selects, from ``RATIOS`` and ``SPEND`` as this module gives them.
"""

from __future__ import annotations

import polars as pl

SPEND = "cost"
RATIOS = {"CPO": ("cost", "ihc"), "ROAS": ("ihc_revenue", "cost")}
"""Each ratio's numerator and denominator; it is defined where spend and its denominator are positive."""


def _ratio(numerator: str, denominator: str) -> pl.Expr:
    """``numerator / denominator``, null unless spend and the denominator are positive."""
    defined = (pl.col(SPEND) > 0) & (pl.col(denominator) > 0)
    return pl.when(defined).then(pl.col(numerator) / pl.col(denominator))


def with_ratios(frame: pl.DataFrame) -> pl.DataFrame:
    """Add CPO = cost / ihc and ROAS = ihc_revenue / cost (null where undefined)."""
    return frame.with_columns(**{name: _ratio(*terms) for name, terms in RATIOS.items()})
