"""Change detection in the restatement window: a daily run compares its window's inputs with those recorded
with the report, redoes only the dates that changed, and names each change; what it leaves equals a full
recompute for every date of its window, and beyond the window it keeps what the docs say it keeps.

Before: every run redid its whole window, and named changes by comparing report rows (a date reported for
the first time looked restated from 0.00).
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import inspect, select

from attribution import load_settings, run
from attribution.pipeline.scheduled import attribute_batch, finish_run, prepare_run, stage_journeys
from attribution.reporting.report_inputs import NOTHING, Fingerprint, input_notes
from attribution.warehouse.engine import connect
from attribution.warehouse.tables import channel_reporting_inputs, conversions
from tests.builders import Case, Conversion, Session, land_sessions, restate_cost, write_case
from tests.oracle import input_fingerprint, read_tables
from tests.strategies import HISTORY_DAYS, Change, Restated, histories

CSV_ONLY = ("csv",)
WINDOW = 2
"""The property test's window: with six days, changes land within it and beyond it."""
CREDIT_MOVED = 0.005
"""As ``steps.RESTATED_CENTS``: a move of credit the summary names."""


def next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def window_of(day: str, days: int) -> list[str]:
    first = date.fromisoformat(day)
    return [(first - timedelta(days=back)).isoformat() for back in range(days, 0, -1)]


def daily(db: str, out: Path, day: str, restate_days: int, **options: object):
    settings = load_settings(
        db=db,
        out=str(out),
        formats=CSV_ONLY,
        start=day,
        end=next_day(day),
        restate_days=restate_days,
        **options,
    )
    return run(settings)


def full_recompute(case: Case, folder: Path, first: str, last: str) -> tuple[list, list]:
    """The tables one run over ``first`` to ``last`` leaves on a fresh SQLite file holding ``case``."""
    db = str(folder / f"full-{uuid.uuid4().hex[:8]}.db")
    write_case(db, case)
    run(load_settings(db=db, out=str(folder / "full"), formats=CSV_ONLY, start=first, end=next_day(last)))
    return read_tables(db)


def on_dates(tables: tuple[list, list], case: Case, dates: set[str]) -> tuple[list, list]:
    """The credit of the conversions dated ``dates`` and the report rows of those dates."""
    conversions_on = {c.conv_id for c in case.conversions if c.timestamp[:10] in dates}
    credits, report = tables
    return [r for r in credits if r[0] in conversions_on], [r for r in report if r[1] in dates]


def apply(db: str, case: Case, changes: list[Change], day: str, since: str = "") -> Case:
    """Land ``changes`` in ``db`` before the run of ``day`` (spend restated on sessions dated from ``since``);
    the case as the database now holds it."""
    sessions = list(case.sessions)
    for change in changes:
        if isinstance(change, Session):
            land_sessions(db, [change])
            sessions.append(change)
            continue
        earlier = sorted((s for s in sessions if since <= s.timestamp[:10] < day), key=lambda s: s.session_id)
        if earlier:
            chosen = earlier[change.pick % len(earlier)]
            restate_cost(db, chosen.session_id, change.cost)
            sessions[sessions.index(chosen)] = replace(chosen, cost=change.cost, has_cost_row=True)
    return replace(case, sessions=sessions)


def credit_changed(before: Fingerprint, after: Fingerprint) -> bool:
    """A date redone: its conversions or their journeys changed, or it had no inputs recorded and has some."""
    return after != NOTHING if before == NOTHING else before.credit_part != after.credit_part


def report_changed(before: Fingerprint, after: Fingerprint) -> bool:
    return after != NOTHING if before == NOTHING else before.report_part != after.report_part


