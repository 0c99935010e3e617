"""The warehouse view for BI tools that read the database directly: ``channel_reporting`` with CPO and ROAS,
undefined where ``metrics.with_ratios`` leaves them undefined, on every warehouse."""

from __future__ import annotations

import polars as pl

from attribution import load_settings, run
from attribution.reporting.channel_report import REPORT_VIEW
from attribution.reporting.metrics import with_ratios
from attribution.warehouse.engine import open_engine
from tests.cases import PAID

NUMBERS = {"cost": pl.Float64, "ihc": pl.Float64, "ihc_revenue": pl.Float64}
KEY = {"channel_name": pl.String, "date": pl.String, "model": pl.String}


def read(db: str, sql: str, schema: dict) -> pl.DataFrame:
    with open_engine(db) as engine, engine.connect() as conn:
        rows = conn.exec_driver_sql(sql).fetchall()
    return pl.DataFrame(rows, schema=schema, orient="row").sort("date", "channel_name")


def test_the_view_gives_the_ratios_the_files_give_on_the_same_rows(make_db, tmp_path):
    db = make_db(PAID)
    run(load_settings(db=db, out=str(tmp_path), model="linear", formats=("csv",)))
    columns = ", ".join([*KEY, *NUMBERS])
    view = read(
        db,
        f"SELECT {columns}, cpo, roas FROM {REPORT_VIEW}",
        {**KEY, **NUMBERS, "CPO": pl.Float64, "ROAS": pl.Float64},
    )
    table = with_ratios(read(db, f"SELECT {columns} FROM channel_reporting", {**KEY, **NUMBERS}))
    assert view.equals(table)  # the same bits, nulls where undefined
    assert view["CPO"].null_count() and view["ROAS"].null_count()  # PAID has days without orders or spend
    assert set(view["model"]) == {"linear"}
