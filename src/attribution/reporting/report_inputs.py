"""The inputs of each report date, fingerprinted: what a run with a restatement window compares to find the
dates whose spend, sessions, conversions or journeys changed since their report rows were built.

A date's fingerprint (``Fingerprint``) holds what its report row and its conversions' credit are made of: its
sessions (count, greatest id), their cost (cost rows, cost in millionths), its conversions (count, revenue in
millionths) and the sessions of those conversions' journeys (count, greatest id), cut as the run cuts them.
The journeys count because a session that lands late *before* a date changes the credit of that date's
conversions while nothing dated that day changed.

Why whole numbers summed in SQL: one grouped query reads every date of a run's window (no row reaches
Python), and counts and sums of millionths are exact in any order, so a date whose inputs did not change
compares equal on every warehouse, after any sequence of runs. Why a greatest id beside a count: a late
session almost always raises the count; one swapped for another keeps the count and, most often, changes
the greatest id. A session rewritten in place (same id, another channel or time) changes neither: see
``docs/data.md``.
"""

from __future__ import annotations

from collections import namedtuple
from decimal import Decimal
from typing import NamedTuple

import polars as pl
from sqlalchemy import ColumnElement, Connection, delete, insert, or_, select, text
from sqlalchemy.exc import DBAPIError

from attribution.errors import IntegrityError
from attribution.journeys import JourneyOptions, journey_cut
from attribution.reporting.channel_report import OVERFLOWS
from attribution.reporting.sqlite_scan import MICROS
from attribution.timerange import TimeRange
from attribution.warehouse.bulk import fetch_frame
from attribution.warehouse.schema import indexed_by_user
from attribution.warehouse.sources import Sources, sources_of
from attribution.warehouse.tables import INPUT_COUNTS, INPUT_IDS, LABEL_COLUMNS, channel_reporting_inputs

_NO_INPUTS = (0,) * len(INPUT_COUNTS) + (None,) * len(INPUT_IDS)


class Fingerprint(namedtuple("Fingerprint", (*INPUT_COUNTS, *INPUT_IDS), defaults=_NO_INPUTS)):
    """A report date's inputs as whole numbers and ids, the columns of ``channel_reporting_inputs``
    (``INPUT_COUNTS``, ``INPUT_IDS``, named there once); all zero and ``None`` for a date without any."""

    __slots__ = ()

    @property
    def report_part(self) -> tuple[object, ...]:
        """What the date's report row reads beside credit: its sessions and their cost."""
        return self.sessions, self.last_session, self.cost_rows, self.cost_micros

    @property
    def credit_part(self) -> tuple[object, ...]:
        """What the credit of the date's conversions is made of: them and their journeys' sessions."""
        return self.conversions, self.revenue_micros, self.journey_sessions, self.last_journey_session


NOTHING = Fingerprint()
FINGERPRINT_SCHEMA = {
    "date": pl.String,
    **dict.fromkeys(INPUT_COUNTS, pl.Int64),
    **dict.fromkeys(INPUT_IDS, pl.String),
}


class Stamp(NamedTuple):
    """What made a date's credit: the label, and a digest of the model's options and parameters and of the
    journeys' cut (``pipeline.window.credit_stamp``). Inputs recorded under another stamp compare as unknown."""

    model: str
    conv_type_id: str
    made_by: str


class Recorded(NamedTuple):
    """A date's recorded inputs and the stamp of the credit built from them."""

    fingerprint: Fingerprint
    stamp: Stamp


def _micros(expression: str) -> str:
    """SQL: ``expression`` in whole millionths, rounded as the report's cost is (``sqlite_scan.MICROS``)."""
    return f"CAST(ROUND({expression} * {MICROS}) AS BIGINT)"


