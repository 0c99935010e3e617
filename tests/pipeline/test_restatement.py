"""The restatement window (``--restate-days N``): a daily run also redoes the N days before its range, so spend
restated at the source and sessions that land late reach the report, and it says what changed.

Before: the report kept a day's old spend for ever (502.60 where the source said 1,005.20) unless a run's
range covered that day again, and no run said so.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import text

from attribution import load_settings, run
from attribution.warehouse.engine import connect
from tests.builders import Case, Conversion, Session
from tests.oracle import read_tables

DAYS = [(date(2023, 9, 1) + timedelta(days=i)).isoformat() for i in range(6)]
SHOP = Case(
    sessions=[
        Session("s1", "u1", "2023-09-01 09:00:00", "Paid Search Brand", cost=2.0),
        Session("s2", "u2", "2023-09-02 09:00:00", "Paid Search Brand", cost=3.0),
        Session("s3", "u2", "2023-09-02 10:00:00", "TikTok Ads", cost=1.5),
        Session("s4", "u3", "2023-09-03 09:00:00", "Paid Search Brand", cost=4.0),
        Session("s5", "u4", "2023-09-04 09:00:00", "TikTok Ads", cost=2.5),
        Session("s6", "u5", "2023-09-05 09:00:00", "Paid Search Brand", cost=1.0),
    ],
    conversions=[
        Conversion("c1", "u1", "2023-09-01 12:00:00", 10.0),
        Conversion("c2", "u2", "2023-09-02 12:00:00", 20.0),
        Conversion("c3", "u3", "2023-09-03 12:00:00", 30.0),
        Conversion("c4", "u4", "2023-09-04 12:00:00", 40.0),
        Conversion("c5", "u5", "2023-09-05 12:00:00", 50.0),
    ],
)


def daily(db: str, tmp_path, day: str, restate_days: int):
    end = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    settings = load_settings(
        db=db, out=str(tmp_path / "out"), formats=("csv",), start=day, end=end, restate_days=restate_days
    )
    return run(settings)


def execute(db: str, *statements: str) -> None:
    engine = connect(db)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def restate_and_land_late(db: str) -> None:
    """The source doubles 2023-09-02's spend, and a session of u3 on 2023-09-03 lands late."""
    execute(
        db,
        "UPDATE session_costs SET cost = cost * 2 WHERE session_id IN ('s2', 's3')",
        "INSERT INTO session_sources VALUES ('late', 'u3', '2023-09-03', '08:00:00', 'TikTok Ads', 1, 0, 0)",
        "INSERT INTO session_costs VALUES ('late', 0.5)",
    )


def full_recompute(tmp_path, make_db, days: list[str]) -> tuple[list, list]:
    """The tables one run over ``days`` leaves on the final data."""
    fresh = make_db(SHOP)
    restate_and_land_late(fresh)
    end = (date.fromisoformat(days[-1]) + timedelta(days=1)).isoformat()
    run(load_settings(db=fresh, out=str(tmp_path / "fresh"), formats=("csv",), start=days[0], end=end))
    return read_tables(fresh)


def test_the_window_brings_restated_spend_and_late_sessions_into_the_report_and_names_them(make_db, tmp_path):
    db = make_db(SHOP)
    for day in DAYS[:4]:
        daily(db, tmp_path, day, restate_days=0)
    restate_and_land_late(db)
    summary = daily(db, tmp_path, DAYS[4], restate_days=3)  # redoes 09-02 to 09-04
    assert read_tables(db) == full_recompute(tmp_path, make_db, DAYS[:5])
    assert "spend restated on 2023-09-02: +4.50 (4.50 -> 9.00)" in summary.notes
    assert "spend restated on 2023-09-03: +0.50 (4.00 -> 4.50)" in summary.notes
    assert (
        "credit redone on 2023-09-03: Paid Search Brand, TikTok Ads (sessions landed late, or journeys restated)"
        in summary.notes
    )
    assert summary.time_range == "[2023-09-02 00:00:00, 2023-09-06 00:00:00)"


def test_without_the_window_a_past_day_keeps_its_old_spend_and_nothing_is_said(make_db, tmp_path):
    db = make_db(SHOP)
    for day in DAYS[:4]:
        daily(db, tmp_path, day, restate_days=0)
    restate_and_land_late(db)
    summary = daily(db, tmp_path, DAYS[4], restate_days=1)  # redoes 09-04 only: 09-02 and 09-03 are beyond
    report = {row[1]: row for row in read_tables(db)[1] if row[0] == "Paid Search Brand"}
    assert report["2023-09-02"][2] == 3.0  # the spend as first reported: outside the window
    assert not [note for note in summary.notes if "2023-09-02" in note or "2023-09-03" in note]


def test_daily_runs_with_the_window_equal_one_run_over_the_final_data(make_db, tmp_path):
    db = make_db(SHOP)
    for index, day in enumerate(DAYS):
        if index == 4:
            restate_and_land_late(db)  # within the window of the runs that follow
        daily(db, tmp_path, day, restate_days=3)
    assert read_tables(db) == full_recompute(tmp_path, make_db, DAYS)