def expected_notes(before: Case, after: Case, window: list[str], report: tuple[list, list]) -> list[str]:
    """What the run of the day after ``window`` must say, from the inputs before and after the changes
    (the previous run recorded them) and the window's report rows before and after the run."""
    was = {day: input_fingerprint(before, day) for day in window}
    now = {day: input_fingerprint(after, day) for day in window}
    first = next((i for i, day in enumerate(window) if credit_changed(was[day], now[day])), len(window))
    recosted = [day for day in window[:first] if report_changed(was[day], now[day])]
    plan = (
        f"conversions re-attributed from {window[first]}"
        if first < len(window)
        else "no conversion or journey changed, none re-attributed"
    )
    plan += f"; spend and sessions read anew on {', '.join(recosted)}" if recosted else ""
    notes = [f"restatement window {window[0]} to {window[-1]}: {plan}"]
    notes += [note for day in window if was[day] != NOTHING for note in input_notes(day, was[day], now[day])]
    credit: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for rows in report:
        for channel, day, _cost, ihc, revenue in rows:
            credit[day, channel].append((ihc, revenue))
    reported = {day for _channel, day, *_numbers in report[0]}
    for day in sorted(reported):  # a date reported for the first time was not restated
        moved = [
            channel
            for (d, channel), values in sorted(credit.items())
            if d == day and _moved(*values, *[(0.0, 0.0)] * (2 - len(values)))
        ]
        if moved:
            notes.append(
                f"credit redone on {day}: {', '.join(moved)} (sessions landed late, or journeys restated)"
            )
    return notes


def _moved(before: tuple[float, float], after: tuple[float, float]) -> bool:
    return max(abs(after[0] - before[0]), abs(after[1] - before[1])) >= CREDIT_MOVED


def report_rows(db: str) -> list[tuple]:
    """The report's rows (none before the first run made the table)."""
    engine = connect(db)
    made = inspect(engine).has_table("channel_reporting")
    engine.dispose()
    return read_tables(db)[1] if made else []


RESTATEMENT_NOTES = (
    "restatement window ",
    "spend restated on ",
    "late sessions on ",
    "sessions removed on ",
    "sessions changed on ",
    "conversions changed on ",
    "journeys changed on ",
    "credit redone on ",
)


def restatement_notes(notes: list[str]) -> list[str]:
    """The summary's notes about its window (not the freshness checks' nor an empty day's)."""
    return [note for note in notes if note.startswith(RESTATEMENT_NOTES)]


SHOP = Case(
    sessions=[
        Session("s1", "u1", "2023-09-01 09:00:00", "Paid Search Brand", cost=2.0),
        Session("s7", "u6", "2023-09-01 08:00:00", "TikTok Ads", cost=1.0),
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
        Conversion("c6", "u6", "2023-09-04 13:00:00", 60.0),  # its journey reaches back to 09-01
        Conversion("c5", "u5", "2023-09-05 12:00:00", 50.0),
    ],
)
SHOP_DAYS = ["2023-09-01", "2023-09-02", "2023-09-03", "2023-09-04", "2023-09-05"]
ASKED = "[2023-09-05 00:00:00, 2023-09-06 00:00:00)"


def four_days(db: str, out: Path, **options: object) -> None:
    for day in SHOP_DAYS[:4]:
        daily(db, out, day, 2, **options)


def test_an_unchanged_window_re_attributes_nothing_and_says_so(make_db, tmp_path):
    db = make_db(SHOP)
    four_days(db, tmp_path)
    before = read_tables(db)
    summary = daily(db, tmp_path, SHOP_DAYS[4], 2)
    assert summary.time_range == ASKED  # the window's days were not redone
    notes = restatement_notes(summary.notes)
    assert notes == [
        "restatement window 2023-09-03 to 2023-09-04: no conversion or journey changed, none re-attributed"
    ]
    assert on_dates(read_tables(db), SHOP, set(SHOP_DAYS[:4])) == on_dates(before, SHOP, set(SHOP_DAYS[:4]))
    assert read_tables(db) == full_recompute(SHOP, tmp_path, SHOP_DAYS[0], SHOP_DAYS[4])


