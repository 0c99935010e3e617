"""The input checks on every backend: each defect is found by its named check, with a count and its ids,
within the run's range; a clean case passes every check."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import text

from attribution.timerange import TimeRange
from attribution.warehouse.engine import open_engine
from attribution.warehouse.input_checks import MAX_MONEY, run_checks
from tests.builders import Case, Conversion, Session, write_case
from tests.cases import PAID

DAY = TimeRange.parse("2023-09-05", "2023-09-06")
"""The range of c2 and c5 (users u1 and u9) only."""


def failures(db: str, time_range: TimeRange = TimeRange()) -> dict[str, tuple[str, int, tuple[str, ...]]]:
    """The failing checks by name: (table, count, first ids)."""
    with open_engine(db) as engine:
        results = run_checks(engine, time_range)
    return {r.check.name: (r.check.table, r.count, r.first_ids) for r in results if r.count}


def with_sessions(*sessions: Session) -> Case:
    return replace(PAID, sessions=[*PAID.sessions, *sessions])


def with_conversions(*conversions: Conversion) -> Case:
    return replace(PAID, conversions=[*PAID.conversions, *conversions])


def test_a_clean_database_passes_every_check(make_db):
    assert failures(make_db(PAID, keyed=False)) == {}


DEFECTS = {
    "duplicate-conv-id": (
        with_conversions(Conversion("c2", "u3", "2023-09-05 09:00:00")),
        ("conversions", 1, ("c2",)),
    ),
    "duplicate-session-id": (
        with_sessions(Session("a1", "u1", "2023-09-01 10:00:00", "Paid Search Brand", has_cost_row=False)),
        ("session_sources", 1, ("a1",)),
    ),
    "duplicate-cost-session-id": (
        replace(PAID, extra_costs=[("p1", 2.5)]),
        ("session_costs", 1, ("p1",)),
    ),
    "bad-session-time": (
        with_sessions(
            Session("t1", "u1", "2023-09-01 9:30:00", has_cost_row=False),
            Session("t2", "u1", "2023-09-01 09:30:00-05:00", has_cost_row=False),
            Session("t3", "u1", "2023-09-01 09:30:00.5", has_cost_row=False),
            Session("t4", "u1", "2023-09-01 24:00:00", has_cost_row=False),
        ),
        ("session_sources", 4, ("t1", "t2", "t3", "t4")),
    ),
    "bad-session-date": (
        with_sessions(
            Session("d5", "u1", "2023-02-30 10:00:00", has_cost_row=False),
            Session("d6", "u1", "2023/09/01 10:00:00", has_cost_row=False),
            Session("d7", "u1", "2023-09-01T10:00:00 10:00:00", has_cost_row=False),
            Session("d8", "u1", "2024-02-29 10:00:00", has_cost_row=False),  # a leap day: valid
        ),
        ("session_sources", 3, ("d5", "d6", "d7")),
    ),
    "bad-conversion-timestamp": (
        with_conversions(Conversion("c6", "u1", "2023-09-05 10:00:00+02:00")),
        ("conversions", 1, ("c6",)),
    ),
    "missing-conversion-value": (
        with_conversions(Conversion("c6", None, "2023-09-05 10:00:00")),
        ("conversions", 1, ("c6",)),
    ),
    "missing-session-key": (
        with_sessions(Session("n1", "u1", "2023-09-01 10:00:00", channel=None, has_cost_row=False)),
        ("session_sources", 1, ("n1",)),
    ),
    "bad-engagement-flag": (
        with_sessions(Session("f1", "u1", "2023-09-01 10:00:00", holder=300, has_cost_row=False)),
        ("session_sources", 1, ("f1",)),
    ),
}


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_each_defect_is_named_with_its_count_and_first_ids(make_db, name):
    case, expected = DEFECTS[name]
    assert failures(make_db(case, keyed=False)) == {name: expected}


TEXT_IN_NUMBERS = {
    "non-numeric-revenue": (
        with_conversions(Conversion("c6", "u1", "2023-09-05 10:00:00", "12,50")),
        ("conversions", 1, ("c6",)),
    ),
    "non-numeric-cost": (
        with_sessions(Session("x1", "u1", "2023-09-01 10:00:00", cost="n/a")),
        ("session_costs", 1, ("x1",)),
    ),
    "bad-engagement-flag": (
        with_sessions(Session("f2", "u1", "2023-09-01 10:00:00", closer="yes")),
        ("session_sources", 1, ("f2",)),
    ),
}


@pytest.mark.parametrize("name", sorted(TEXT_IN_NUMBERS))
def test_text_in_a_number_column_is_named(make_sqlite, name):
    """Only SQLite stores text in a numeric column; a server's column type refuses it on insert."""
    case, expected = TEXT_IN_NUMBERS[name]
    assert failures(make_sqlite(case, keyed=False)) == {name: expected}


