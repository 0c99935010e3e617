"""How report rows are written as CSV text, for the CSV file and the dashboard's download alike.

Why here: the file's writer and the page that offers the rows shown as CSV must write the same cells (fixed
decimals, empty for undefined, no spreadsheet formulas), and the page cannot import the files' module, which
imports it.
"""

from __future__ import annotations

import polars as pl

DECIMALS = 4
FORMULA_START = r"^([=+\-@\t\r])"
"""Characters that make a spreadsheet treat a cell as a formula (OWASP's CSV-injection list)."""


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix text cells that start like a spreadsheet formula with a single quote."""
    return frame.with_columns(pl.col(pl.String).str.replace(FORMULA_START, "'${1}"))