def test_a_window_date_reported_for_the_first_time_is_not_named_restated(make_db, tmp_path):
    """Before: "spend restated on 2023-09-03: +4.00 (0.00 -> 4.00)" for a date no run had reported."""
    db = make_db(SHOP)
    daily(db, tmp_path, SHOP_DAYS[0], 0)
    summary = daily(db, tmp_path, SHOP_DAYS[4], 2)
    assert restatement_notes(summary.notes) == [
        "restatement window 2023-09-03 to 2023-09-04: conversions re-attributed from 2023-09-03"
    ]


def test_spend_restated_within_the_window_is_read_anew_without_re_attributing(make_db, tmp_path):
    db = make_db(SHOP)
    four_days(db, tmp_path)
    restate_cost(db, "s4", 8.0)
    summary = daily(db, tmp_path, SHOP_DAYS[4], 2)
    assert summary.time_range == ASKED
    assert restatement_notes(summary.notes) == [
        "restatement window 2023-09-03 to 2023-09-04: no conversion or journey changed, none re-attributed; "
        "spend and sessions read anew on 2023-09-03",
        "spend restated on 2023-09-03: +4.00 (4.00 -> 8.00)",
    ]
    final = apply(db, SHOP, [], SHOP_DAYS[4])
    final = replace(
        final, sessions=[replace(s, cost=8.0) if s.session_id == "s4" else s for s in final.sessions]
    )
    assert read_tables(db) == full_recompute(final, tmp_path, SHOP_DAYS[0], SHOP_DAYS[4])


def test_a_session_landing_before_the_window_redoes_the_window_conversions_whose_journeys_reach_it(
    make_db, tmp_path
):
    """The session lands on 09-02, before the 09-05 run's window: the credit of u6's conversion of 09-04,
    inside the window, must count it; 09-02's spend is kept as reported (the docs' limit)."""
    db = make_db(SHOP)
    four_days(db, tmp_path)
    late = Session("late", "u6", "2023-09-02 15:00:00", "Direct Traffic", cost=0.7)
    final = apply(db, SHOP, [late], SHOP_DAYS[4])
    summary = daily(db, tmp_path, SHOP_DAYS[4], 2)
    assert summary.time_range == "[2023-09-04 00:00:00, 2023-09-06 00:00:00)"
    notes = restatement_notes(summary.notes)
    assert notes[:2] == [
        "restatement window 2023-09-03 to 2023-09-04: conversions re-attributed from 2023-09-04",
        "journeys changed on 2023-09-04: +1 session in its conversions' journeys (sessions landed late)",
    ]
    assert not [note for note in notes if "2023-09-02" in note]  # beyond the window: named by no note
    full = full_recompute(final, tmp_path, SHOP_DAYS[0], SHOP_DAYS[4])
    window = {"2023-09-03", "2023-09-04", "2023-09-05"}
    assert on_dates(read_tables(db), final, window) == on_dates(full, final, window)
    report, recomputed = ({(r[0], r[1]): r[2:] for r in tables[1]} for tables in (read_tables(db), full))
    day = ("Direct Traffic", "2023-09-02")
    assert (report[day][0], recomputed[day][0]) == (0.0, 0.7)  # 09-02's spend as reported, without it
    assert report[day][1:] == recomputed[day][1:]  # and its credit: the window's conversion gives it


def test_a_late_conversion_is_named_and_its_day_redone(make_db, tmp_path):
    db = make_db(SHOP)
    four_days(db, tmp_path)
    engine = connect(db)
    with engine.begin() as conn:
        conn.execute(
            conversions.insert().values(
                conv_id="c7", user_id="u2", conv_date="2023-09-03", conv_time="18:00:00", revenue=25.5
            )
        )
    engine.dispose()
    summary = daily(db, tmp_path, SHOP_DAYS[4], 2)
    assert summary.time_range == "[2023-09-03 00:00:00, 2023-09-06 00:00:00)"
    assert "conversions changed on 2023-09-03: +1 conversion, revenue +25.50" in summary.notes
    final = replace(
        SHOP, conversions=[*SHOP.conversions, Conversion("c7", "u2", "2023-09-03 18:00:00", 25.5)]
    )
    assert read_tables(db) == full_recompute(final, tmp_path, SHOP_DAYS[0], SHOP_DAYS[4])


