"""The SQLite cost scan reads every session whatever the table's row layout: negative, hashed, sparse or
gapped rowids, an ``INTEGER PRIMARY KEY`` of its own, or no rowid at all (``WITHOUT ROWID``). Each layout's
report cost equals SQLite's own join of the same rows."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution import load_settings, run
from attribution.reporting import channel_report
from attribution.warehouse.engine import open_engine
from tests.builders import Session, write_case
from tests.cases import PAID
from tests.oracle import read_tables, session_cost_by_date
from tests.strategies import cases

COLUMNS = (
    "session_id, user_id, event_date, event_time, channel_name, "
    "holder_engagement, closer_engagement, impression_interaction"
)
TYPES = "user_id TEXT, event_date TEXT, event_time TEXT, channel_name TEXT, holder_engagement INTEGER, "
TYPES += "closer_engagement INTEGER, impression_interaction INTEGER"
FORMS = {
    "rowid": f"CREATE TABLE session_sources (session_id TEXT PRIMARY KEY, {TYPES})",
    "integer key": f"CREATE TABLE session_sources (id INTEGER PRIMARY KEY, session_id TEXT UNIQUE, {TYPES})",
    "without rowid": f"CREATE TABLE session_sources (session_id TEXT PRIMARY KEY, {TYPES}) WITHOUT ROWID",
}
"""How a table may hold the sessions: with SQLite's hidden rowid, with an integer key of its own (which is
the rowid), or keyed by ``session_id`` alone."""
JOIN_MICROS = """
SELECT s.channel_name, s.event_date, SUM(CAST(ROUND(COALESCE(c.cost, 0.0) * 1000000) AS INTEGER))
FROM session_sources s LEFT JOIN session_costs c ON c.session_id = s.session_id
GROUP BY 1, 2
"""
"""SQLite's own join: each date and channel's cost in whole millionths."""
CASE = replace(
    PAID,
    sessions=[*PAID.sessions, *(Session(f"q{i}", "u4", "2023-09-03 10:00:00", cost=i) for i in range(9))],
)
"""Enough sessions with a cost that every layout moves some of them."""


def sqlite_join(db: str) -> dict[tuple[str, str], float]:
    with closing(sqlite3.connect(db)) as conn:
        return {(channel, date): micros / 1_000_000 for channel, date, micros in conn.execute(JOIN_MICROS)}


def relaid(db: str, form: str, rowids: list[int]) -> None:
    """``session_sources`` rebuilt as ``form``, its rows (in id order) given ``rowids`` in turn (a table
    without rowid keeps none)."""
    with closing(sqlite3.connect(db)) as conn, conn:
        rows = conn.execute(f"SELECT {COLUMNS} FROM session_sources ORDER BY session_id").fetchall()
        conn.execute("DROP TABLE session_sources")
        conn.execute(FORMS[form])
        key = {"rowid": "rowid, ", "integer key": "id, ", "without rowid": ""}[form]
        marks = ", ".join("?" * (9 if key else 8))
        keyed = [((rowid,) if key else ()) + tuple(row) for rowid, row in zip(rowids, rows, strict=True)]
        conn.executemany(f"INSERT INTO session_sources ({key}{COLUMNS}) VALUES ({marks})", keyed)


def signed_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def _negated(db: str) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE session_sources SET rowid = -rowid WHERE rowid % 2 = 0")


def _hashed_key(db: str) -> None:
    ids = sorted(s.session_id for s in CASE.sessions)
    relaid(db, "integer key", [signed_hash(session_id) for session_id in ids])


def _sparse(db: str) -> None:
    relaid(db, "rowid", [i if i % 4 else 5_000_000_000_000 + i for i in range(len(CASE.sessions))])


def _gapped(db: str) -> None:
    relaid(db, "rowid", [1_000 * i + 7 for i in range(len(CASE.sessions))])


def _without_rowid(db: str) -> None:
    relaid(db, "without rowid", [0] * len(CASE.sessions))


def _column_named_rowid(db: str) -> None:
    """A declared column named ``rowid`` hides the rowid under that name (``_rowid_`` still reads it)."""
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE session_sources SET rowid = -rowid WHERE rowid % 2 = 0")
        conn.execute("ALTER TABLE session_sources ADD COLUMN rowid TEXT")
        conn.execute("UPDATE session_sources SET rowid = 'x'")


LAYOUTS = {
    "negative rowids": _negated,
    "integer primary key of signed 64-bit hashes": _hashed_key,
    "a few rowids near 5e12": _sparse,
    "gaps between rowids": _gapped,
    "without rowid": _without_rowid,
    "a column named rowid": _column_named_rowid,
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("scan_rows", [3, 1_000_000])
def test_an_open_range_reports_the_cost_of_every_session_in_any_layout(
    make_sqlite, tmp_path, monkeypatch, layout, scan_rows
):
    monkeypatch.setattr(channel_report, "SCAN_ROWS", scan_rows)
    monkeypatch.setattr(channel_report, "CHILD_SCAN_ROWS", 0)  # the columnar scan, however small the table
    db = make_sqlite(CASE)
    LAYOUTS[layout](db)
    run(load_settings(db=db, out=str(tmp_path), formats=("csv",)))
    _, report = read_tables(db)
    assert {(channel, date): cost for channel, date, cost, *_ in report} == sqlite_join(db)
    assert sum(row[2] for row in report) == pytest.approx(sum(session_cost_by_date(CASE).values()))


@st.composite
def layouts(draw: st.DrawFn) -> tuple[str, list[int]]:
    """A table form and a distinct rowid for each of up to 14 sessions, drawn from the whole signed 64-bit
    range with clusters (near 0, negative, sparse, near either end)."""
    near = st.sampled_from([0, -(2**63), 2**63 - 1, 5_000_000_000_000, -1_000])
    clustered = st.tuples(near, st.integers(-20, 20)).map(sum).filter(lambda n: -(2**63) <= n < 2**63)
    rowid = st.one_of(st.integers(-(2**63), 2**63 - 1), clustered)
    return draw(st.sampled_from(sorted(FORMS))), draw(st.lists(rowid, min_size=14, max_size=14, unique=True))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases(), layout=layouts(), scan_rows=st.integers(1, 5))
def test_the_cost_scan_equals_sqlite_s_own_join_in_any_row_layout(tmp_path_factory, case, layout, scan_rows):
    db = str(tmp_path_factory.mktemp("layout") / "case.db")
    write_case(db, case)
    form, rowids = layout
    relaid(db, form, rowids[: len(case.sessions)])
    with pytest.MonkeyPatch.context() as patch, open_engine(db) as engine:
        patch.setattr(channel_report, "SCAN_ROWS", scan_rows)
        patch.setattr(channel_report, "CHILD_SCAN_ROWS", 0)
        costs = channel_report.aggregate_session_costs(engine)
    assert {(channel, date): cost for channel, date, cost in costs.rows()} == sqlite_join(db)
