"""The dialect profiles: Redshift's SQL stays inside what Redshift supports, and means what the others mean.

The whole pipeline also runs with the Redshift profile on the real PostgreSQL server (the ``redshift-sql``
backend of every ``make_db`` test); these tests check the profile itself.
"""

from __future__ import annotations

import re
import sqlite3
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import inspect
from sqlalchemy.schema import CreateTable

from attribution.errors import ConfigError
from attribution.journeys import JourneyOptions, journey_sql
from attribution.pipeline.paths import null_paths_sql
from attribution.warehouse.dialects import PROFILES, profile_named, profile_of
from attribution.warehouse.engine import connect
from attribution.warehouse.schema import prepare
from attribution.warehouse.tables import INPUT_INDEXES, INPUT_TABLES, OUTPUT_TABLES
from tests.builders import Case

REDSHIFT = PROFILES["redshift"]
ROW_VALUE = re.compile(r"\)\s*[<>]=?\s*\(")
"""A tuple compared with a tuple: ``(a, b) < (x, y)``."""
POSTGRESQL_ONLY = ("ON CONFLICT", "::", "pg_advisory", "FROM STDIN", "RETURNING", "ILIKE", "DISTINCT ON")

ALL_OPTIONS = [
    JourneyOptions(lookback_days=days, drop_impressions=drop, only_unattributed=only)
    for days, drop, only in product((None, 30), (False, True), (False, True))
]


@pytest.mark.parametrize("options", ALL_OPTIONS)
def test_the_redshift_journey_and_path_sql_has_no_row_values_or_postgresql_only_syntax(options):
    for sql in (journey_sql(REDSHIFT, options), null_paths_sql(REDSHIFT, options)):
        assert not ROW_VALUE.search(sql), sql
        assert not [word for word in POSTGRESQL_ONLY if word.lower() in sql.lower()]


def test_sqlite_and_postgresql_keep_row_values_for_the_keyset():
    for name in ("sqlite", "postgresql"):
        assert ROW_VALUE.search(journey_sql(PROFILES[name], JourneyOptions()))


values = st.tuples(st.integers(0, 3), st.sampled_from(["", "a", "b"]), st.integers(0, 3))


@given(left=values, right=values, op=st.sampled_from(["<", ">"]))
def test_a_spelled_out_comparison_orders_tuples_as_row_values_do(left, right, op):
    columns, params = ("l0", "l1", "l2"), (":r0", ":r1", ":r2")
    spelled = REDSHIFT.compare(op, columns, params)
    tuples = PROFILES["sqlite"].compare(op, columns, params)
    bound = {f"l{i}": v for i, v in enumerate(left)} | {f"r{i}": v for i, v in enumerate(right)}
    query = "SELECT ({}) , ({}) FROM (SELECT :l0 AS l0, :l1 AS l1, :l2 AS l2)"
    with sqlite3.connect(":memory:") as con:
        got_spelled, got_tuples = con.execute(query.format(spelled, tuples), bound).fetchone()
    assert bool(got_spelled) == bool(got_tuples) == ((left < right) if op == "<" else (left > right))


def test_days_before_is_the_same_instant_on_sqlite_and_in_postgresql_syntax():
    assert PROFILES["sqlite"].days_before("ts", 30) == "datetime(ts, '-30 days')"
    assert REDSHIFT.days_before("ts", 7) == PROFILES["postgresql"].days_before("ts", 7)
    assert "INTERVAL '7 days'" in REDSHIFT.days_before("ts", 7)


def test_redshift_urls_go_through_the_redshift_dialect_without_connecting():
    engine = connect("redshift+redshift_connector://analyst:s3cret@cluster.example.com:5439/dev")
    assert engine.dialect.name == "redshift"
    assert profile_of(engine) is REDSHIFT
    engine.dispose()


def test_redshift_tables_keep_long_text_out_of_varchar_256():
    engine = connect("redshift+redshift_connector://analyst@cluster.example.com:5439/dev")
    ddl = "\n".join(str(CreateTable(table).compile(dialect=engine.dialect)) for table in OUTPUT_TABLES)
    assert "summary VARCHAR(65535)" in ddl and "parameters VARCHAR(65535) NOT NULL" in ddl
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql+pymysql://root:s3cret@localhost/test", "Unsupported warehouse 'mysql'"),
        (
            "redshift://analyst:s3cret@cluster.example.com:5439/dev",
            "(No module named psycopg2): install attribution-pipeline[redshift]",
        ),
    ],
)
def test_an_unsupported_or_uninstalled_warehouse_is_one_line_without_the_password(url, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        connect(url)
    assert "s3cret" not in str(caught.value) and "\n" not in str(caught.value)


def test_an_unknown_profile_names_the_supported_ones():
    with pytest.raises(ConfigError, match="postgresql, redshift, sqlite"):
        profile_named("oracle")


def _index_names(engine) -> set[str]:
    return {
        ix["name"] for table in (t.name for t in INPUT_TABLES) for ix in inspect(engine).get_indexes(table)
    }


def test_indexes_are_added_to_a_server_warehouse_only_when_allowed(make_db):
    engine = connect(make_db(Case()))
    wanted = {ix.name for ix in INPUT_INDEXES}
    if not profile_of(engine).indexes:  # Redshift: sort keys, never an index, never a note
        assert prepare(engine, create_indexes=True) == []
        assert not wanted & _index_names(engine)
        return
    if engine.dialect.name == "sqlite":
        assert prepare(engine) == [] and wanted <= _index_names(engine)
        return
    notes = prepare(engine)
    assert not wanted & _index_names(engine)
    assert len(notes) == 1 and "--create-indexes" in notes[0]
    assert prepare(engine, create_indexes=True) == []
    assert wanted <= _index_names(engine)
    assert prepare(engine) == []  # found now: nothing to say
    engine.dispose()
