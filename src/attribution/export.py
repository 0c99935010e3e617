"""Exports of the channel report: a CSV with CPO and ROAS that spreadsheets open safely.

Why these rules: an undefined ratio (no credit, no cost) is an empty cell, never ``inf``, ``0`` or
``N/A``, so sums and averages in a spreadsheet stay right; text that a spreadsheet would run as a formula
is prefixed with a quote; rows are sorted and decimals fixed so reruns give byte-identical files.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, select

from attribution.warehouse import channel_reporting

CSV_NAME = "channel_reporting.csv"
DECIMALS = 4
FORMULA_START = r"^([=+\-@\t\r])"
"""Characters that make a spreadsheet treat a cell as a formula (OWASP's CSV-injection list)."""


def read_channel_report(conn: Connection) -> pl.DataFrame:
    """The report table with CPO and ROAS, ordered by date then channel."""
    rows = conn.execute(
        select(channel_reporting).order_by(channel_reporting.c.date, channel_reporting.c.channel_name)
    )
    frame = pl.DataFrame(
        rows.fetchall(),
        schema={
            "channel_name": pl.String,
            "date": pl.String,
            "cost": pl.Float64,
            "ihc": pl.Float64,
            "ihc_revenue": pl.Float64,
        },
        orient="row",
    )
    return frame.with_columns(
        CPO=pl.when(pl.col("ihc") > 0).then(pl.col("cost") / pl.col("ihc")),
        ROAS=pl.when(pl.col("cost") > 0).then(pl.col("ihc_revenue") / pl.col("cost")),
    )


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix text cells that start like a spreadsheet formula with a single quote."""
    return frame.with_columns(pl.col(pl.String).str.replace(FORMULA_START, "'${1}"))


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    """Write atomically (temp file, then rename), so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        neutralise_formulas(frame).write_csv(tmp, float_precision=DECIMALS, null_value="")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def export_channel_report(conn: Connection, out_dir: Path) -> Path:
    """Write the whole channel report as ``channel_reporting.csv`` in ``out_dir``."""
    return write_csv(read_channel_report(conn), out_dir / CSV_NAME)