_INPUTS_SQL = f"""
WITH conv AS (
    SELECT conv_id, user_id, conv_date, conv_time, revenue
    FROM {{conversions}}
    WHERE conv_date BETWEEN :first_date AND :last_date{{conversion_dates}}{{skip_conversions}}
),
parts AS (
    SELECT s.event_date AS date, COUNT(*) AS sessions, COUNT(k.session_id) AS cost_rows,
           SUM({_micros("COALESCE(k.cost, 0.0)")}) AS cost_micros, 0 AS conversions, 0 AS revenue_micros,
           0 AS journey_sessions, MAX({{session_id}}) AS last_session, NULL AS last_journey_session
    FROM {{sessions}}
    LEFT JOIN {{costs}} ON k.session_id = s.session_id
    WHERE s.event_date BETWEEN :first_date AND :last_date{{session_dates}}
    GROUP BY s.event_date
    UNION ALL
    SELECT conv_date, 0, 0, 0, COUNT(*), SUM({_micros("revenue")}), 0, NULL, NULL
    FROM conv
    GROUP BY conv_date
    UNION ALL
    SELECT c.conv_date, 0, 0, 0, 0, 0, COUNT(*), NULL, MAX({{session_id}})
    FROM conv c
    JOIN {{sessions}}
      ON {{journey_sessions}}
    GROUP BY c.conv_date
)
SELECT date, {", ".join(f"CAST(SUM({name}) AS BIGINT) AS {name}" for name in INPUT_COUNTS)},
       {", ".join(f"MAX({name}) AS {name}" for name in INPUT_IDS)}
FROM parts
GROUP BY date
"""


def inputs_sql(sources: Sources, options: JourneyOptions) -> str:
    """The one grouped query of the fingerprints of the dates from ``:first_date`` to ``:last_date``, with
    journeys cut by ``options`` (``journeys.journey_cut``), over the inputs as ``sources`` reads them; only
    fixed fragments and quoted names are inserted."""
    journey_sessions, skip_conversions = journey_cut(sources, options, dated=True)
    return _INPUTS_SQL.format(
        conversions=sources.relation("conversions"),
        sessions=sources.relation("session_sources", "s"),
        costs=sources.relation("session_costs", "k"),
        session_id=sources.text_of("session_sources", "session_id", "s"),
        conversion_dates=sources.day_range("conversions", "conversions", ":first_date", ":last_date"),
        session_dates=sources.day_range("session_sources", "s", ":first_date", ":last_date"),
        journey_sessions=journey_sessions,
        skip_conversions=skip_conversions,
    )


def input_fingerprints(
    conn: Connection, first: str, last: str, options: JourneyOptions
) -> dict[str, Fingerprint]:
    """The fingerprint of each date from ``first`` to ``last`` that has inputs (a date without any has
    ``NOTHING``), read as of now in one grouped query."""
    bounds = {"first_date": first, "last_date": last}
    if options.skip_bad_rows:  # the skipped rows' checks read the range as the journey query binds it
        bounds |= {"range_start": f"{first} 00:00:00", "range_end": f"{last} 99:99:99"}
    statement = text(inputs_sql(sources_of(conn), options))
    try:
        rows = fetch_frame(conn, statement, bounds, FINGERPRINT_SCHEMA, hash_joins=not indexed_by_user(conn))
    except DBAPIError as error:
        if not any(overflow in str(error.orig) for overflow in OVERFLOWS):
            raise
        raise IntegrityError(
            f"Cannot fingerprint the inputs of {first} to {last}: a date's cost or revenue in millionths is "
            "beyond a signed 64-bit integer"
        ) from None
    return {row[0]: Fingerprint(*row[1:]) for row in rows.iter_rows()}


def recorded_inputs(conn: Connection, first: str, last: str) -> dict[str, Recorded]:
    """The inputs recorded for the dates from ``first`` to ``last``, with the stamp of their credit."""
    c = channel_reporting_inputs.c
    columns = [c[name] for name in (*Fingerprint._fields, *LABEL_COLUMNS, "made_by")]
    rows = conn.execute(select(c.date, *columns).where(c.date.between(first, last)))
    size = len(Fingerprint._fields)
    return {row[0]: Recorded(Fingerprint(*row[1 : size + 1]), Stamp(*row[size + 1 :])) for row in rows}


def _dates_where(span: tuple[str, str] | None, listed: frozenset[str]) -> ColumnElement[bool]:
    """SQL: a recorded date in ``span`` (first to last) or in ``listed``."""
    c = channel_reporting_inputs.c
    return or_(c.date.in_(sorted(listed)), *([c.date.between(*span)] if span else []))


