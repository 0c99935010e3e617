"""The channel report: per channel and session date, cost, credit and credit-weighted revenue.

Why two independent sums: cost comes from the sessions themselves (each session once, NULL or missing
cost as 0), so sessions that led to no conversion keep their cost and sessions shared by two journeys are
not counted twice; credit comes from the stored attribution joined to the conversions' revenue.

Why one model at a time: the credit table holds every model's credit side by side (``store.credit``); a report
that summed it would mix them. The report counts the credit of one label (model and conversion type), which
its rows name; a rebuild for another label than the rows hold rebuilds all of them (``ReportScope`` widened),
keeping their cost, which does not depend on the model.

Why a run's report work follows its range, not the history: a run rebuilds the rows of the dates whose
credit it changed (``ReportScope``). Their credit is read from the credit table by date (it records each
credited session's date and channel); their cost is read anew only for the run's own dates, from the
sessions of those dates (an index by date), and kept as reported for the earlier dates its journeys reach,
whose sessions it did not read. Only a run over an open range rebuilds every row, from a scan of every
session (``aggregate_session_costs``), which can run before and beside attribution. SQLite has no hash
aggregation (its GROUP BY sorts every row), so there the scan is read in columnar chunks by a child process
and summed by Polars; other warehouses aggregate in SQL.
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import ColumnElement, Connection, Engine, bindparam, delete, func, or_, select, text
from sqlalchemy.exc import DBAPIError

from attribution.errors import IntegrityError
from attribution.reporting import sqlite_scan as scan_module
from attribution.reporting.metrics import RATIOS, ratio_view_sql, with_ratios
from attribution.reporting.sqlite_scan import (
    COST_SCHEMA,
    LARGEST_MICROS,
    MICROS,
    SESSION_COST_SQL,
    beyond_sum,
)
from attribution.warehouse.bulk import bulk_insert, fetch_frame
from attribution.warehouse.engine import SQLITE_BUSY_SECONDS
from attribution.warehouse.locks import schema_transaction
from attribution.warehouse.schema import input_kinds, sqlite_rowid
from attribution.warehouse.sources import Sources, sources_of
from attribution.warehouse.tables import LABEL_COLUMNS, CreditLabel, channel_reporting

if TYPE_CHECKING:
    from attribution.warehouse.redshift_copy import RedshiftCopy

CREDIT_SUM_SCHEMA = {
    "channel_name": pl.String,
    "date": pl.String,
    "ihc": pl.Float64,
    "ihc_revenue": pl.Float64,
}
SCAN_ROWS = 1_000_000
"""Sessions per columnar read on SQLite: bounds memory to a few hundred MB whatever the table size."""
CHILD_SCAN_ROWS = 100_000
"""Sessions beyond which a SQLite scan is worth the columnar scan's child process. Up to this many, SQLite's own
join sums them in a fraction of the time a second interpreter takes to start and import Polars (measured side by
side on a busy 2-core machine: 2,000 sessions 4 ms against 1.4 s, 60,000 0.34 s against 1.4 s, 150,000 1.5 s
against 2.7 s; at 500,000 the child was ahead)."""

REPORT_SCHEMA = {
    "channel_name": pl.String,
    "date": pl.String,
    "cost": pl.Float64,
    "ihc": pl.Float64,
    "ihc_revenue": pl.Float64,
    **dict.fromkeys(LABEL_COLUMNS, pl.String),
}
"""``channel_reporting``'s columns, as a frame holds them."""
REPORT_COLUMNS = (*list(REPORT_SCHEMA)[:5], *RATIOS, *LABEL_COLUMNS)
"""The columns of the report files: the label last, so columns read by position stay where they were."""
REPORT_VIEW = "channel_reporting_ratios"
"""The view of ``channel_reporting`` with CPO and ROAS, for BI tools that read the warehouse directly."""

_CREDIT_SQL = """
SELECT a.channel_name, a.event_date AS date, a.ihc, a.ihc * v.revenue AS ihc_revenue
FROM attribution_customer_journey a
JOIN {conversions} ON v.conv_id = a.conv_id
WHERE a.model = :model AND a.conv_type_id = :conv_type_id AND {where}
"""
_DATES = "IN :dates"
_SPAN = "BETWEEN :first_date AND :last_date"
_BEYOND_SQL = """
SELECT s.channel_name, s.event_date FROM {sessions} LEFT JOIN {costs} ON c.session_id = s.session_id
GROUP BY s.event_date, s.channel_name
HAVING abs(TOTAL(CAST(ROUND(COALESCE(c.cost, 0.0) * {micros}) AS BIGINT))) > {largest}
ORDER BY s.event_date, s.channel_name LIMIT 1
"""
OVERFLOWS = ("integer overflow", "bigint out of range")
"""What SQLite and PostgreSQL say when the session cost SQL's integers overflow."""


