"""Plain-Python reference answers for hand-built cases: what the SQL and the report must agree with."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from attribution.reporting.report_inputs import Fingerprint
from attribution.timerange import TimeRange
from attribution.warehouse.engine import connect
from attribution.warehouse.tables import attribution_customer_journey, channel_reporting
from tests.builders import Case


def expected_journeys(case: Case, time_range: TimeRange = TimeRange()) -> dict[str, list[str]]:
    """conv_id -> session ids strictly before it, ordered by time then id (conversions with none left out)."""
    start, end = time_range.sql_bounds()
    journeys = {}
    for conv in case.conversions:
        if not start <= conv.timestamp < end:
            continue
        before = sorted(
            (s.timestamp, s.session_id)
            for s in case.sessions
            if s.user_id == conv.user_id and s.timestamp < conv.timestamp
        )
        if before:
            journeys[conv.conv_id] = [session_id for _, session_id in before]
    return journeys


def session_cost_by_date(case: Case) -> dict[str, float]:
    """Total session cost per session date, each session once, NULL and missing cost as 0."""
    totals: dict[str, float] = defaultdict(float)
    for s in case.sessions:
        totals[s.timestamp[:10]] += (s.cost or 0.0) if s.has_cost_row else 0.0
    return dict(totals)


def read_tables(db: str) -> tuple[list[tuple], list[tuple]]:
    """The two output tables, sorted, as plain tuples: the credit as (conversion, session, ihc), the report as
    (channel, date, cost, ihc, revenue)."""
    acj, report_columns = attribution_customer_journey.c, channel_reporting.c["channel_name", "date"]
    engine = connect(db)
    with engine.connect() as conn:
        credits = sorted(tuple(r) for r in conn.execute(select(acj.conv_id, acj.session_id, acj.ihc)))
        numbers = channel_reporting.c["cost", "ihc", "ihc_revenue"]
        report = sorted(tuple(r) for r in conn.execute(select(*report_columns, *numbers)))
    engine.dispose()
    return credits, report


def check_invariants(case: Case, db: str, time_range: TimeRange = TimeRange()) -> None:
    """Assert the invariants that make the numbers true, against the plain-Python reference."""
    credits, report = read_tables(db)
    journeys = expected_journeys(case, time_range)
    by_conv: dict[str, dict[str, float]] = defaultdict(dict)
    for conv_id, session_id, ihc in credits:
        by_conv[conv_id][session_id] = ihc
    assert {c: sorted(s) for c, s in by_conv.items()} == {c: sorted(s) for c, s in journeys.items()}
    for conv_id, shares in by_conv.items():
        assert abs(sum(shares.values()) - 1) < 1e-9, conv_id
        assert all(0 <= share <= 1 + 1e-12 for share in shares.values())
    revenue = {c.conv_id: c.revenue for c in case.conversions}
    assert abs(sum(r[3] for r in report) - len(by_conv)) < 1e-9
    assert abs(sum(r[4] for r in report) - sum(revenue[c] for c in by_conv)) < 1e-6
    report_cost: dict[str, float] = defaultdict(float)
    for _channel, day, cost, _ihc, _revenue in report:
        report_cost[day] += cost
    session_cost = session_cost_by_date(case)
    for day, cost in report_cost.items():
        assert abs(cost - session_cost.get(day, 0.0)) < 1e-9, day
    span = time_range.date_span()
    required = {date for date in session_cost if span is None or span[0] <= date <= span[1]}
    assert required <= set(report_cost)


def assert_close(left: list[tuple], right: list[tuple]) -> None:
    """Same keys, same numbers up to float summation order."""
    assert [r[:2] for r in left] == [r[:2] for r in right]
    for a, b in zip(left, right, strict=True):
        assert a[2:] == pytest.approx(b[2:], abs=1e-12)


def assert_same_tables(left: str, right: str) -> None:
    (left_credits, left_report), (right_credits, right_report) = read_tables(left), read_tables(right)
    assert [r[:2] for r in left_credits] == [r[:2] for r in right_credits]
    assert all(abs(a[2] - b[2]) < 1e-12 for a, b in zip(left_credits, right_credits, strict=True))
    assert [r[:2] for r in left_report] == [r[:2] for r in right_report]
    for a, b in zip(left_report, right_report, strict=True):
        assert all(abs(x - y) < 1e-9 for x, y in zip(a[2:], b[2:], strict=True))


def assert_same_results(out: Path, left: str, right: str) -> None:
    (left_credits, left_report), (right_credits, right_report) = read_tables(left), read_tables(right)
    assert_close(left_credits, right_credits)
    assert_close(left_report, right_report)
    csv = out / "sqlite/channel_reporting.csv"
    assert csv.read_bytes() == (out / "postgresql/channel_reporting.csv").read_bytes()


def serial_tables(db: str, out: Path, models: tuple[str, ...], start: str, end: str) -> tuple[list, list]:
    """The tables after runs of ``models`` one after the other on ``db`` over a range: what runs at once
    must end as, in one order or the other."""
    from attribution import load_settings, run

    for model in models:
        run(load_settings(db=db, out=str(out / model), model=model, start=start, end=end, formats=("csv",)))
    return read_tables(db)


def input_fingerprint(case: Case, day: str) -> Fingerprint:
    """A report date's inputs as ``reporting.report_inputs`` fingerprints them, counted in plain Python:
    its sessions and their cost rows, its conversions and their journeys' sessions (no lookback)."""
    sessions = [s for s in case.sessions if s.timestamp[:10] == day]
    priced = [s for s in sessions if s.has_cost_row]
    conversions = [c for c in case.conversions if c.timestamp[:10] == day]
    journeys = [
        s.session_id
        for c in conversions
        for s in case.sessions
        if s.user_id == c.user_id and s.timestamp < c.timestamp
    ]
    return Fingerprint(
        sessions=len(sessions),
        cost_rows=len(priced),
        cost_micros=sum(round((s.cost or 0.0) * 1_000_000) for s in priced),
        conversions=len(conversions),
        revenue_micros=sum(round(c.revenue * 1_000_000) for c in conversions),
        journey_sessions=len(journeys),
        last_session=max((s.session_id for s in sessions), default=None),
        last_journey_session=max(journeys, default=None),
    )