def record_inputs(
    conn: Connection,
    inputs: dict[str, Fingerprint],
    time_range: TimeRange,
    listed: frozenset[str],
    stamp: Stamp,
) -> None:
    """Record ``inputs`` for the dates whose report rows a run over ``time_range`` rebuilt from them: the dates
    it covers whole (all of whose conversions it re-attributed) and those ``listed``, replacing what was
    recorded for its dates (a date it covers in part, or without inputs, keeps no row). Inside the report's
    transaction."""
    conn.execute(delete(channel_reporting_inputs).where(_dates_where(time_range.date_span(), listed)))
    first, last = time_range.whole_days() or ("", "")
    rows = [
        {"date": day, **fingerprint._asdict(), **stamp._asdict()}
        for day, fingerprint in sorted(inputs.items())
        if first <= day <= last or day in listed
    ]
    if rows:
        conn.execute(insert(channel_reporting_inputs), rows)


def forget_inputs(conn: Connection, span: tuple[str, str] | None) -> None:
    """Drop the recorded inputs of the dates of ``span`` (``None``: of every date): a run without a window
    rebuilt them without fingerprinting their inputs, so a later window must not trust what was recorded."""
    table = channel_reporting_inputs
    conn.execute(delete(table).where(table.c.date.between(*span)) if span else delete(table))


def credit_changed(recorded: Recorded | None, current: Fingerprint, stamp: Stamp) -> bool:
    """Whether the credit of a date's conversions may differ from a recompute's: its conversions or their
    journeys changed, its credit was made otherwise (another stamp), or nothing was recorded for a date
    that has inputs."""
    if recorded is None:
        return current != NOTHING
    return recorded.stamp != stamp or recorded.fingerprint.credit_part != current.credit_part


def report_changed(recorded: Recorded | None, current: Fingerprint, stamp: Stamp) -> bool:
    """Whether a date's report row may read other sessions or cost now (as ``credit_changed``)."""
    if recorded is None:
        return current != NOTHING
    return recorded.stamp != stamp or recorded.fingerprint.report_part != current.report_part


def input_notes(day: str, before: Fingerprint, after: Fingerprint) -> list[str]:
    """What changed in a date's inputs since they were recorded, one line per kind, for the run's summary."""
    notes = []
    if after.cost_micros != before.cost_micros:
        old, new = _money(before.cost_micros), _money(after.cost_micros)
        notes.append(
            f"spend restated on {day}: {_money(after.cost_micros - before.cost_micros, '+')} ({old} -> {new})"
        )
    if after.sessions != before.sessions:
        landed = "late sessions" if after.sessions > before.sessions else "sessions removed"
        notes.append(f"{landed} on {day}: {_count(after.sessions - before.sessions, 'session')}")
    elif after.last_session != before.last_session:
        notes.append(f"sessions changed on {day}: as many as before, other ids")
    if after.conversions != before.conversions or after.revenue_micros != before.revenue_micros:
        revenue = _money(after.revenue_micros - before.revenue_micros, "+")
        count = _count(after.conversions - before.conversions, "conversion")
        notes.append(f"conversions changed on {day}: {count}, revenue {revenue}")
    elif (
        before.journey_sessions != after.journey_sessions
        or before.last_journey_session != after.last_journey_session
    ):
        count = _count(after.journey_sessions - before.journey_sessions, "session")
        notes.append(
            f"journeys changed on {day}: {count} in its conversions' journeys (sessions landed late)"
        )
    return notes


def _money(micros: int, sign: str = "") -> str:
    """Millionths as money: cents where they are exact, else every digit (``0.001``), never rounded."""
    amount = Decimal(micros) / MICROS
    places = 2 if micros % 10_000 == 0 else 6
    shown = f"{amount:{sign},.{places}f}"
    return shown.rstrip("0") if places == 6 else shown


def _count(change: int, noun: str) -> str:
    return f"{change:+,} {noun}{'' if abs(change) == 1 else 's'}"
