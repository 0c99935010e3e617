"""Schema creation and validation on fresh and existing databases."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import polars as pl
import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.schema import CreateIndex

from attribution.errors import ConfigError, DatabaseNotFoundError, SchemaError
from attribution.reporting.sqlite_scan import SESSION_COST_SQL
from attribution.vocabulary import STORED_CREDIT_SCHEMA
from attribution.warehouse.bulk import stream_frames
from attribution.warehouse.engine import connect, redact_url
from attribution.warehouse.schema import (
    SORTER_CACHE_KIB,
    create_output_tables,
    ensure_indexes,
    prepare_warehouse,
    validate_inputs,
)
from attribution.warehouse.tables import INPUT_INDEXES, OUTPUT_TABLES, session_sources
from tests.builders import Case
from tests.cases import TRAPS


def test_output_tables_are_created_with_the_challenge_columns_and_keys(make_db):
    engine = connect(make_db(Case()))
    create_output_tables(engine)
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("attribution_customer_journey")["constrained_columns"] == [
        "conv_id",
        "session_id",
        "model",
        "conv_type_id",
    ]
    assert inspector.get_pk_constraint("channel_reporting")["constrained_columns"] == ["channel_name", "date"]
    assert [c["name"] for c in inspector.get_columns("channel_reporting")] == [
        "channel_name",
        "date",
        "cost",
        "ihc",
        "ihc_revenue",
        "model",
        "conv_type_id",
    ]
    engine.dispose()


def test_existing_output_tables_and_their_rows_are_kept(make_db):
    engine = connect(make_db(Case()))
    create_output_tables(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO channel_reporting VALUES ('Referral', '2023-09-01', 1.0, 0.5, 10.0, 'linear', '')"
            )
        )
    create_output_tables(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM channel_reporting")).scalar() == 1
    engine.dispose()


def test_input_tables_are_never_altered_only_indexed(make_sqlite):
    path = make_sqlite(TRAPS)
    schema_before = (
        sqlite3.connect(path).execute("SELECT sql FROM sqlite_master WHERE type = 'table'").fetchall()
    )
    engine = connect(path)
    create_output_tables(engine)
    ensure_indexes(engine, bounded=True)
    ensure_indexes(engine, bounded=True)  # a second call finds them and does nothing
    with engine.connect() as conn:  # the build's small sorter cache is not left on a pooled connection
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() < -SORTER_CACHE_KIB
    engine.dispose()
    tables = dict(
        sqlite3.connect(path).execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
    )
    assert set(tables) >= {t.name for t in OUTPUT_TABLES}
    assert {sql for (sql,) in schema_before} <= set(tables.values())


def test_a_missing_input_table_is_named(make_db):
    engine = connect(make_db(Case()))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE session_costs"))
    with pytest.raises(SchemaError, match="Input table 'session_costs' is missing"):
        validate_inputs(engine)
    engine.dispose()


def test_a_missing_column_is_named(tmp_path):
    path = tmp_path / "bad.db"
    with sqlite3.connect(path) as con:
        con.executescript(
            "CREATE TABLE session_sources (session_id TEXT, user_id TEXT, event_date TEXT, event_time TEXT,"
            " channel_name TEXT, holder_engagement INT, closer_engagement INT);"
            "CREATE TABLE conversions (conv_id TEXT, user_id TEXT, conv_date TEXT, conv_time TEXT, revenue REAL);"
            "CREATE TABLE session_costs (session_id TEXT, cost REAL);"
        )
    with pytest.raises(SchemaError, match="'session_sources' has no column 'impression_interaction'"):
        validate_inputs(connect(str(path)))


def test_a_missing_database_file_is_an_error_and_is_not_created(tmp_path):
    with pytest.raises(DatabaseNotFoundError, match="not found"):
        connect(str(tmp_path / "nope.db"))
    assert not (tmp_path / "nope.db").exists()


def test_an_unparseable_url_is_a_config_error():
    with pytest.raises(ConfigError, match="Cannot parse database URL"):
        connect("postgresql://user:pw@host:notaport/db")


def test_an_unknown_url_scheme_is_a_config_error():
    with pytest.raises(ConfigError, match="Unsupported warehouse 'nosuchdb'"):
        connect("nosuchdb://host/db")


def test_printed_urls_hide_the_password():
    assert "s3cret" not in redact_url("postgresql+psycopg://user:s3cret@db.example:5432/warehouse")


def test_printed_urls_hide_a_password_in_the_query_string_and_keep_the_rest():
    shown = redact_url("postgresql+psycopg://user@db.example/warehouse?password=s3cret&sslmode=require")
    assert "s3cret" not in shown and "sslmode=require" in shown and "db.example/warehouse" in shown


def test_errors_naming_a_url_hide_a_password_in_its_query_string():
    with pytest.raises(ConfigError) as raised:
        connect("postgresql+nosuchdriver://user@db.example/warehouse?sslpassword=s3cret")
    assert "s3cret" not in str(raised.value) and "db.example" in str(raised.value)


def test_streamed_reads_come_in_parts_of_the_asked_size(make_db):
    engine = connect(make_db(TRAPS))
    query = select(session_sources.c.session_id).order_by(session_sources.c.session_id)
    with engine.connect() as conn:
        every = conn.execute(query).scalars().all()
    parts = list(stream_frames(engine, query, {}, {"session_id": pl.String}, rows=3))
    engine.dispose()
    assert [part.height for part in parts] == [3] * (len(every) // 3) + (
        [len(every) % 3] if len(every) % 3 else []
    )
    assert pl.concat(parts)["session_id"].to_list() == every


SESSION_A1 = ("2023-09-01", "Paid Search Brand")
"""TRAPS' session a1: its date and channel."""


