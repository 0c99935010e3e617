"""Session cost per channel and date: the columnar SQLite path agrees with plain SQL, whatever the chunking, and
runs only where it pays (``CHILD_SCAN_ROWS``)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import polars as pl
import pytest
from sqlalchemy import text

from attribution.reporting import channel_report as report
from attribution.reporting import sqlite_scan
from attribution.warehouse.engine import connect, open_engine
from attribution.warehouse.sources import sources_of
from tests.builders import write_case
from tests.cases import PAID

SCAN_RELATIONS = ("session_sources", "rowid", "session_costs")
"""The scan's relations and rowid for the challenge's tables (``channel_report`` passes them so)."""

SQL_TOTALS = """
SELECT s.channel_name, s.event_date, SUM(COALESCE(c.cost, 0.0))
FROM session_sources s LEFT JOIN session_costs c ON c.session_id = s.session_id
GROUP BY 1, 2 ORDER BY 2, 1
"""


def sql_totals(db: str) -> list[tuple]:
    engine = connect(db)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(SQL_TOTALS))]
    engine.dispose()
    return rows


def columnar_totals(db: str) -> list[tuple]:
    engine = connect(db)
    frame = report.aggregate_session_costs(engine).sort("date", "channel_name")
    engine.dispose()
    return frame.select("channel_name", "date", "cost").rows()


@pytest.fixture
def columnar(monkeypatch):
    """Every SQLite table with a rowid scanned by the columnar scan's child, however small."""
    monkeypatch.setattr(report, "CHILD_SCAN_ROWS", 0)


@pytest.mark.parametrize("scan_rows", [1, 3, 1000])
def test_columnar_session_costs_equal_the_sql_aggregation(make_sqlite, monkeypatch, columnar, scan_rows):
    monkeypatch.setattr(report, "SCAN_ROWS", scan_rows)
    db = make_sqlite(PAID)
    expected = sql_totals(db)
    got = columnar_totals(db)
    assert [r[:2] for r in got] == [r[:2] for r in expected]
    assert [r[2] for r in got] == pytest.approx([r[2] for r in expected])


def test_every_backend_sums_costs_of_sessions_once_with_null_and_missing_as_zero(make_db):
    engine = connect(make_db(PAID))
    costs = report.aggregate_session_costs(engine)
    engine.dispose()
    by_key = {(c, d): cost for c, d, cost in costs.rows()}
    assert by_key[("Paid Search Brand", "2023-09-01")] == pytest.approx(2.5)  # 2.5 + NULL
    assert by_key[("TikTok Ads", "2023-09-04")] == pytest.approx(4.0)  # 4.0 + a session without a cost row
    assert costs["cost"].sum() == pytest.approx(6.5) and costs.schema["cost"] == pl.Float64


def test_a_relative_path_with_spaces_works(tmp_path, monkeypatch, columnar):
    folder = tmp_path / "my data"
    folder.mkdir()
    write_case(str(folder / "a b.db"), PAID)
    monkeypatch.chdir(tmp_path)
    assert columnar_totals(os.path.join("my data", "a b.db")) == columnar_totals(str(folder / "a b.db"))


def test_a_small_table_is_summed_by_sqlite_in_the_run_and_a_bigger_one_by_the_columnar_scan(
    source_db, monkeypatch
):
    """Starting a second interpreter costs more than SQLite's own join of a small table; the rule looks only at
    the ends of the table's rowids (20,000 sessions here)."""
    with open_engine(str(source_db)) as engine:
        sources = sources_of(engine)
        assert report.columnar_rowid(engine, sources) is None
        monkeypatch.setattr(report, "CHILD_SCAN_ROWS", 19_999)
        assert report.columnar_rowid(engine, sources) == "rowid"


def test_sqlite_s_own_join_and_the_columnar_scan_give_the_same_bits(source_db, monkeypatch):
    """Whichever sums them, a file's costs are the same floats: a rerun after the file grew past
    ``CHILD_SCAN_ROWS`` changes no report row."""
    with open_engine(str(source_db)) as engine:
        by_sql = report.aggregate_session_costs(engine).sort("date", "channel_name")
        monkeypatch.setattr(report, "CHILD_SCAN_ROWS", 0)
        by_scan = report.aggregate_session_costs(engine).sort("date", "channel_name")
    assert by_sql.height > 0 and by_sql.equals(by_scan)


def test_the_hash_join_is_exact_when_ids_share_a_hash():
    """Every key equal (the worst collision): each session still gets its own cost row's cost, or none."""
    sessions = pl.DataFrame(
        {"session_id": ["a", "b", "c"], "channel_name": ["x", "x", "y"], "date": ["d"] * 3, "key": [7] * 3}
    )
    costs = pl.DataFrame({"session_id": ["a", "b", "z"], "cost": [1.0, 2.0, 40.0], "key": [7] * 3})
    totals = sqlite_scan._sum_costs(sqlite_scan._priced(sessions, costs)).sort("channel_name")
    assert totals.rows() == [("x", "d", 3 * sqlite_scan.MICROS), ("y", "d", 0)]


def test_the_cost_scan_waits_for_a_writer_that_locks_the_file(make_sqlite):
    """A run building indexes holds SQLite's exclusive lock for longer than connectorx's own 5 s wait: the scan
    beside it waits as long as every other reader does (``busy_timeout``), instead of failing."""
    db = make_sqlite(PAID)
    expected = columnar_totals(db)
    hold = "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
    hold += "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(6)"
    with subprocess.Popen([sys.executable, "-c", hold, db], stdout=subprocess.PIPE, text=True) as writer:
        assert writer.stdout.readline() == "locked\n"
        scan = [sys.executable, "-m", sqlite_scan.__name__, db, *SCAN_RELATIONS, "1000", "30"]
        child = subprocess.run(scan, capture_output=True, check=False)
    assert child.returncode == 0, child.stderr.decode()
    frame = pl.read_ipc(io.BytesIO(child.stdout)).sort("date", "channel_name")
    assert frame.select("channel_name", "date", "cost").rows() == expected