def test_a_bounded_range_checks_only_the_rows_it_reads_for_what_it_reads_them(make_db):
    outside = Session("o1", "u3", "2023-09-02 9:30:00", has_cost_row=False)  # u3 converts on 09-03 only
    inside = Session("i1", "u9", "2023-09-04 9:30:00", has_cost_row=False)  # u9 converts on 09-05
    # a report date of the range, a user without a conversion in it: the report reads its channel, not its time
    on_the_day = Session("i2", "u2", "2023-09-05 9:30:00", channel=None, has_cost_row=False)
    db = make_db(with_sessions(outside, inside, on_the_day), keyed=False)
    assert failures(db, DAY) == {
        "bad-session-time": ("session_sources", 1, ("i1",)),
        "missing-session-key": ("session_sources", 1, ("i2",)),
    }
    assert failures(db)["bad-session-time"] == ("session_sources", 3, ("i1", "i2", "o1"))


def test_no_more_than_five_ids_are_named(make_db):
    late = [Session(f"z{i}", "u9", "2023-09-04 9:00:00", has_cost_row=False) for i in range(7)]
    assert failures(make_db(with_sessions(*late), keyed=False)) == {
        "bad-session-time": ("session_sources", 7, ("z0", "z1", "z2", "z3", "z4"))
    }


MONEY_BEYOND_THE_REPORT = {
    "revenue infinite": (
        with_conversions(Conversion("c6", "u1", "2023-09-05 10:00:00", float("inf"))),
        ("revenue-out-of-range", "conversions", 1, ("c6",)),
    ),
    "revenue 1.7e308 on two conversions": (
        with_conversions(
            Conversion("c6", "u1", "2023-09-05 10:00:00", 1.7e308),
            Conversion("c7", "u1", "2023-09-05 11:00:00", 1.7e308),
        ),
        ("revenue-out-of-range", "conversions", 2, ("c6", "c7")),
    ),
    "revenue below -1e12": (
        with_conversions(Conversion("c6", "u1", "2023-09-05 10:00:00", -2e12)),
        ("revenue-out-of-range", "conversions", 1, ("c6",)),
    ),
    "cost 1e13": (
        with_sessions(Session("x1", "u1", "2023-09-01 10:00:00", cost=1e13)),
        ("cost-out-of-range", "session_costs", 1, ("x1",)),
    ),
    "cost infinite": (
        with_sessions(Session("x1", "u1", "2023-09-01 10:00:00", cost=float("inf"))),
        ("cost-out-of-range", "session_costs", 1, ("x1",)),
    ),
    "cost minus infinity": (
        with_sessions(Session("x1", "u1", "2023-09-01 10:00:00", cost=float("-inf"))),
        ("cost-out-of-range", "session_costs", 1, ("x1",)),
    ),
}


@pytest.mark.parametrize("defect", sorted(MONEY_BEYOND_THE_REPORT))
def test_money_beyond_what_the_report_sums_exactly_is_named(make_db, defect):
    case, (name, *expected) = MONEY_BEYOND_THE_REPORT[defect]
    assert failures(make_db(case, keyed=False)) == {name: tuple(expected)}


def test_money_at_the_bound_passes(make_db):
    case = with_sessions(Session("x1", "u1", "2023-09-01 10:00:00", cost=-MAX_MONEY))
    assert failures(make_db(with_conversions(Conversion("c6", "u1", "2023-09-05 10:00:00", MAX_MONEY)))) == {}
    assert failures(make_db(case)) == {}


def test_a_nan_is_money_out_of_range(postgres_url):
    """Only a server stores NaN (SQLite stores it as NULL)."""
    case = with_sessions(Session("x1", "u1", "2023-09-01 10:00:00", cost=float("nan")))
    write_case(postgres_url, with_conversions(Conversion("c6", "u1", "2023-09-05 10:00:00", float("nan"))))
    assert failures(postgres_url) == {"revenue-out-of-range": ("conversions", 1, ("c6",))}
    with open_engine(postgres_url) as engine, engine.begin() as conn:
        conn.execute(text("DROP TABLE conversions, session_sources, session_costs"))
    write_case(postgres_url, case)
    assert failures(postgres_url) == {"cost-out-of-range": ("session_costs", 1, ("x1",))}