def test_a_credit_table_of_an_earlier_version_gets_the_new_columns_and_keeps_its_rows(make_sqlite, tmp_path):
    """Old rows keep their credit and get their session's date and channel (which the report reads from the
    credit table now); a row whose session is gone keeps NULL; credit made before the model was recorded gets
    the empty label."""
    db = make_sqlite(TRAPS)
    with closing(sqlite3.connect(db)) as con, con:
        con.execute("CREATE TABLE attribution_customer_journey (conv_id TEXT, session_id TEXT, ihc REAL)")
        con.executemany(
            "INSERT INTO attribution_customer_journey VALUES (?, ?, 1.0)", [("old", "a1"), ("gone", "s")]
        )
    engine = connect(db)
    prepare_warehouse(engine)
    engine.dispose()
    with closing(sqlite3.connect(db)) as con:
        columns = [row[1] for row in con.execute("PRAGMA table_info(attribution_customer_journey)")]
        rows = con.execute("SELECT * FROM attribution_customer_journey ORDER BY conv_id").fetchall()
    assert columns == list(STORED_CREDIT_SCHEMA)
    nothing, unlabelled = (None,) * 3, ("", "")
    assert rows == [
        ("gone", "s", 1.0, *unlabelled, *nothing, None, None),
        ("old", "a1", 1.0, *unlabelled, *nothing, *SESSION_A1),
    ]


def _day_cost_plan(engine) -> str:
    """SQLite's plan for a day's session cost (the report's read of a bounded run)."""
    day = SESSION_COST_SQL.format(
        sessions="session_sources s", costs="session_costs c", where="WHERE s.event_date IN ('2023-09-01')"
    )
    with engine.connect() as conn:
        return " ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {day}"))


COST_INDEX_ALONE = "COVERING INDEX ix_attribution_costs_by_session"


def test_a_days_cost_is_read_from_the_cost_index_alone(make_sqlite):
    """With a primary key on ``session_costs`` SQLite's planner looks costs up by that key and then the row
    until the new indexes have statistics; then it reads the covering cost index alone."""
    engine = connect(make_sqlite(TRAPS))
    create_output_tables(engine)
    ensure_indexes(engine, bounded=True)
    assert COST_INDEX_ALONE in _day_cost_plan(engine)
    engine.dispose()


def test_indexes_an_earlier_version_built_without_statistics_get_them(make_sqlite):
    engine = connect(make_sqlite(TRAPS))
    create_output_tables(engine)
    with engine.begin() as conn:
        for ix in INPUT_INDEXES:
            conn.execute(CreateIndex(ix))
    assert COST_INDEX_ALONE not in _day_cost_plan(engine)
    ensure_indexes(engine, bounded=True)
    assert COST_INDEX_ALONE in _day_cost_plan(engine)
    engine.dispose()
