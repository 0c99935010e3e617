"""The dialect profiles: Redshift's SQL stays inside what Redshift supports, and means what the others mean.

The whole pipeline also runs with the Redshift profile on the real PostgreSQL server (the ``redshift-sql``
backend of every ``make_db`` test); these tests check the profile itself.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date, datetime
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import inspect, text
from sqlalchemy.schema import CreateTable

from attribution.errors import ConfigError
from attribution.journeys import JourneyOptions, journey_sql
from attribution.paths import null_paths_sql
from attribution.warehouse.dialects import PROFILES, profile_named, profile_of
from attribution.warehouse.engine import connect
from attribution.warehouse.schema import prepare_warehouse
from attribution.warehouse.sources import Sources
from attribution.warehouse.tables import INPUT_INDEXES, INPUT_TABLES, JOURNEY_INDEXES, OUTPUT_TABLES
from tests.builders import Case

REDSHIFT = PROFILES["redshift"]
REDSHIFT_SOURCES = Sources.canonical(REDSHIFT)
ROW_VALUE = re.compile(r"\)\s*[<>]=?\s*\(")
"""A tuple compared with a tuple: ``(a, b) < (x, y)``."""
POSTGRESQL_ONLY = ("ON CONFLICT", "::", "pg_advisory", "FROM STDIN", "RETURNING", "ILIKE", "DISTINCT ON")

ALL_OPTIONS = [
    JourneyOptions(lookback_days=days, drop_impressions=drop, only_unattributed=only)
    for days, drop, only in product((None, 30), (False, True), (False, True))
]


@pytest.mark.parametrize("options", ALL_OPTIONS)
def test_the_redshift_journey_and_path_sql_has_no_row_values_or_postgresql_only_syntax(options):
    for sql in (journey_sql(REDSHIFT_SOURCES, options), null_paths_sql(REDSHIFT_SOURCES, options)):
        assert not ROW_VALUE.search(sql), sql
        assert not [word for word in POSTGRESQL_ONLY if word.lower() in sql.lower()]


def test_sqlite_and_postgresql_keep_row_values_for_the_keyset():
    for name in ("sqlite", "postgresql"):
        assert ROW_VALUE.search(journey_sql(Sources.canonical(PROFILES[name]), JourneyOptions()))


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


CALENDAR_EDGES = (
    "2023-09-05",
    "2024-02-29",
    "2023-02-29",
    "2023-04-31",
    "2023-13-01",
    "2023-00-10",
    "2023-01-00",
    "1900-02-29",
    "2000-02-29",
    "0001-01-01",
    "9999-12-31",
    "2023-9-05",
    "2023-09-05T10:00",
    "2023-09-05 ",
    " 2023-09-05",
    "+2023-09-05",
    "2023/09/05",
    "now",
    "2460000",
    "00:00:00",
    "23:59:59",
    "24:00:00",
    "23:60:00",
    "23:59:60",
    "9:30:00",
    "09:30",
    "09:30:00.5",
    "09:30:00Z",
    "09:30:00-05:00",
    "29:00:00",
)


def _calendar(value: str, form: str) -> bool:
    """Python's answer: the exact digits of ``form`` naming a real day or time of day."""
    pattern = r"\d{4}-\d{2}-\d{2}" if form == "%Y-%m-%d" else r"\d{2}:\d{2}:\d{2}"
    try:
        return re.fullmatch(pattern, value, re.ASCII) is not None and bool(datetime.strptime(value, form))
    except ValueError:
        return False


GRID = [
    *(f"{y}-{m:02}-{d:02}" for y in (1900, 2000, 2023, 2024) for m in range(14) for d in range(33)),
    *(f"{h:02}:{m:02}:{s:02}" for h in range(26) for m in (0, 59, 60) for s in (0, 59, 60)),
]
"""Every month and day number around the calendar's limits, in leap and common years, and times around theirs."""


@pytest.mark.parametrize("warehouse", ["sqlite", "postgresql"])
def test_the_date_and_time_rules_agree_with_the_calendar(warehouse, tmp_path, postgres_url):
    """SQLite's date rule asks its own calendar, the others spell it out: each must be Python's calendar."""
    values = [*CALENDAR_EDGES, *GRID]
    engine = connect(str(tmp_path / "rules.db") if warehouse == "sqlite" else postgres_url, must_exist=False)
    profile = profile_of(engine)
    rules = (
        f"CASE WHEN {profile.is_date('v')} THEN 1 ELSE 0 END, "
        f"CASE WHEN {profile.is_time('v')} THEN 1 ELSE 0 END"
    )
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE rule_values (v TEXT)"))
        conn.execute(text("INSERT INTO rule_values VALUES (:v)"), [{"v": v} for v in values])
        got = {v: (bool(d), bool(t)) for v, d, t in conn.execute(text(f"SELECT v, {rules} FROM rule_values"))}
    engine.dispose()
    assert got == {v: (_calendar(v, "%Y-%m-%d"), _calendar(v, "%H:%M:%S")) for v in values}


SHIFTS = [("2023-09-05", 2), ("2023-09-05", -1), ("9999-12-30", 1), ("9999-12-30", 2), ("9999-12-31", 1)]
SHIFTS += [("0001-01-02", -1), ("0001-01-01", -1)]
DAY_PROBES = ("0001-01-01", "0001-01-01 00:00:00", "2023-09-06", "9999-12-31", "9999-12-31 23:59:59")


@pytest.mark.parametrize("warehouse", ["sqlite", "postgresql"])
def test_a_day_text_sorts_as_its_day_even_beyond_the_calendar(warehouse, tmp_path, postgres_url):
    """A range's bound a day on (``Sources.day_range``) compares text dates and timestamps as their days
    compare, at the first and last accepted dates too, where the day it names has no four-digit year."""
    engine = connect(str(tmp_path / "days.db") if warehouse == "sqlite" else postgres_url, must_exist=False)
    profile = profile_of(engine)
    with engine.connect() as conn:
        got = {
            (day, days): conn.execute(text(f"SELECT {profile.day_text(':day', days)}"), {"day": day}).scalar()
            for day, days in SHIFTS
        }
    engine.dispose()
    for (day, days), bound in got.items():
        ordinal = date.fromisoformat(day).toordinal() + days  # 0 or beyond the last: no date of the calendar
        for probe in DAY_PROBES:
            earlier = date.fromisoformat(probe[:10]).toordinal() < ordinal
            assert (probe < bound) == earlier, f"{probe} < {bound} ({day} {days:+d} days)"


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
    journeys, wanted = ({ix.name for ix in indexes} for indexes in (JOURNEY_INDEXES, INPUT_INDEXES))
    if not profile_of(engine).indexes:  # Redshift: sort keys, never an index, never a note
        assert prepare_warehouse(engine, create_indexes=True, bounded=True) == []
        assert not wanted & _index_names(engine)
        return
    if (
        engine.dialect.name == "sqlite"
    ):  # an open range reads through the journeys' only; a bounded run adds its own
        assert prepare_warehouse(engine) == [] and wanted & _index_names(engine) == journeys
        assert prepare_warehouse(engine, bounded=True) == [] and wanted <= _index_names(engine)
        return
    notes = prepare_warehouse(engine, bounded=True)
    assert not wanted & _index_names(engine)
    assert len(notes) == 1 and "--create-indexes" in notes[0] and all(name in notes[0] for name in wanted)
    assert prepare_warehouse(engine, create_indexes=True, bounded=True) == []
    assert wanted <= _index_names(engine)
    assert prepare_warehouse(engine, bounded=True) == []  # found now: nothing to say
    engine.dispose()