@dataclass(frozen=True)
class ReportScope:
    """The report rows a run rebuilds: every row (``dates`` ``None``), or those of ``dates`` (the dates whose
    credit it changed) and of ``span``, the run's own dates from first to last, whose cost is read anew; the
    other dates keep the cost already reported, read anew only for a date that has no row yet.

    Why a span, not its days: a range may cover ten thousand years, and SQL reads its days by two bounds
    (one index range) where a list would bind a value per day."""

    dates: frozenset[str] | None
    span: tuple[str, str] | None = None
    recosted: frozenset[str] = frozenset()
    """Dates outside the span whose cost is read anew all the same: their spend or sessions changed since
    they were reported (a restatement window's, ``reporting.report_inputs``); they are among ``dates``."""

    @property
    def other_dates(self) -> frozenset[str]:
        """``dates`` outside the span: the few earlier dates the run's journeys reach, read by a list."""
        first, last = self.span or ("", "")
        return frozenset(date for date in self.dates or () if not first <= date <= last)

    def where(self, column: ColumnElement[str]) -> ColumnElement[bool]:
        """SQL: ``column`` holds one of the scope's dates (its other dates, or a day of its span)."""
        listed = column.in_(sorted(self.other_dates))
        return listed if self.span is None else or_(listed, column.between(*self.span))


def aggregate_session_costs(engine: Engine) -> pl.DataFrame:
    """Total session cost per channel and date over the whole session table: the columnar scan where
    ``columnar_rowid`` names a rowid to read the sessions by, the warehouse's own query elsewhere."""
    sources = sources_of(engine)
    if rowid := columnar_rowid(engine, sources):
        return _aggregate_sqlite_costs(engine, sources, rowid)
    with engine.connect() as conn:
        return _summed_costs(conn, lambda _spanned: _session_cost_sql(sources, ""), None)


def columnar_rowid(engine: Engine, sources: Sources) -> str | None:
    """The name of the rowid the columnar scan reads the sessions by, or ``None`` where the warehouse's own
    query sums them: not SQLite, a view or a ``WITHOUT ROWID`` table, or at most ``CHILD_SCAN_ROWS`` sessions.

    The count is bounded by the span of the rowids (two lookups at the ends of the table's b-tree, not a
    count of its rows): rowids far apart (hashed keys) make a small table look big, which costs only the
    child's start."""
    sessions = sources.relations["session_sources"]
    if engine.dialect.name != "sqlite" or sessions.view:
        return None
    rowid = sqlite_rowid(engine, sessions.table, sessions.schema)
    if rowid is None:
        return None
    with engine.connect() as conn:
        first, last = conn.execute(
            text(f"SELECT min({rowid}), max({rowid}) FROM {sources.qualified('session_sources')}")
        ).one()
    return rowid if first is not None and last - first >= CHILD_SCAN_ROWS else None


