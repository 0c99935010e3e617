"""Differential check: the same run on SQLite and on PostgreSQL gives the same tables and the same CSV."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from attribution import load_settings, run
from attribution.errors import ConfigError, InputError
from attribution.sample_data.generate import generate_database
from attribution.warehouse.copy_db import copy_inputs
from attribution.warehouse.engine import connect
from attribution.warehouse.schema import create_output_tables
from tests.builders import Case, Conversion, Session, write_case
from tests.cases import PAID
from tests.oracle import assert_same_results


def test_sqlite_and_postgresql_give_the_same_tables_and_csv(tmp_path: Path, postgres_url: str):
    sqlite_db = str(tmp_path / "case.db")
    write_case(sqlite_db, PAID)
    write_case(postgres_url, PAID)
    for db, out in ((sqlite_db, "sqlite"), (postgres_url, "postgresql")):
        run(load_settings(db=db, out=str(tmp_path / out), start="2023-09-01", end="2023-09-06"))
    assert_same_results(tmp_path, sqlite_db, postgres_url)


def test_a_generated_database_copied_to_postgresql_gives_the_same_tables_and_csv(
    tmp_path: Path, postgres_url: str
):
    sqlite_db = tmp_path / "generated.db"
    generate_database(sqlite_db, sessions=20_000, conversions=400, days=4, seed=3)
    copied = copy_inputs(str(sqlite_db), postgres_url, chunk_rows=7_000)
    assert copied["session_sources"] == 20_000 and copied["conversions"] == 400
    assert vacuumed_and_analyzed(postgres_url) == {"session_sources", "conversions", "session_costs"}
    for db, out in ((str(sqlite_db), "sqlite"), (postgres_url, "postgresql")):
        run(load_settings(db=db, out=str(tmp_path / out), model="ihc"))
    assert_same_results(tmp_path, str(sqlite_db), postgres_url)


def test_copying_into_a_database_that_has_input_tables_is_refused(tmp_path: Path, postgres_url: str):
    source = str(tmp_path / "case.db")
    write_case(source, PAID)
    write_case(postgres_url, PAID)
    with pytest.raises(ConfigError, match="already has input table"):
        copy_inputs(source, postgres_url)


def test_a_copy_the_target_refuses_names_the_table_and_leaves_the_target_as_it_was(
    tmp_path: Path, postgres_url: str
):
    source = str(tmp_path / "case.db")
    write_case(source, PAID, keyed=False)
    with (
        closing(sqlite3.connect(source)) as con,
        con,
    ):  # a duplicate session id, which the target's key refuses
        con.execute("INSERT INTO session_sources SELECT * FROM session_sources LIMIT 1")
    with pytest.raises(
        InputError, match=r"^Cannot copy session_sources into the target \(duplicate key"
    ) as refused:
        copy_inputs(source, postgres_url)
    assert len(str(refused.value).splitlines()) == 1
    engine = connect(postgres_url)
    try:
        assert not set(inspect(engine).get_table_names()) & {
            "session_sources",
            "conversions",
            "session_costs",
        }
    finally:
        engine.dispose()
    with closing(sqlite3.connect(source)) as con, con:  # fixed at the source, the next copy goes through
        con.execute("DELETE FROM session_sources WHERE rowid = (SELECT MAX(rowid) FROM session_sources)")
    assert copy_inputs(source, postgres_url)["session_sources"] == len(PAID.sessions)


TIED = Case(
    sessions=[
        Session("a_b", "u1", "2023-09-01 10:00:00", "Zeta Ads", cost=1.0),
        Session("aB", "u1", "2023-09-01 10:00:00", "affiliate", cost=2.0),
        Session("Zed", "u1", "2023-09-01 09:00:00", "Referral"),
    ],
    conversions=[
        Conversion("c_1", "u1", "2023-09-01 12:00:00"),
        Conversion("cA", "u1", "2023-09-01 12:00:00"),
    ],
)
"""Two sessions at the same second, and two conversions: ids and channels whose byte order (``aB`` < ``a_b``,
``Zeta`` < ``affiliate``) differs from a linguistic collation's."""


@pytest.mark.parametrize("model", ["last-touch", "first-touch", "position-based", "ihc"])
def test_a_linguistic_collation_on_postgresql_changes_no_credit_and_no_csv_byte(
    tmp_path: Path, postgres_url: str, model: str
):
    sqlite_db = str(tmp_path / "case.db")
    write_case(sqlite_db, TIED)
    write_case(postgres_url, TIED)
    engine = connect(postgres_url)
    create_output_tables(engine)
    with engine.begin() as conn:
        for table, column in (
            ("session_sources", "session_id"),
            ("session_sources", "channel_name"),
            ("conversions", "conv_id"),
            ("channel_reporting", "channel_name"),
        ):
            conn.execute(text(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE text COLLATE "en-US-x-icu"'))
        assert conn.scalar(text("SELECT 'a_b' < 'aB' COLLATE \"en-US-x-icu\""))  # the orders differ
    engine.dispose()
    for db, out in ((sqlite_db, "sqlite"), (postgres_url, "postgresql")):
        run(load_settings(db=db, out=str(tmp_path / out), model=model))
    assert_same_results(tmp_path, sqlite_db, postgres_url)


def table_statistics(db: str, column: str, where: str = "TRUE") -> dict[str, object]:
    """One column of ``pg_stat_user_tables`` for the tables of the URL's schema that match ``where``."""
    engine = connect(db)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT relname, {column} FROM pg_stat_user_tables "
                f"WHERE schemaname = current_schema() AND {where}"
            )
        ).all()
    engine.dispose()
    return dict(rows)


def vacuumed_and_analyzed(db: str) -> set[str]:
    """The tables of the URL's schema that PostgreSQL has vacuumed and analyzed (statistics for the planner,
    a visibility map for index-only scans)."""
    return set(table_statistics(db, "relid", "last_vacuum IS NOT NULL AND last_analyze IS NOT NULL"))


def test_allowed_indexes_come_with_fresh_statistics_and_a_whole_table_replace_leaves_no_dead_rows(
    tmp_path: Path, postgres_url: str
):
    write_case(postgres_url, PAID)
    assert vacuumed_and_analyzed(postgres_url) == set()
    for _ in range(2):  # an open range: the rerun replaces every stored credit
        run(load_settings(db=postgres_url, out=str(tmp_path), create_indexes=True))
    assert vacuumed_and_analyzed(postgres_url) >= {"session_sources", "conversions", "session_costs"}
    deleted = table_statistics(postgres_url, "n_tup_del")["attribution_customer_journey"]
    assert deleted == 0  # TRUNCATE, not a DELETE of every row
