"""Inputs in the types real warehouses hold them, read natively: each typed copy of a generated warehouse
gives the tables and the CSV of its challenge-form copy, on SQLite, PostgreSQL and the Redshift SQL.

Before: PostgreSQL refused ``DATE`` and ``TIME`` columns (``operator does not exist: date ~ unknown``), the
checks refused ``BOOLEAN`` flags and SQLite's ``REAL`` flags (1.0), and tables named in mixed case were
"missing" on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from attribution import load_settings, run
from attribution.errors import BadRowsError, SchemaError
from attribution.sample_data.generate import generate_database
from tests.oracle import read_tables
from tests.retyped import (
    Form,
    Row,
    Rows,
    challenge_form,
    in_some_zone,
    read_rows,
    renamed,
    renumbered,
    retyped,
    shifted,
    single_timestamp,
    to_date,
    to_decimal,
    to_time,
    to_timestamp,
    write_form,
)

FLAGS = ("holder_engagement", "closer_engagement", "impression_interaction")
DAY = ("2023-08-31", "2023-09-01")
"""A day of the generated history, for a bounded run after the whole one."""


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Rows:
    """The rows of a small generated warehouse (what `attribution generate` makes)."""
    path = tmp_path_factory.mktemp("typed") / "generated.db"
    generate_database(path, sessions=1_500, conversions=80, days=4, seed=5)
    return read_rows(path)


def flags(kind: str, convert: Callable[[object], object]) -> dict[str, tuple[str, Callable]]:
    return dict.fromkeys(FLAGS, (kind, convert))


FORMS: dict[str, Callable[[Form], Form]] = {
    "date-and-time-columns": lambda form: retyped(
        form,
        event_date=("DATE", to_date),
        conv_date=("DATE", to_date),
        event_time=("TIME", to_time),
        conv_time=("TIME", to_time),
    ),
    "boolean-flags": lambda form: retyped(form, **flags("BOOLEAN", bool)),
    "real-flags": lambda form: retyped(form, **flags("REAL", float)),
    "mixed-case-table-names": lambda form: renamed(
        form,
        {
            "session_sources": "Session_Sources",
            "conversions": "Conversions",
            "session_costs": "Session_Costs",
        },
        {},
    ),
    "one-timestamp-column": lambda form: single_timestamp(form, "TIMESTAMP", to_timestamp),
    "numeric-money-and-integer-ids": lambda form: retyped(
        form,
        revenue=("NUMERIC", to_decimal),
        cost=("NUMERIC(18, 6)", to_decimal),
        session_id=("BIGINT", int),
        user_id=("BIGINT", int),
        conv_id=("BIGINT", int),
    ),
}
SERVER_FORMS: dict[str, Callable[[Form], Form]] = {
    "timestamps-with-time-zone": lambda form: single_timestamp(
        form, "TIMESTAMP WITH TIME ZONE", in_some_zone
    ),
}


def run_both(backend: Callable[[], str], rows: Rows, form: Form, tmp_path: Path, **options: object) -> list:
    """Each copy's tables and CSV after a run over every date, then a run over one day."""
    results = []
    for name, stored in (("challenge", challenge_form()), ("typed", form)):
        db, out = backend(), tmp_path / name
        write_form(db, rows, stored)
        found = []
        for start, end in ((None, None), DAY):
            settings = load_settings(
                db=db, out=str(out), model="linear", formats=("csv",), start=start, end=end
            )
            run(settings.replaced(**options))
            found.append((read_tables(db), (out / "channel_reporting.csv").read_bytes()))
        results.append(found)
    return results


@pytest.mark.parametrize("form", list(FORMS))
def test_a_typed_copy_gives_the_tables_and_csv_of_the_challenge_copy(backend, rows, tmp_path, form):
    rows = renumbered(rows) if "integer-ids" in form else rows
    challenge, typed = run_both(backend, rows, FORMS[form](challenge_form()), tmp_path)
    assert typed == challenge
    assert challenge[0][0][1], "the report has rows"


# SQLite has no timestamp with a time zone (text with offsets: the source mapping's test)
@pytest.mark.parametrize("backend", ["postgresql", "redshift-sql"], indirect=True)
@pytest.mark.parametrize("form", list(SERVER_FORMS))
def test_timestamps_with_a_time_zone_are_read_as_their_utc_instant(backend, rows, tmp_path, form):
    challenge, typed = run_both(backend, rows, SERVER_FORMS[form](challenge_form()), tmp_path)
    assert typed == challenge


LAST_MOMENT = "9999-12-31 23:59:59.999999"
"""The latest range end a run accepts (Python's last moment): its last date is the calendar's last."""


