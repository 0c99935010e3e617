"""Idempotent writes of credit, and the run records.

Why delete-then-insert per range: the range selects conversions, so replacing every stored row of those
conversions inside the caller's transaction makes a rerun give identical rows, never duplicates or
primary-key errors, and a failure roll back to the previous state.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
from sqlalchemy import Connection, Engine, delete, false, func, insert, select, text, update

from attribution.bulk import bulk_insert
from attribution.dialects import profile_of
from attribution.timerange import TimeRange
from attribution.warehouse import attribution_customer_journey as acj
from attribution.warehouse import attribution_failures, attribution_runs, conversions, session_sources

_conv_ts = conversions.c.conv_date + " " + conversions.c.conv_time


def conversions_in(time_range: TimeRange):
    """A subquery of the ids of the conversions whose timestamp lies in the range."""
    query = select(conversions.c.conv_id)
    if time_range.start is not None:
        query = query.where(_conv_ts >= time_range.start_text)
    if time_range.end is not None:
        query = query.where(_conv_ts < time_range.end_text)
    return query


def credited_dates(conn: Connection, time_range: TimeRange) -> set[str]:
    """Dates of the sessions that hold credit of the range's conversions (they change when it is replaced)."""
    query = (
        select(session_sources.c.event_date)
        .distinct()
        .join(acj, acj.c.session_id == session_sources.c.session_id)
        .where(acj.c.conv_id.in_(conversions_in(time_range)))
    )
    return set(conn.scalars(query))


def delete_credits(conn: Connection, time_range: TimeRange) -> None:
    """Remove the stored credit of the range's conversions (all of it for an unbounded range)."""
    if time_range.start is None and time_range.end is None:  # all of it: no lookup per row
        if profile_of(conn).transactional_truncate:
            conn.execute(text(f"TRUNCATE {acj.name}"))
        else:
            conn.execute(delete(acj))
    else:
        conn.execute(delete(acj).where(acj.c.conv_id.in_(conversions_in(time_range))))


def insert_credits(conn: Connection, credits: pl.DataFrame) -> None:
    """Append credit rows (the caller has already removed what they replace)."""
    bulk_insert(conn, acj, credits)


def write_batch(engine: Engine, run_id: str, credits: pl.DataFrame, failures: pl.DataFrame) -> None:
    """Commit one remote batch at once: its credit replaces any earlier rows of those conversions, its
    failures are recorded (or cleared for conversions that now succeeded), so a killed run loses nothing."""
    credited = credits["conv_id"].unique().to_list()
    failed = failures["conv_id"].to_list()
    with engine.begin() as conn:
        if credited:
            conn.execute(delete(acj).where(acj.c.conv_id.in_(credited)))
        bulk_insert(conn, acj, credits)
        if credited or failed:
            conn.execute(
                delete(attribution_failures).where(attribution_failures.c.conv_id.in_(credited + failed))
            )
        failed_at = _now()
        bulk_insert(
            conn,
            attribution_failures,
            failures.with_columns(run_id=pl.lit(run_id), failed_at=pl.lit(failed_at)),
        )


WRITE_LOCK_KEY = 0x41545452
"""The PostgreSQL advisory lock ("ATTR") that serialises the writers of the output tables."""


def lock_writes(conn: Connection) -> None:
    """Serialise the writers of the output tables across processes (CLI runs, DAG runs), before they read
    what they will replace: a PostgreSQL advisory lock, SQLite's database write lock, or a table lock."""
    lock = profile_of(conn).write_lock
    if lock == "advisory":
        conn.execute(select(func.pg_advisory_xact_lock(WRITE_LOCK_KEY)))
    elif lock == "first-write":  # a transaction's first write, even of no row, takes the lock
        conn.execute(update(attribution_runs).where(false()).values(status=attribution_runs.c.status))
    else:
        conn.execute(text(f"LOCK TABLE {attribution_runs.name}"))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def start_run(engine: Engine, run_id: str, model: str, time_range: TimeRange) -> None:
    """Record that a run began (in its own transaction, so a failed run still leaves its trace)."""
    with engine.begin() as conn:
        conn.execute(
            insert(attribution_runs).values(
                run_id=run_id,
                started_at=_now(),
                status="running",
                model=model,
                range_start=time_range.start_text,
                range_end=time_range.end_text,
            )
        )


def finish_run(engine: Engine, run_id: str, status: str, summary: dict) -> None:
    """Record how a run ended, with its summary (counts, timings, or the error line)."""
    with engine.begin() as conn:
        conn.execute(
            update(attribution_runs)
            .where(attribution_runs.c.run_id == run_id)
            .values(finished_at=_now(), status=status, summary=json.dumps(summary, sort_keys=True))
        )
