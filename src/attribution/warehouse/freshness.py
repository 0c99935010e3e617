"""Freshness and completeness of a run's inputs: whether the days it reports look fully landed.

Why: ad platforms' spend and analytics' sessions arrive after the day they describe. A day whose paid
sessions have no cost rows yet, or a range whose last hours hold no session, reports as zero spend or
missing credit, and a marketer moves budget on it. Like dbt's source freshness, a run checks before it
writes; its policy (``--on-stale``) stops it or warns.

The rules, per date of a bounded run (an open range recomputes whatever has landed, and is not checked;
``attribution check`` checks the last week of the data):

- cost landed: a paid channel with sessions on the date has cost rows for some of them. A channel is paid
  when it has cost on another date of the range or on a report date of the week before (read from
  ``channel_reporting``, so the check costs the range's own dates, not the history);
- sessions landed: the newest session is no more than ``SESSION_GAP_HOURS`` before the range's end;
- conversions landed: a range with sessions has conversions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, Engine, text

from attribution.errors import StaleInputError
from attribution.timerange import TimeRange, zone_info
from attribution.warehouse.input_checks import connection
from attribution.warehouse.schema import input_kinds
from attribution.warehouse.sources import Sources, sources_of
from attribution.warehouse.tables import channel_reporting

StalePolicy = Literal["error", "warn"]
SESSION_GAP_HOURS = 6
"""Hours before a range's end within which some session must have landed: a shop's quietest hours are
fewer, and a day's export that stopped early leaves more."""
PAID_HISTORY_DAYS = 7
"""Report dates before the range whose spend says which channels are paid."""

_SESSIONS_AND_COST = """
SELECT s.event_date, s.channel_name, COUNT(*) AS sessions, COUNT(c.session_id) AS costed,
       SUM(CASE WHEN c.cost > 0 THEN 1 ELSE 0 END) AS paid
FROM {sessions}
LEFT JOIN {costs} ON c.session_id = s.session_id
WHERE {dates}
GROUP BY s.event_date, s.channel_name
"""
_PAID_BEFORE = """
SELECT DISTINCT channel_name FROM channel_reporting WHERE date >= :since AND date < :first AND cost > 0
"""
_NEWEST_SESSION = """
SELECT MAX(s.event_date || ' ' || s.event_time) FROM {sessions} WHERE {dates}
"""
_NEWEST_OF_ALL = "SELECT MAX(event_date || ' ' || event_time) FROM {sessions}"
_CONVERSIONS = "SELECT COUNT(*) FROM {conversions} WHERE {dates}"


def _sessions_and_cost(sources: Sources) -> str:
    dates = sources.dated("session_sources", "s", ":first", ":last")
    sessions, costs = sources.relation("session_sources", "s"), sources.relation("session_costs", "c")
    return _SESSIONS_AND_COST.format(sessions=sessions, costs=costs, dates=dates)


def newest_session(conn: Connection, sources: Sources) -> str | None:
    """The newest session's ``YYYY-MM-DD HH:MM:SS`` (``None``: no session), read through the date index: the
    largest stored date (or timestamp), then the sessions of the dates it can stand for (``Sources.newest_days``).

    Why not the largest canonical date: on a typed column that is text made of the column, which no index
    serves, so each daily run read every session twice. Text that names no day is compared whole, as text."""
    newest = conn.scalar(text(sources.newest_sql("session_sources")))
    if newest is None:
        return None
    days = sources.newest_days("session_sources", newest)
    if days is None:
        return conn.scalar(text(_NEWEST_OF_ALL.format(sessions=sources.relation("session_sources"))))
    dates = sources.dated("session_sources", "s", ":first", ":last")
    newest_sql = _NEWEST_SESSION.format(sessions=sources.relation("session_sources", "s"), dates=dates)
    first, last = days
    return conn.scalar(text(newest_sql), {"first": first, "last": last})


def _conversions(sources: Sources) -> str:
    dates = sources.dated("conversions", "conversions", ":first", ":last")
    return _CONVERSIONS.format(conversions=sources.relation("conversions"), dates=dates)


