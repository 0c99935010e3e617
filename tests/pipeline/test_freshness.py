"""Freshness: a run whose dates look not yet landed (a paid channel's sessions without cost rows, a range's
last hours without sessions) stops in one line naming the date and channel under ``--on-stale error``, with
nothing written, or warns under ``warn``; ``attribution check`` shows freshness per date.

Before: such a day was reported as zero spend, exit 0, and nothing said so.
"""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from attribution import load_settings, run
from attribution.errors import StaleInputError
from attribution.warehouse.engine import connect
from tests.builders import Case, Conversion, Session
from tests.commands import attribution

LANDING = Case(
    sessions=[
        Session("s1", "u1", "2023-09-01 10:00:00", "Paid Search Brand", cost=2.0),
        Session("s2", "u2", "2023-09-02 10:00:00", "Paid Search Brand", cost=3.0),
        Session("s3", "u3", "2023-09-03 10:00:00", "Paid Search Brand", cost=None, has_cost_row=False),
        Session("s4", "u4", "2023-09-03 20:00:00", "Paid Search Brand", cost=None, has_cost_row=False),
        Session("o1", "u5", "2023-09-03 21:00:00", "Organic Traffic", cost=None, has_cost_row=False),
    ],
    conversions=[
        Conversion("c1", "u1", "2023-09-01 12:00:00"),
        Conversion("c2", "u2", "2023-09-02 12:00:00"),
        Conversion("c3", "u3", "2023-09-03 12:00:00"),
    ],
)
STALE_COST = "2023-09-03: Paid Search Brand has 2 sessions and no cost rows (a paid channel)"


def settings(db: str, tmp_path, start: str, end: str, **options):
    return load_settings(db=db, out=str(tmp_path / "out"), formats=("csv",), start=start, end=end, **options)


def output_tables(db: str) -> set[str]:
    engine = connect(db)
    try:
        return set(inspect(engine).get_table_names()) - {"session_sources", "conversions", "session_costs"}
    finally:
        engine.dispose()


def test_a_paid_channel_without_cost_rows_stops_a_run_in_one_line_and_nothing_is_written(make_db, tmp_path):
    db = make_db(LANDING)
    with pytest.raises(StaleInputError) as stopped:
        run(settings(db, tmp_path, "2023-09-01", "2023-09-04", on_stale="error"))
    assert str(stopped.value).startswith(f"Inputs look incomplete for {STALE_COST};")
    assert len(str(stopped.value).splitlines()) == 1
    assert output_tables(db) == set()


def test_the_daily_run_knows_the_paid_channels_from_the_report_of_the_days_before(make_db, tmp_path):
    db = make_db(LANDING)
    run(settings(db, tmp_path, "2023-09-01", "2023-09-03", on_stale="error"))  # landed days: no finding
    with pytest.raises(StaleInputError) as stopped:
        run(settings(db, tmp_path, "2023-09-03", "2023-09-04", on_stale="error"))
    assert str(stopped.value).startswith(f"Inputs look incomplete for {STALE_COST};")


def test_under_warn_the_run_goes_on_and_says_what_looks_missing(make_db, tmp_path):
    db = make_db(LANDING)
    summary = run(settings(db, tmp_path, "2023-09-01", "2023-09-05", on_stale="warn"))
    assert f"Inputs look incomplete for {STALE_COST}" in summary.notes
    assert (
        "Inputs look incomplete for 2023-09-05: the newest session is 2023-09-03 21:00:00, over 6 hours "
        "before the range's end"
    ) in summary.notes
    assert summary.conversions == 3


def test_landed_days_and_an_open_range_say_nothing(make_db, tmp_path):
    db = make_db(LANDING)
    landed = run(settings(db, tmp_path, "2023-09-01", "2023-09-03", on_stale="error"))
    whole = run(settings(db, tmp_path, None, None, on_stale="error"))
    assert not [note for note in [*landed.notes, *whole.notes] if "incomplete" in note]


def test_check_prints_freshness_per_date(make_sqlite):
    result = attribution("check", "--db", make_sqlite(LANDING))
    lines = result.stdout.splitlines()
    start = lines.index("Freshness of the last dates the sessions reach")
    assert lines[start + 1 : start + 8] == [
        "2023-08-28  landed",
        "2023-08-29  landed",
        "2023-08-30  landed",
        "2023-08-31  landed",
        "2023-09-01  landed",
        "2023-09-02  landed",
        "2023-09-03  Paid Search Brand has 2 sessions and no cost rows (a paid channel)",
    ]