def test_other_model_options_redo_the_whole_window(make_db, tmp_path):
    db = make_db(SHOP)
    four_days(db, tmp_path, model="time-decay", half_life_hours=24)
    summary = daily(db, tmp_path, SHOP_DAYS[4], 2, model="time-decay", half_life_hours=48)
    assert summary.time_range == "[2023-09-03 00:00:00, 2023-09-06 00:00:00)"


def test_a_run_without_a_window_drops_the_inputs_recorded_for_its_dates(make_db, tmp_path):
    """It rebuilds them without fingerprinting their inputs: a later window must not trust the old ones."""
    db = make_db(SHOP)
    four_days(db, tmp_path)
    daily(db, tmp_path, SHOP_DAYS[3], 0)
    assert recorded_dates(db) == set(SHOP_DAYS[:3])


def recorded_dates(db: str) -> set[str]:
    engine = connect(db)
    with engine.connect() as conn:
        recorded = set(conn.scalars(select(channel_reporting_inputs.c.date)))
    engine.dispose()
    return recorded


def test_a_range_starting_within_a_day_records_the_inputs_of_the_days_it_covers_whole(make_db, tmp_path):
    """09-02 from 06:00 only: its earlier conversions were not re-attributed, so its inputs are not recorded."""
    db = make_db(SHOP)
    start, end = "2023-09-03 06:00:00", "2023-09-05"
    run(load_settings(db=db, out=str(tmp_path), formats=CSV_ONLY, start=start, end=end, restate_days=1))
    assert recorded_dates(db) == {"2023-09-03", "2023-09-04"}


def test_the_scheduler_redoes_and_names_what_a_cli_run_does(make_db, tmp_path):
    db, twin = make_db(SHOP), make_db(SHOP)
    for database in (db, twin):
        four_days(database, tmp_path)
        restate_cost(database, "s4", 8.0)
        land_sessions(database, [Session("late", "u4", "2023-09-04 08:00:00", "Direct Traffic", cost=0.4)])
    by_cli = daily(twin, tmp_path / "cli", SHOP_DAYS[4], 2)
    settings = load_settings(
        db=db,
        out=str(tmp_path / "dag"),
        formats=CSV_ONLY,
        start=SHOP_DAYS[4],
        end="2023-09-06",
        restate_days=2,
    )
    prepare_run(settings)
    plan = stage_journeys(settings, "run-5")
    for batch in plan.batch_ids:
        attribute_batch(settings, "run-5", batch)
    by_dag = finish_run(settings, "run-5")
    assert by_dag.time_range == by_cli.time_range == "[2023-09-04 00:00:00, 2023-09-06 00:00:00)"
    assert restatement_notes(by_dag.notes) == restatement_notes(by_cli.notes)
    assert "late sessions on 2023-09-04: +1 session" in by_dag.notes
    assert read_tables(db) == read_tables(twin)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)  # Redshift's SQL: the 30 days
