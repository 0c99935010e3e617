"""CPO and ROAS, defined once for the files, the dashboard, the CLI's tables and the warehouse's view.

Why one place: an undefined ratio is a null, never ``inf`` or ``0``, everywhere a ratio is shown; three
copies of the rule would drift. Both ratios are about money spent, so both need spend: a channel without
cost has no CPO (its orders are not free, they are not bought) and no ROAS. The frames' ratios
(``with_ratios``) and the view's SQL (``ratio_view_sql``) are both written from ``RATIOS`` and ``SPEND``; the
dashboard recomputes them in the browser for the dates a reader selects, from the same two names.
"""

from __future__ import annotations

import polars as pl
from sqlalchemy import Dialect, Table, and_, case, select

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


def ratio_view_sql(table: Table, dialect: Dialect) -> str:
    """A SELECT of ``table``'s columns with the ratios beside them, named in lower case (``cpo``, ``roas``:
    no quotes needed in any warehouse's SQL), as literal SQL for a view. Both operands are floating point,
    so a plain ``/`` divides as Polars does, to the same bits."""
    ratios = [
        case((and_(table.c[SPEND] > 0, table.c[den] > 0), table.c[num].op("/")(table.c[den]))).label(
            name.lower()
        )
        for name, (num, den) in RATIOS.items()
    ]
    query = select(*table.columns, *ratios)
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
