"""CPO and ROAS, defined once for the files, the dashboard, the CLI's tables and the warehouse's view.

Why one place: an undefined ratio (no credit, no cost) is a null, never ``inf`` or ``0``, everywhere a
ratio is shown; three copies of the rule would drift. The frames' ratios (``with_ratios``) and the view's SQL
(``ratio_view_sql``) are both written from ``RATIOS``.
"""

from __future__ import annotations

import polars as pl
from sqlalchemy import Dialect, Table, case, select

RATIOS = {"CPO": ("cost", "ihc"), "ROAS": ("ihc_revenue", "cost")}
"""Each ratio as (numerator, denominator): undefined (null) where the denominator is not positive."""
RATIO_COLUMNS = tuple(RATIOS)


def with_ratios(frame: pl.DataFrame) -> pl.DataFrame:
    """Add CPO = cost / ihc and ROAS = ihc_revenue / cost, null where the denominator is not positive."""
    return frame.with_columns(
        **{
            name: pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den))
            for name, (num, den) in RATIOS.items()
        }
    )


def ratio_view_sql(table: Table, dialect: Dialect) -> str:
    """A SELECT of ``table``'s columns with the ratios beside them, named in lower case (``cpo``, ``roas``:
    no quotes needed in any warehouse's SQL), as literal SQL for a view. Both operands are floating point,
    so a plain ``/`` divides as Polars does, to the same bits."""
    ratios = [
        case((table.c[den] > 0, table.c[num].op("/")(table.c[den]))).label(name.lower())
        for name, (num, den) in RATIOS.items()
    ]
    query = select(*table.columns, *ratios)
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def totals_with_ratios(frame: pl.DataFrame) -> dict[str, float | None]:
    """Cost, credit and revenue summed over ``frame``, with their CPO and ROAS (``None``: undefined)."""
    sums = frame.select(pl.col("cost", "ihc", "ihc_revenue").sum().cast(pl.Float64))
    return with_ratios(sums).row(0, named=True)
