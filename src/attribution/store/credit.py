"""Stored credit: which conversions a run replaces, and which report dates that touches.

Why delete-then-insert per range: the range selects conversions, so replacing every stored row of those
conversions inside the caller's transaction makes a rerun give identical rows, never duplicates or
primary-key errors, and a failure roll back to the previous state.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import polars as pl
from sqlalchemy import Connection, Engine, Select, delete, func, select, text

from attribution.store import claims
from attribution.timerange import TimeRange
from attribution.warehouse.bulk import bulk_insert
from attribution.warehouse.dialects import profile_of
from attribution.warehouse.locks import write_transaction
from attribution.warehouse.tables import attribution_customer_journey as acj
from attribution.warehouse.tables import attribution_failures, conversions, session_sources

_conv_ts = conversions.c.conv_date + " " + conversions.c.conv_time


def conversions_in(time_range: TimeRange) -> Select:
    """A subquery of the ids of the conversions whose timestamp lies in the range."""
    query = select(conversions.c.conv_id)
    if time_range.start is not None:
        query = query.where(_conv_ts >= time_range.start_text)
    if time_range.end is not None:
        query = query.where(_conv_ts < time_range.end_text)
    return query


def conversion_dates(conn: Connection) -> tuple[str, str] | None:
    """The first and last conversion date in the warehouse (``None``: no conversion). Two queries, as one
    index lookup each where ``conv_date`` leads an index (one query with both would scan the table)."""
    first = conn.scalar(select(func.min(conversions.c.conv_date)))
    return None if first is None else (first, conn.scalar(select(func.max(conversions.c.conv_date))))


def credited_dates(conn: Connection, time_range: TimeRange) -> set[str]:
    """Dates of the sessions that hold credit of the range's conversions (they change when it is replaced)."""
    query = select(acj.c.event_date).distinct().where(acj.c.conv_id.in_(conversions_in(time_range)))
    return set(conn.scalars(query)) - {None}


def touched_dates(conn: Connection, time_range: TimeRange, new_dates: Iterable[str]) -> set[str] | None:
    """The report dates a run changes: its range's, those of the sessions getting credit (``new_dates``) and
    of those about to lose it; ``None`` for an open range, which rebuilds the whole report.

    Read before the old credit is replaced, inside the write lock.
    """
    if not time_range.is_bounded:
        return None
    return set(new_dates) | set(time_range.dates()) | credited_dates(conn, time_range)


def replace_credit(
    conn: Connection, time_range: TimeRange, *, whole_range: bool, incoming: Select | list[str]
) -> None:
    """Make room for a run's credit: with ``whole_range`` all stored credit of the range's conversions goes;
    always the earlier credit and failures of the ``incoming`` conversions (ids, or a query of them). The
    caller inserts the new rows in the same transaction."""
    if whole_range:
        _delete_range(conn, time_range)
    _forget_conversions(conn, incoming)


def _delete_range(conn: Connection, time_range: TimeRange) -> None:
    """Remove the stored credit of the range's conversions (all of it for an unbounded range)."""
    if time_range.start is None and time_range.end is None:  # all of it: no lookup per row
        if profile_of(conn).transactional_truncate:
            conn.execute(text(f"TRUNCATE {acj.name}"))
        else:
            conn.execute(delete(acj))
    else:
        conn.execute(delete(acj).where(acj.c.conv_id.in_(conversions_in(time_range))))


def _forget_conversions(conn: Connection, ids: Select | list[str], failed: list[str] | None = None) -> None:
    """Drop the earlier credit of conversions getting new credit, and the failures recorded for them and for
    the conversions failing anew (``failed``), whose earlier credit stays."""
    failed = failed or []
    if isinstance(ids, Select) or ids:
        conn.execute(delete(acj).where(acj.c.conv_id.in_(ids)))
        conn.execute(delete(attribution_failures).where(attribution_failures.c.conv_id.in_(ids)))
    if failed:
        conn.execute(delete(attribution_failures).where(attribution_failures.c.conv_id.in_(failed)))


def insert_credits(conn: Connection, credits: pl.DataFrame) -> None:
    """Append labelled credit rows (``replace_credit`` has already removed what they replace)."""
    bulk_insert(conn, acj, credits)


def write_batch(engine: Engine, run_id: str, credits: pl.DataFrame, failures: pl.DataFrame) -> None:
    """Commit one remote batch at once, under the write lock: its credit replaces any earlier rows of those
    conversions, its failures are recorded (replacing earlier ones), so a killed run loses nothing."""
    credited = credits["conv_id"].unique().to_list()
    with write_transaction(engine) as conn:
        claims.refresh(conn, run_id)  # the run is alive: its claims still count
        _forget_conversions(conn, credited, failures["conv_id"].to_list())
        insert_credits(conn, credits)
        failed_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        bulk_insert(
            conn,
            attribution_failures,
            failures.with_columns(run_id=pl.lit(run_id), failed_at=pl.lit(failed_at)),
        )


def stored_answers(conn: Connection, model: str, conv_type_id: str) -> pl.DataFrame:
    """The stored credit of ``model`` for a conversion type that holds the IHC phases, as the request rows
    that earned it (``conversion_id``, ``session_id``, ``timestamp``, ``channel_label``, the engagement flags)
    beside the answer (``initializer``, ``holder``, ``closer``, ``ihc``), in journey order."""
    s = session_sources.c
    query = (
        select(
            acj.c.conv_id.label("conversion_id"),
            acj.c.session_id,
            (s.event_date + " " + s.event_time).label("timestamp"),
            s.channel_name.label("channel_label"),
            s.holder_engagement,
            s.closer_engagement,
            s.impression_interaction,
            *(acj.c[name] for name in ("initializer", "holder", "closer", "ihc")),
        )
        .join(session_sources, s.session_id == acj.c.session_id)
        .where(acj.c.model == model, acj.c.conv_type_id == conv_type_id, acj.c.initializer.is_not(None))
    )
    rows = conn.execute(query)
    frame = pl.DataFrame(rows.fetchall(), schema=list(rows.keys()), orient="row")
    return frame.sort("conversion_id", "timestamp", "session_id")