def _aggregate_sqlite_costs(engine: Engine, sources: Sources, rowid: str) -> pl.DataFrame:
    """The columnar scan, in a process of its own, reading the sessions by the rowid named ``rowid``.

    Why: connectorx carries its own SQLite library, and closing its connection releases every POSIX lock
    this process holds on the file (such locks belong to the process, not to a connection). Within the
    pipeline's process it would hand another run the write lock in the middle of a transaction ("disk I/O
    error", one run's credit overwritten by the other's). A child process's locks are its own.
    """
    path = str(Path(engine.url.database).resolve())
    bare = sources.is_bare("session_sources")
    sessions = sources.relation("session_sources", rowid=None if bare else rowid)
    command = [
        sys.executable,
        "-m",
        scan_module.__name__,
        path,
        sessions,
        rowid if bare else "scan_rowid",
        sources.relation("session_costs"),
        str(SCAN_ROWS),
        str(SQLITE_BUSY_SECONDS),
    ]
    parent = {**os.environ, scan_module.PARENT_VARIABLE: str(os.getpid())}
    child = subprocess.run(command, capture_output=True, check=False, env=parent)
    if child.returncode:
        cause = (child.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        raise IntegrityError(f"The session-cost scan of {path} failed: {cause}")
    return pl.read_ipc(io.BytesIO(child.stdout))


def _session_cost_sql(sources: Sources, where: str) -> str:
    """``SESSION_COST_SQL`` over the inputs as ``sources`` reads them."""
    sessions, costs = sources.relation("session_sources", "s"), sources.relation("session_costs", "c")
    return SESSION_COST_SQL.format(sessions=sessions, costs=costs, where=where)


def credit_sql(sources: Sources, *, dated: bool, span: bool = False) -> str:
    """The credit rows of the dates bound as ``:dates`` when ``dated`` (with ``span``: of the days between
    ``:first_date`` and ``:last_date``), an index range per date where the warehouse has indexes, with their
    revenue."""
    where = f"a.event_date {_SPAN if span else _DATES}" if dated else "a.event_date IS NOT NULL"
    return _CREDIT_SQL.format(conversions=sources.relation("conversions", "v"), where=where)


def cost_sql(sources: Sources, *, span: bool = False) -> str:
    """The session cost of the dates bound as ``:dates`` (with ``span``: of the days between ``:first_date``
    and ``:last_date``): the sessions of those dates by the date index, each session's cost looked up by its
    id, in key order within each channel and date."""
    day_range = sources.day_range("session_sources", "s", ":first_date", ":last_date") if span else ""
    return _session_cost_sql(sources, f"WHERE s.event_date {_SPAN if span else _DATES}{day_range}")


def _by_dates(
    conn: Connection,
    sql: Callable[[bool], str],
    dates: frozenset[str],
    span: tuple[str, str] | None,
    schema: dict,
    **params: str,
) -> pl.DataFrame:
    """The rows ``sql`` gives for ``dates`` (a list) and for the days of ``span`` (two bounds), which the
    caller keeps apart; ``params`` bind the rest of its values."""
    frames = [pl.DataFrame(schema=schema)]
    if dates:
        statement = text(sql(False)).bindparams(bindparam("dates", expanding=True))
        frames.append(fetch_frame(conn, statement, {**params, "dates": sorted(dates)}, schema))
    if span:
        bounds = {**params, "first_date": span[0], "last_date": span[1]}
        frames.append(fetch_frame(conn, text(sql(True)), bounds, schema))
    return pl.concat(frames)


def credit_by_channel_date(
    conn: Connection, dates: frozenset[str] | None, span: tuple[str, str] | None, label: CreditLabel
) -> pl.DataFrame:
    """``label``'s stored credit and credit-weighted revenue per channel and session date: of ``dates`` and
    the days of ``span`` (all dates when ``dates`` is ``None``).

    Why summed here, exactly (``math.fsum``): a float sum's last bits depend on the order it adds in, and
    credit fractions times revenue in cents often land on a half of the files' last decimal, where the last
    bit decides the printed digit. An exact sum is the same in any row order, on any warehouse, after any
    sequence of runs.
    """
    sources = sources_of(conn)
    if dates is None:
        rows = fetch_frame(conn, text(credit_sql(sources, dated=False)), label._asdict(), CREDIT_SUM_SCHEMA)
    else:

        def dated(spanned: bool) -> str:
            return credit_sql(sources, dated=True, span=spanned)

        rows = _by_dates(conn, dated, dates, span, CREDIT_SUM_SCHEMA, **label._asdict())
    return exact_sums(rows)


def exact_sums(rows: pl.DataFrame) -> pl.DataFrame:
    """Credit rows (``CREDIT_SUM_SCHEMA``) summed exactly per channel and date (``credit_by_channel_date``).

    Why lists, not numpy arrays: ``fsum`` takes each value as a Python float either way, and a run of a model
    that needs no numpy then never imports it (a null sums as NaN, as numpy's would)."""
    sums = [
        (channel, date, math.fsum(_floats(group["ihc"])), math.fsum(_floats(group["ihc_revenue"])))
        for (channel, date), group in rows.partition_by("channel_name", "date", as_dict=True).items()
    ]
    return pl.DataFrame(sums, schema=CREDIT_SUM_SCHEMA, orient="row")


def _floats(column: pl.Series) -> list[float]:
    return column.fill_null(math.nan).to_list()


def credit_rows(credits: pl.DataFrame, journeys: pl.DataFrame) -> pl.DataFrame:
    """Labelled credit (``store.credit``'s rows) as the report reads it back (``CREDIT_SUM_SCHEMA``), with the
    revenue of its journeys' conversions: the same products as the SQL's, so the same sums."""
    revenue = journeys.select("conv_id", "revenue").unique("conv_id")
    return credits.join(revenue, on="conv_id", how="left").select(
        "channel_name",
        date=pl.col("event_date"),
        ihc=pl.col("ihc"),
        ihc_revenue=pl.col("ihc") * pl.col("revenue"),
    )


def session_costs_on(
    conn: Connection, dates: frozenset[str], span: tuple[str, str] | None = None
) -> pl.DataFrame:
    """Session cost per channel for each of ``dates`` and of the days of ``span``, reading only those dates'
    sessions."""
    sources = sources_of(conn)
    return _summed_costs(conn, lambda spanned: cost_sql(sources, span=spanned), (dates, span))


def _summed_costs(
    conn: Connection, sql: Callable[[bool], str], scope: tuple[frozenset[str], tuple[str, str] | None] | None
) -> pl.DataFrame:
    """The session cost SQL's rows for the dates and span of ``scope`` (``None``: every date, one read), or
    one line where a total is beyond what it sums: SQLite stops a ``SUM`` of integers that overflows,
    PostgreSQL a cast of one cost to ``BIGINT`` (for a row the input checks did not read: an earlier date a
    bounded run reports for the first time)."""
    try:
        if scope is None:
            return fetch_frame(conn, text(sql(False)), {}, COST_SCHEMA)
        return _by_dates(conn, sql, *scope, COST_SCHEMA)
    except DBAPIError as error:
        if not any(overflow in str(error.orig) for overflow in OVERFLOWS):
            raise
        if scope is None:
            where = _first_beyond(conn)
        else:
            dates, span = scope
            named = sorted(dates) + ([f"{span[0]} to {span[1]}"] if span else [])
            where = f"a channel on one of {', '.join(named)}"
        raise IntegrityError(f"Cannot report the cost: {beyond_sum(where)}") from None


def _first_beyond(conn: Connection) -> str:
    """The first channel and date (as ``channel on date``) whose session cost is beyond what the report sums,
    as the columnar scan names it: found on SQLite by ``TOTAL``, its sum in floats, which does not stop. A
    server stops at one cost's cast, which names no total: there, "a channel on some date"."""
    found = None
    if conn.dialect.name == "sqlite":
        sources = sources_of(conn)
        sessions, costs = sources.relation("session_sources", "s"), sources.relation("session_costs", "c")
        found = conn.execute(
            text(_BEYOND_SQL.format(sessions=sessions, costs=costs, micros=MICROS, largest=LARGEST_MICROS))
        ).first()
    return "a channel on some date" if found is None else f"{found[0]} on {found[1]}"


def _costs_in_scope(conn: Connection, scope: ReportScope) -> pl.DataFrame:
    """The cost of the scope's dates: read anew for its span, its recosted dates and dates without a row
    yet, kept as reported for the others."""
    columns = channel_reporting.c["channel_name", "date", "cost"]
    reported = fetch_frame(
        conn, select(columns).where(scope.where(channel_reporting.c.date)), {}, COST_SCHEMA
    )
    first, last = scope.span or ("", "")
    spanned = pl.col("date").is_between(pl.lit(first), pl.lit(last)) if scope.span else pl.lit(False)
    kept = reported.filter(~spanned & ~pl.col("date").is_in(sorted(scope.recosted)))
    missing = scope.other_dates - set(kept["date"])
    return pl.concat([session_costs_on(conn, missing, scope.span), kept])


def build_channel_report(
    conn: Connection,
    scope: ReportScope,
    costs: pl.DataFrame | None = None,
    *,
    label: CreditLabel,
    stored: pl.DataFrame | None = None,
    redshift_copy: RedshiftCopy | None = None,
) -> int:
    """Rebuild the ``channel_reporting`` rows of ``scope`` with ``label``'s credit, and every row that holds
    another label's (``_widened``).

    ``costs`` is ``aggregate_session_costs``' frame, needed (only) when the scope is every row. ``stored``,
    for that scope only: ``label``'s whole stored credit as ``credit_rows`` (a run that has just stored it
    holds it in memory; reading a million orders' credit back joined to their revenue took longer than
    storing it). ``redshift_copy``: see ``bulk_insert``. Runs inside the caller's transaction; returns the
    number of report rows now in the table.
    """
    scope = _widened(conn, scope, label)
    if scope.dates is None:
        if costs is None:
            raise ValueError("Rebuilding every report row needs the session costs of every date")
        conn.execute(delete(channel_reporting))
    elif not scope.dates and scope.span is None:
        return conn.scalar(select(func.count()).select_from(channel_reporting))
    else:
        costs = _costs_in_scope(conn, scope)
        conn.execute(delete(channel_reporting).where(scope.where(channel_reporting.c.date)))
    credit = (
        exact_sums(stored)
        if scope.dates is None and stored is not None
        else credit_by_channel_date(
            conn, None if scope.dates is None else scope.other_dates, scope.span, label
        )
    )
    bulk_insert(conn, channel_reporting, _report_rows(costs, credit, label), redshift_copy=redshift_copy)
    return conn.scalar(select(func.count()).select_from(channel_reporting))


def _report_rows(costs: pl.DataFrame, credit: pl.DataFrame, label: CreditLabel) -> pl.DataFrame:
    """Each channel and date's cost beside ``label``'s credit, zero where either has none, as report rows."""
    return (
        costs.join(credit, on=["channel_name", "date"], how="full", coalesce=True)
        .with_columns(pl.col("cost", "ihc", "ihc_revenue").fill_null(0.0), **label_literals(label))
        .select(*REPORT_SCHEMA)
        .sort("date", "channel_name")
    )


def label_literals(label: CreditLabel) -> dict[str, pl.Expr]:
    """``label`` as the columns of a frame's rows (``LABEL_COLUMNS``)."""
    return {name: pl.lit(value, pl.String) for name, value in label._asdict().items()}


def _widened(conn: Connection, scope: ReportScope, label: CreditLabel) -> ReportScope:
    """``scope`` with the dates of the rows counting another label (or none: made by an earlier version), so
    the report counts one label whichever ran before."""
    if scope.dates is None:
        return scope
    c = channel_reporting.c
    other = or_(*(c[name].is_(None) | (c[name] != value) for name, value in label._asdict().items()))
    dates = frozenset(conn.scalars(select(c.date).distinct().where(other)))
    return replace(scope, dates=scope.dates | dates) if dates else scope


def date_totals(conn: Connection, dates: list[str]) -> dict[tuple[str, str], tuple[float, float, float]]:
    """Spend, credited orders and credited revenue per report date and channel, for the dates from
    ``dates[0]`` to ``dates[-1]`` (what a restatement compares before and after it redoes them)."""
    if not dates:
        return {}
    r = channel_reporting.c
    rows = select(r.date, r.channel_name, r.cost, r.ihc, r.ihc_revenue).where(
        r.date >= dates[0], r.date <= dates[-1]
    )
    return {
        (day, channel): (cost, orders, revenue) for day, channel, cost, orders, revenue in conn.execute(rows)
    }


def read_channel_report(conn: Connection) -> pl.DataFrame:
    """The report table with CPO and ROAS (``REPORT_COLUMNS``), ordered by date then channel (in byte order,
    as in SQLite, whatever the warehouse's collation: the files are the same from every warehouse). A model
    without a conversion type has none (null), as the files show it."""
    rows = conn.execute(select(*(channel_reporting.c[name] for name in REPORT_SCHEMA)))
    frame = pl.DataFrame(rows.fetchall(), schema=REPORT_SCHEMA, orient="row")
    no_type = pl.col("conv_type_id") == ""
    frame = frame.with_columns(conv_type_id=pl.when(~no_type).then(pl.col("conv_type_id")))
    return with_ratios(frame.sort("date", "channel_name")).select(REPORT_COLUMNS)


def reported_label(conn: Connection) -> CreditLabel | None:
    """The label the stored report counts (``None``: no report yet, or one made by an earlier version)."""
    columns = [channel_reporting.c[name] for name in LABEL_COLUMNS]
    row = conn.execute(select(*columns).where(*(c.is_not(None) for c in columns)).limit(1)).first()
    return None if row is None else CreditLabel(*row)


def create_report_view(engine: Engine) -> None:
    """Create the view ``REPORT_VIEW`` where it is missing, under the schema lock (two runs starting at once
    both succeed)."""
    create = "CREATE VIEW IF NOT EXISTS" if engine.dialect.name == "sqlite" else "CREATE OR REPLACE VIEW"
    with schema_transaction(engine) as conn:
        if REPORT_VIEW not in input_kinds(conn):
            conn.execute(text(f"{create} {REPORT_VIEW} AS {ratio_view_sql(channel_reporting, conn.dialect)}"))
