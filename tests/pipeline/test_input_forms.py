"""Inputs in the forms warehouses hold them: views in place of tables, column names in another case."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy import text

from attribution import load_settings, run
from attribution.warehouse.engine import connect
from attribution.warehouse.tables import INPUT_TABLES
from tests.cases import PAID
from tests.oracle import check_invariants


def test_input_views_are_read_as_tables_are(make_db, tmp_path: Path):
    db = make_db(PAID)
    engine = connect(db)
    with engine.begin() as conn:
        for table in INPUT_TABLES:
            conn.execute(text(f"ALTER TABLE {table.name} RENAME TO raw_{table.name}"))
            conn.execute(text(f"CREATE VIEW {table.name} AS SELECT * FROM raw_{table.name}"))
    engine.dispose()
    summary = run(load_settings(db=db, out=str(tmp_path / "out")))
    assert summary.report_rows
    check_invariants(PAID, db)


def test_upper_case_names_on_sqlite_are_the_same_names(make_sqlite, tmp_path: Path):
    """SQLite's names ignore case: ``Session_ID`` is the column ``session_id``."""
    db = make_sqlite(PAID)
    with closing(sqlite3.connect(db)) as con, con:
        for table in INPUT_TABLES:
            columns = ", ".join(f"{c.name} AS {c.name.title()}" for c in table.columns)
            con.execute(f"ALTER TABLE {table.name} RENAME TO old")
            con.execute(f"CREATE TABLE {table.name.upper()} AS SELECT {columns} FROM old")
            con.execute("DROP TABLE old")
    summary = run(load_settings(db=db, out=str(tmp_path / "out")))
    assert summary.report_rows
    check_invariants(PAID, db)