@pytest.mark.parametrize(
    "form",
    [
        "date-and-time-columns",
        "one-timestamp-column",
        "one-text-timestamp-column",
    ],
)
def test_a_range_ending_at_the_last_accepted_moment_reads_its_last_day(backend, rows, tmp_path, form):
    """A typed or converted date is also compared with bounds a day on (``Sources.day_range``). Before:
    SQLite's day after 9999-12-31 is NULL, and PostgreSQL's text of it ``10000-01-01`` sorts before
    ``9999-12-31``, so a range ending at the last accepted moment selected nothing of its last day."""
    last_days = shifted(rows, "9999-12-31")
    forms = {**FORMS, "one-text-timestamp-column": lambda f: single_timestamp(f, "TEXT", str)}
    found = []
    for name, stored in (("challenge", challenge_form()), (form, forms[form](challenge_form()))):
        db, out = backend(), tmp_path / name
        write_form(db, last_days, stored)
        settings = load_settings(
            db=db, out=str(out), model="linear", formats=("csv",), start="9999-12-31", end=LAST_MOMENT
        )
        run(settings)
        found.append((read_tables(db), (out / "channel_reporting.csv").read_bytes()))
    challenge, typed = found
    assert challenge[0][1], "the last day has report rows"
    assert typed == challenge


def _typed_with(rows: Rows, change: Callable[[Row], None]) -> Rows:
    """``rows`` with the first session changed by ``change``."""
    sessions = [dict(row) for row in rows["session_sources"]]
    change(sessions[0])
    return {**rows, "session_sources": sessions}


@pytest.mark.parametrize(
    ("form", "change", "check"),
    [
        ("boolean-flags", lambda row: row.update(holder_engagement=None), "missing-session-value"),
        ("real-flags", lambda row: row.update(closer_engagement=2.0), "bad-engagement-flag"),
        ("date-and-time-columns", lambda row: row.update(event_date=None), "missing-session-key"),
    ],
)
def test_what_a_typed_column_can_hold_wrongly_is_named_in_one_line(
    backend, rows, tmp_path, form, change, check
):
    rows = _typed_with(rows, change)
    db = backend()
    write_form(db, rows, FORMS[form](challenge_form()))
    with pytest.raises(BadRowsError) as refused:
        run(load_settings(db=db, out=str(tmp_path), model="linear", formats=("csv",)))
    message = str(refused.value)
    assert f"({check})" in message and str(rows["session_sources"][0]["session_id"]) in message
    assert "\n" not in message


def test_a_column_whose_type_cannot_hold_its_values_is_named(postgres_url, rows, tmp_path):
    write_form(postgres_url, rows, retyped(challenge_form(), channel_name=("INTEGER", lambda _value: 1)))
    with pytest.raises(
        SchemaError, match=r"^Input column 'session_sources\.channel_name' is INTEGER, .*label"
    ):
        run(load_settings(db=postgres_url, out=str(tmp_path), model="linear", formats=("csv",)))


def _with_fraction(seconds: float) -> Callable[[object], time]:
    """A ``TIME`` of the text time plus a fraction of a second (its canonical text is the whole second)."""
    return lambda value: (datetime.combine(date.min, to_time(value)) + timedelta(seconds=seconds)).time()


def _stamped_with_fraction(seconds: float) -> Callable[[str], datetime]:
    return lambda value: to_timestamp(value) + timedelta(seconds=seconds)


def _same_second_sessions(rows: Rows) -> Rows:
    """``rows`` with, for every conversion, a session of its user in its very second and one a second
    before: the second is not before the conversion, the one before is."""
    added = []
    for number, conversion in enumerate(rows["conversions"]):
        moment = datetime.fromisoformat(f"{conversion['conv_date']} {conversion['conv_time']}")
        for suffix, at in (("same", moment), ("before", moment - timedelta(seconds=1))):
            template = rows["session_sources"][number % len(rows["session_sources"])]
            added.append(
                {
                    **template,
                    "session_id": f"{conversion['conv_id']}-{suffix}",
                    "user_id": conversion["user_id"],
                    "event_date": at.strftime("%Y-%m-%d"),
                    "event_time": at.strftime("%H:%M:%S"),
                }
            )
    return {**rows, "session_sources": [*rows["session_sources"], *added]}


FRACTION_FORMS: dict[str, Callable[[Form], Form]] = {
    "date-and-time-with-fractions": lambda form: retyped(
        form,
        event_date=("DATE", to_date),
        conv_date=("DATE", to_date),
        event_time=("TIME", _with_fraction(0.5)),
        conv_time=("TIME", _with_fraction(0.7)),
    ),
    "one-timestamp-with-fractions": lambda form: retyped(
        single_timestamp(form, "TIMESTAMP", _stamped_with_fraction(0.5)),
        conv_timestamp=("TIMESTAMP", lambda value: value + timedelta(seconds=0.2)),
    ),
}


@pytest.mark.parametrize("backend", ["postgresql", "redshift-sql"], indirect=True)
@pytest.mark.parametrize("form", list(FRACTION_FORMS))
@pytest.mark.parametrize("lookback_days", [None, 1])
def test_typed_sessions_are_compared_with_their_conversion_to_the_whole_second(
    backend, rows, tmp_path, form, lookback_days
):
    """A typed session's date and time are compared with its conversion as stored (``Sources.stored_moment``),
    against the conversion's whole second: a session in the conversion's own second is never before it,
    whatever the fractions of either, as its text (to the second) says; a lookback cuts at a whole second."""
    rows = _same_second_sessions(rows)
    challenge, typed = run_both(
        backend, rows, FRACTION_FORMS[form](challenge_form()), tmp_path, lookback_days=lookback_days
    )
    assert typed == challenge
    assert challenge[0][0][1], "the report has rows"
