"""Stored credit: which conversions a run replaces, and which report dates that touches.

Why delete-then-insert per range: the range selects conversions, so replacing every stored row of those
conversions inside the caller's transaction makes a rerun give identical rows, never duplicates or
primary-key errors, and a failure roll back to the previous state. Why per label (model and conversion
type): a run replaces only the credit its own model made, so two models' runs over overlapping ranges keep
each its own credit, and a report counts one of them (``reporting.channel_report``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    delete,
    func,
    literal,
    not_,
    select,
    text,
)
from sqlalchemy.schema import CreateIndex, DropIndex

from attribution.store.runs import renew
from attribution.timerange import TimeRange
from attribution.warehouse.bulk import bulk_insert
from attribution.warehouse.dialects import profile_of
from attribution.warehouse.locks import write_transaction
from attribution.warehouse.sources import sources_of
from attribution.warehouse.tables import (
    LABEL_COLUMNS,
    CreditLabel,
    attribution_failures,
)
from attribution.warehouse.tables import attribution_customer_journey as acj

if TYPE_CHECKING:
    from attribution.warehouse.redshift_copy import RedshiftCopy


def conversions_in(conn: Connection, time_range: TimeRange) -> Select:
    """A subquery of the ids of the conversions whose timestamp lies in the range; a bounded range's also by
    their dates, which an index serves: the date where it leads the time index (the challenge's text), the
    stored date or timestamp compared with typed bounds where it is converted (``Sources.day_range``)."""
    sources = sources_of(conn)
    conversions = sources.selectable("conversions").c
    query, timestamp = select(conversions.conv_id), conversions.conv_date + " " + conversions.conv_time
    if time_range.start is not None:
        query = query.where(timestamp >= time_range.start_text)
    if time_range.end is not None:
        query = query.where(timestamp < time_range.end_text)
    if span := time_range.date_span():
        query = query.where(conversions.conv_date.between(*span))
        if typed := sources.day_range("conversions", "conversions", ":first_date", ":last_date"):
            query = query.where(
                text(typed.removeprefix(" AND ")).bindparams(first_date=span[0], last_date=span[1])
            )
    return query


def conversion_dates(conn: Connection) -> tuple[str, str] | None:
    """The first and last conversion date in the warehouse (``None``: no conversion). Two queries, as one
    index lookup each where ``conv_date`` leads an index (one query with both would scan the table)."""
    conv_date = sources_of(conn).selectable("conversions").c.conv_date
    first = conn.scalar(select(func.min(conv_date)))
    return None if first is None else (first, conn.scalar(select(func.max(conv_date))))


def labelled_as(label: CreditLabel) -> ColumnElement[bool]:
    """The credit rows of ``label``."""
    return and_(*(acj.c[name] == value for name, value in zip(LABEL_COLUMNS, label, strict=True)))


def credited_dates(conn: Connection, time_range: TimeRange, label: CreditLabel) -> set[str]:
    """Dates of the sessions that hold ``label``'s credit of the range's conversions (they change when it is
    replaced)."""
    range_credit = and_(labelled_as(label), acj.c.conv_id.in_(conversions_in(conn, time_range)))
    return set(conn.scalars(select(acj.c.event_date).distinct().where(range_credit))) - {None}


def touched_dates(
    conn: Connection, time_range: TimeRange, label: CreditLabel, new_dates: Iterable[str]
) -> set[str] | None:
    """The report dates a run of ``label`` changes beside its range's own (``TimeRange.date_span``): those of
    the sessions getting credit (``new_dates``) and of those about to lose it; ``None`` for an open range,
    which rebuilds the whole report.

    Read before the old credit is replaced, inside the write lock.
    """
    if not time_range.is_bounded:
        return None
    return set(new_dates) | credited_dates(conn, time_range, label)


def replace_credit(
    conn: Connection,
    time_range: TimeRange,
    label: CreditLabel,
    *,
    whole_range: bool,
    incoming: Select | list[str],
) -> bool:
    """Make room for a run's credit of ``label``: with ``whole_range`` all its stored credit of the range's
    conversions goes; always its earlier credit and the failures of the ``incoming`` conversions (ids, or a
    query of them). Other labels' credit stays. The caller inserts the new rows in the same transaction
    (``loading_credit``, told whether this emptied the table); returns whether it did."""
    emptied = whole_range and _delete_range(conn, time_range, label)
    _forget_conversions(conn, label, incoming)
    return emptied


def _delete_range(conn: Connection, time_range: TimeRange, label: CreditLabel) -> bool:
    """Remove ``label``'s stored credit of the range's conversions (all of it for an unbounded range);
    whether the table is now empty (it held that label's credit alone, emptied at once)."""
    if time_range.start is not None or time_range.end is not None:
        conn.execute(
            delete(acj).where(labelled_as(label), acj.c.conv_id.in_(conversions_in(conn, time_range)))
        )
        return False
    if (emptying := profile_of(conn).empty_table) and holds_only(conn, label):
        conn.execute(text(emptying.format(table=acj.name)))
        return True
    conn.execute(delete(acj).where(labelled_as(label)))
    return False


@contextmanager
def loading_credit(conn: Connection, emptied: bool) -> Iterator[None]:
    """Inserts of credit rows in the block; into a table just ``emptied`` (``replace_credit``), its secondary
    indexes dropped before and built after them, in the same transaction.

    Why: one sort of every entry is cheaper than an insert per row into each index (a million credit
    rows on SQLite: 9.9 s of CPU and 29 s of wall time against 16.0 s and 97 s; the key's own index
    takes rows in key order, ``bulk_insert``, so it stays)."""
    indexes = sorted(acj.indexes, key=lambda ix: ix.name) if emptied and profile_of(conn).indexes else []
    for ix in indexes:
        conn.execute(DropIndex(ix))
    yield
    for ix in indexes:
        conn.execute(CreateIndex(ix))


def holds_only(conn: Connection, label: CreditLabel) -> bool:
    """Whether no other label's credit is stored (a read that stops at the first such row)."""
    return conn.execute(select(literal(1)).where(not_(labelled_as(label))).limit(1)).first() is None


def has_credit(conn: Connection, label: CreditLabel) -> bool:
    """Whether any credit of ``label`` is stored."""
    return conn.execute(select(literal(1)).where(labelled_as(label)).limit(1)).first() is not None


def stored_labels(conn: Connection) -> list[CreditLabel]:
    """The labels of the stored credit, sorted."""
    columns = [acj.c[name] for name in LABEL_COLUMNS]
    rows = conn.execute(select(*columns).distinct().order_by(*columns))
    return [CreditLabel(*row) for row in rows]


def _forget_conversions(
    conn: Connection, label: CreditLabel, ids: Select | list[str], failed: list[str] | None = None
) -> None:
    """Drop ``label``'s earlier credit of conversions getting new credit, and the failures recorded for them
    and for the conversions failing anew (``failed``), whose earlier credit stays."""
    failed = failed or []
    if isinstance(ids, Select) or ids:
        conn.execute(delete(acj).where(labelled_as(label), acj.c.conv_id.in_(ids)))
        conn.execute(delete(attribution_failures).where(attribution_failures.c.conv_id.in_(ids)))
    if failed:
        conn.execute(delete(attribution_failures).where(attribution_failures.c.conv_id.in_(failed)))


def insert_credits(
    conn: Connection, credits: pl.DataFrame, *, redshift_copy: RedshiftCopy | None = None
) -> None:
    """Append labelled credit rows (``replace_credit`` has already removed what they replace); Redshift by
    ``redshift_copy`` where given (``bulk_insert``)."""
    bulk_insert(conn, acj, credits, redshift_copy=redshift_copy)


def write_batch(
    engine: Engine,
    run_id: str,
    label: CreditLabel,
    credits: pl.DataFrame,
    failures: pl.DataFrame,
    *,
    redshift_copy: RedshiftCopy | None = None,
) -> None:
    """Commit one remote batch of ``label`` at once, under the write lock: its credit replaces the label's
    earlier rows of those conversions, its failures are recorded (replacing earlier ones), so a killed run
    loses nothing. ``redshift_copy``: see ``bulk_insert``."""
    credited = credits["conv_id"].unique().to_list()
    with write_transaction(engine) as conn:
        renew(conn, run_id)  # the run is alive: its lease, and so its claims, still count
        _forget_conversions(conn, label, credited, failures["conv_id"].to_list())
        insert_credits(conn, credits, redshift_copy=redshift_copy)
        failed_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        bulk_insert(
            conn,
            attribution_failures,
            failures.with_columns(run_id=pl.lit(run_id), failed_at=pl.lit(failed_at)),
            redshift_copy=redshift_copy,
        )


def stored_answers(conn: Connection, model: str, conv_type_id: str) -> pl.DataFrame:
    """The stored credit of ``model`` for a conversion type that holds the IHC phases, as the request rows
    that earned it (``conversion_id``, ``session_id``, ``timestamp``, ``channel_label``, the engagement flags)
    beside the answer (``initializer``, ``holder``, ``closer``, ``ihc``), in journey order."""
    sessions = sources_of(conn).selectable("session_sources")
    s = sessions.c
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
        .join(sessions, s.session_id == acj.c.session_id)
        .where(acj.c.model == model, acj.c.conv_type_id == conv_type_id, acj.c.initializer.is_not(None))
    )
    rows = conn.execute(query)
    frame = pl.DataFrame(rows.fetchall(), schema=list(rows.keys()), orient="row")
    return frame.sort("conversion_id", "timestamp", "session_id")