@given(history=histories())
def test_daily_runs_with_a_window_equal_a_full_recompute_inside_it_and_name_only_true_changes(
    make_db, tmp_path, history
):
    case, changes = history
    folder = tmp_path / uuid.uuid4().hex[:8]
    folder.mkdir()
    db = make_db(case)
    for day, landing in zip(HISTORY_DAYS, changes, strict=True):
        window = [d for d in window_of(day, WINDOW) if d >= HISTORY_DAYS[0]]
        before, case = case, apply(db, case, landing, day)
        reported = report_rows(db)
        summary = daily(db, folder, day, WINDOW)
        tables = read_tables(db)
        scope = {*window, day}
        full = full_recompute(case, folder, HISTORY_DAYS[0], day)
        assert on_dates(tables, case, scope) == on_dates(full, case, scope)  # to the bit
        if reported and len(window) == WINDOW:
            in_window = [[r for r in rows if r[1] in window] for rows in (reported, tables[1])]
            assert restatement_notes(summary.notes) == expected_notes(before, case, window, in_window)
        kept = {(r[0], r[1]): r[2] for r in reported if r[1] < min(scope)}
        beyond = {(r[0], r[1]): r[2] for r in tables[1] if r[1] in {d for _c, d in kept}}
        assert beyond == {key: kept.get(key, 0.0) for key in beyond}  # spend before the window: as reported
    summary = daily(db, folder, HISTORY_DAYS[-1], len(HISTORY_DAYS) - 1)  # a window over the whole history
    assert read_tables(db) == full_recompute(case, folder, HISTORY_DAYS[0], HISTORY_DAYS[-1])


def thirty_days(seed: int) -> tuple[Case, list[list[Change]]]:
    """A shop over 30 days, and what lands before each daily run within its 3-day window: sessions dated one
    to three days back, and spend restated on sessions of those days."""
    rng = random.Random(seed)
    days = [(date(2023, 9, 1) + timedelta(days=i)).isoformat() for i in range(30)]
    channels = ("Paid Search Brand", "TikTok Ads", "Direct Traffic", "FB & IG Ads")

    def session(session_id: str, day: str) -> Session:
        return Session(
            session_id,
            f"u{rng.randrange(40):02d}",
            f"{day} {rng.randrange(24):02d}:{rng.randrange(60):02d}:00",
            rng.choice(channels),
            cost=round(rng.uniform(0, 9), 2) if rng.random() < 0.7 else None,
            has_cost_row=rng.random() < 0.9,
        )

    sessions = [session(f"s{i:03d}", rng.choice(days)) for i in range(240)]
    conversions = [
        Conversion(
            f"c{i:02d}",
            f"u{rng.randrange(40):02d}",
            f"{rng.choice(days)} {rng.randrange(24):02d}:30:00",
            round(rng.uniform(5, 300), 2),
        )
        for i in range(60)
    ]
    changes: list[list[Change]] = [[] for _ in days]
    for index in range(1, len(days)):
        window = days[max(0, index - 3) : index]
        changes[index] += [
            session(f"late{index:02d}{n}", rng.choice(window)) for n in range(rng.randrange(3))
        ]
        changes[index] += [Restated(rng.randrange(1000), round(rng.uniform(0, 12), 2)) for _ in range(2)]
    return Case(sessions, conversions), changes


def test_thirty_daily_runs_with_restatements_and_late_sessions_equal_one_full_run_byte_for_byte(
    make_db, tmp_path
):
    case, changes = thirty_days(seed=24)
    days = [(date(2023, 9, 1) + timedelta(days=i)).isoformat() for i in range(30)]
    db, redone_from = make_db(case), []
    for day, landing in zip(days, changes, strict=True):
        case = apply(db, case, landing, day, since=window_of(day, 3)[0])
        summary = daily(db, tmp_path / "daily", day, restate_days=3)
        redone_from.append(summary.time_range[1:11])
    fresh = make_db(case)
    out = tmp_path / "full"
    run(load_settings(db=fresh, out=str(out), formats=CSV_ONLY, start=days[0], end=next_day(days[-1])))
    assert read_tables(db) == read_tables(fresh)
    csv = "channel_reporting.csv"
    assert (tmp_path / "daily" / csv).read_bytes() == (out / csv).read_bytes()
    windows = [window_of(day, 3)[0] for day in days]
    assert any(start > first for start, first in zip(redone_from, windows, strict=True))  # some skipped
    assert any(start < day for start, day in zip(redone_from, days, strict=True))  # some redone
