"""A run rebuilds only the report rows its range touches, reading only those dates: the rows it leaves equal a
full recompute, whatever the ranges, their order and the order the input rows were written in."""

from __future__ import annotations

import hashlib
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, text

from attribution import load_settings, run
from attribution.reporting.channel_report import (
    ReportScope,
    aggregate_session_costs,
    build_channel_report,
    cost_sql,
    credit_by_channel_date,
    credit_sql,
)
from attribution.warehouse.engine import connect
from attribution.warehouse.schema import create_output_tables
from attribution.warehouse.sources import sources_of
from attribution.warehouse.tables import CreditLabel, channel_reporting, conversions
from attribution.warehouse.tables import attribution_customer_journey as acj
from tests.builders import Case, Session
from tests.cases import PAID
from tests.strategies import TIMES, cases

CSV_ONLY = ("csv",)
CONVERSION = {
    "conv_id": "c",
    "user_id": "u",
    "conv_date": "2023-09-02",
    "conv_time": "10:00:00",
    "revenue": 1.0,
}
LABEL = CreditLabel("linear")
RANGES = st.lists(st.sampled_from(TIMES), min_size=2, max_size=2, unique=True).map(sorted)


@st.composite
def laid_out(draw: st.DrawFn) -> Case:
    """A random case with hashed session ids, its rows written in a random order (as real tables arrive)."""
    case = draw(cases())
    hashed = {s.session_id: hashlib.sha256(s.session_id.encode()).hexdigest() for s in case.sessions}
    sessions = [type(s)(**{**vars(s), "session_id": hashed[s.session_id]}) for s in case.sessions]
    return Case(draw(st.permutations(sessions)), draw(st.permutations(case.conversions)))


def _report(db: str) -> dict[tuple[str, str], tuple[float, ...]]:
    engine = connect(db)
    with engine.connect() as conn:
        rows = conn.execute(select(channel_reporting)).fetchall()
    engine.dispose()
    return {(r.channel_name, r.date): (r.cost, r.ihc, r.ihc_revenue) for r in rows}


def _full_recompute(db: str) -> dict[tuple[str, str], tuple[float, ...]]:
    engine = connect(db)
    with engine.begin() as conn:
        label = load_settings(db=db).credit_label  # the runs' model
        build_channel_report(conn, ReportScope(None), aggregate_session_costs(engine), label=label)
    engine.dispose()
    return _report(db)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=laid_out(), ranges=st.lists(RANGES, min_size=1, max_size=3))
def test_range_runs_leave_the_report_a_full_recompute_gives(make_db, tmp_path, case, ranges):
    db = make_db(case)
    for start, end in ranges:
        run(load_settings(db=db, out=str(tmp_path), start=start, end=end, formats=CSV_ONLY))
    by_ranges, full = _report(db), _full_recompute(db)
    assert by_ranges.keys() <= full.keys()
    assert by_ranges == {key: full[key] for key in by_ranges}  # to the bit: sums are exact, whatever the path
    credited = {key for key, (_cost, ihc, _revenue) in full.items() if ihc}
    assert credited <= by_ranges.keys()  # every date holding credit was rebuilt by the run that gave it


def test_a_dated_report_reads_only_its_dates_through_the_indexes(make_sqlite, tmp_path):
    """SQLite's plans for a date's cost and credit: index ranges on the date, then lookups by key."""
    db = make_sqlite(Case())
    engine = connect(db)
    run(load_settings(db=db, formats=CSV_ONLY, out=str(tmp_path), start="2023-09-01", end="2023-09-02"))
    with engine.connect() as conn:
        plans = {
            name: " | ".join(
                row[-1]
                for row in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"), {"dates": "x", **LABEL._asdict()})
            )
            for name, sql in (
                ("cost", cost_sql(sources_of(conn)).replace("IN :dates", "= :dates")),
                ("credit", credit_sql(sources_of(conn), dated=True).replace("IN :dates", "= :dates")),
            )
        }
    engine.dispose()
    assert "SEARCH s USING COVERING INDEX ix_attribution_sessions_by_date (event_date=?)" in plans["cost"]
    assert re.search(r"SEARCH c USING (COVERING )?INDEX \w+ \(session_id=\?\)", plans["cost"])
    assert "SEARCH a USING COVERING INDEX ix_attribution_credit_by_date (event_date=?)" in plans["credit"]
    assert "SCAN" not in plans["cost"] + plans["credit"]


def test_credit_sums_are_exact_in_any_row_order(make_db):
    """0.1 + 0.2 + 0.3 and 0.3 + 0.2 + 0.1 differ as floats; the report's credit is the exact sum either way."""
    engine = connect(make_db(Case([Session("s", "u", "2023-09-01 10:00:00")])))
    create_output_tables(engine)
    with engine.begin() as conn:
        conn.execute(insert(conversions).values(CONVERSION))
    sums = []
    for order in ((0.1, 0.2, 0.3), (0.3, 0.2, 0.1)):
        with engine.begin() as conn:
            conn.execute(delete(acj))
            conn.execute(
                insert(acj),
                [
                    {
                        "conv_id": "c",
                        "session_id": f"s{i}",
                        "ihc": ihc,
                        **LABEL._asdict(),
                        "event_date": "2023-09-01",
                        "channel_name": "x",
                    }
                    for i, ihc in enumerate(order)
                ],
            )
            sums.append(credit_by_channel_date(conn, frozenset({"2023-09-01"}), None, LABEL).row(0))
    engine.dispose()
    assert sums[0] == sums[1] == ("x", "2023-09-01", 0.6, 0.6)


def test_a_ten_thousand_year_range_reports_as_an_open_range_does(make_db, tmp_path):
    """Issue 21 item 7: `--start 0001-01-01 --end 9999-12-31` bound one string per day (3.65 million) in an
    IN list: 77 s, 2 GB, then `too many SQL variables`. The range's days are now read by their bounds."""
    widest, whole = make_db(PAID), make_db(PAID)
    years = {"start": "0001-01-01", "end": "9999-12-31"}
    run(load_settings(db=widest, out=str(tmp_path / "widest"), formats=CSV_ONLY, model="linear", **years))
    run(load_settings(db=whole, out=str(tmp_path / "whole"), formats=CSV_ONLY, model="linear"))
    assert _report(widest) and _report(widest) == _report(whole)
    csv = "channel_reporting.csv"
    assert (tmp_path / "widest" / csv).read_bytes() == (tmp_path / "whole" / csv).read_bytes()