@dataclass(frozen=True)
class Stale:
    """One reason a date's inputs look incomplete, as one line."""

    date: str
    reason: str

    def line(self) -> str:
        return f"{self.date}: {self.reason}"


def find_stale(bind: Engine | Connection, time_range: TimeRange) -> list[Stale]:
    """What looks not yet landed on the dates a run over ``time_range`` reports (see the module docstring),
    by date."""
    span = time_range.date_span()
    if span is None:
        return []
    first, last = span
    sources = sources_of(bind)
    with connection(bind) as conn:
        newest = newest_session(conn, sources)
        if newest is None:
            return []
        rows = conn.execute(text(_sessions_and_cost(sources)), {"first": first, "last": last}).all()
        paid = {channel for _date, channel, _s, _c, priced in rows if priced} | _paid_before(conn, first)
        found = [
            Stale(day, f"{channel} has {sessions:,} sessions and no cost rows (a paid channel)")
            for day, channel, sessions, costed, _priced in rows
            if channel in paid and sessions and not costed
        ]
        found += _sessions_missing(newest, time_range, sources.report_zone)
        if rows and not conn.scalar(text(_conversions(sources)), {"first": first, "last": last}):
            found.append(Stale(last, f"no conversions from {first} to {last}, although sessions have landed"))
    return sorted(found, key=lambda stale: stale.date)


def _paid_before(conn: Connection, first: str) -> set[str]:
    """Channels with spend on the report dates of the week before ``first`` (none before a first run)."""
    if channel_reporting.name not in input_kinds(conn):
        return set()
    since = (datetime.fromisoformat(first) - timedelta(days=PAID_HISTORY_DAYS)).date().isoformat()
    return set(conn.execute(text(_PAID_BEFORE), {"since": since, "first": first}).scalars())


def _sessions_missing(newest: str, time_range: TimeRange, zone: str) -> list[Stale]:
    """The range's last hours without any session, when the range has ended (now, in the report's ``zone``,
    as the pipeline's timestamps are)."""
    if time_range.end is None:
        return []
    end = min(time_range.end.replace(tzinfo=None), datetime.now(zone_info(zone)).replace(tzinfo=None))
    if newest >= (end - timedelta(hours=SESSION_GAP_HOURS)).isoformat(sep=" "):  # as the SQL compares them
        return []
    return [
        Stale(
            end.date().isoformat(),
            f"the newest session is {newest}, over {SESSION_GAP_HOURS} hours before the range's end",
        )
    ]


def last_week(bind: Engine | Connection) -> TimeRange:
    """The last ``PAID_HISTORY_DAYS`` dates the sessions reach (what ``attribution check`` looks at)."""
    with connection(bind) as conn:
        newest = newest_session(conn, sources_of(bind))
    if newest is None:
        return TimeRange()
    end = datetime.fromisoformat(newest[:10]) + timedelta(days=1)
    return TimeRange(end - timedelta(days=PAID_HISTORY_DAYS), end)


def days_of(time_range: TimeRange) -> list[str]:
    """Each date of a bounded range, first to last (for a short one: ``attribution check``'s week)."""
    span = time_range.date_span()
    if span is None:
        return []
    first, last = (datetime.fromisoformat(day) for day in span)
    return [(first + timedelta(days=i)).date().isoformat() for i in range((last - first).days + 1)]


def enforce_fresh(bind: Engine | Connection, time_range: TimeRange, policy: StalePolicy) -> list[str]:
    """Stop the run (``StaleInputError``, one line naming the first date and reason) under ``error``; under
    ``warn``, the notes to show."""
    found = find_stale(bind, time_range)
    if found and policy == "error":
        more = f" ({len(found) - 1} more: see `attribution check`)" if len(found) > 1 else ""
        raise StaleInputError(
            f"Inputs look incomplete for {found[0].line()}{more}; run again when they have landed, "
            "or run anyway with --on-stale warn (ATTRIBUTION_ON_STALE=warn)"
        )
    return [f"Inputs look incomplete for {stale.line()}" for stale in found]
