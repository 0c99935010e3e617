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
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, Engine, bindparam, delete, func, or_, select, text

from attribution.errors import IntegrityError
from attribution.reporting import sqlite_scan as scan_module
from attribution.reporting.metrics import RATIO_COLUMNS, ratio_view_sql, with_ratios
from attribution.reporting.sqlite_scan import COST_SCHEMA, SESSION_COST_SQL
from attribution.warehouse.bulk import bulk_insert
from attribution.warehouse.engine import SQLITE_BUSY_SECONDS
from attribution.warehouse.locks import schema_transaction
from attribution.warehouse.schema import input_kinds
from attribution.warehouse.tables import LABEL_COLUMNS, CreditLabel, channel_reporting

CREDIT_SCHEMA = {"channel_name": pl.String, "date": pl.String, "ihc": pl.Float64, "ihc_revenue": pl.Float64}
SCAN_ROWS = 1_000_000
"""Sessions per columnar read on SQLite: bounds memory to a few hundred MB whatever the table size."""

REPORT_SCHEMA = {
    "channel_name": pl.String,
    "date": pl.String,
    "cost": pl.Float64,
    "ihc": pl.Float64,
    "ihc_revenue": pl.Float64,
    **dict.fromkeys(LABEL_COLUMNS, pl.String),
}
"""``channel_reporting``'s columns, as a frame holds them."""
REPORT_COLUMNS = (*list(REPORT_SCHEMA)[:5], *RATIO_COLUMNS, *LABEL_COLUMNS)
"""The columns of the report files: the label last, so columns read by position stay where they were."""
REPORT_VIEW = "channel_reporting_ratios"
"""The view of ``channel_reporting`` with CPO and ROAS, for BI tools that read the warehouse directly."""

_CREDIT_SQL = """
SELECT a.channel_name, a.event_date AS date, a.ihc, a.ihc * v.revenue AS ihc_revenue
FROM attribution_customer_journey a
JOIN conversions v ON v.conv_id = a.conv_id
WHERE a.model = :model AND a.conv_type_id = :conv_type_id AND {where}
"""
_DATES = "IN :dates"


@dataclass(frozen=True)
class ReportScope:
    """The report rows a run rebuilds: every row (``dates`` ``None``) or those of ``dates``, the dates whose
    credit it changed. Of those, ``cost_dates`` (the run's own range) get their cost read anew; the others
    keep the cost already reported, read anew only for a date that has no row yet."""

    dates: frozenset[str] | None
    cost_dates: frozenset[str] = frozenset()


def aggregate_session_costs(engine: Engine) -> pl.DataFrame:
    """Total session cost per channel and date over the whole session table (the columnar scan where both
    inputs are SQLite tables: it reads by rowid, which views lack)."""
    if engine.dialect.name == "sqlite":
        kinds = input_kinds(engine)
        if kinds["session_sources"] == kinds["session_costs"] == "table":
            return _aggregate_sqlite_costs(engine)
    statement = SESSION_COST_SQL.format(where="")
    with engine.connect() as conn:
        return pl.DataFrame(conn.execute(text(statement)).fetchall(), schema=COST_SCHEMA, orient="row")


def _aggregate_sqlite_costs(engine: Engine) -> pl.DataFrame:
    """The columnar scan, in a process of its own.

    Why: connectorx carries its own SQLite library, and closing its connection releases every POSIX lock
    this process holds on the file (such locks belong to the process, not to a connection). Within the
    pipeline's process it would hand another run the write lock in the middle of a transaction ("disk I/O
    error", one run's credit overwritten by the other's). A child process's locks are its own.
    """
    path = str(Path(engine.url.database).resolve())
    with engine.connect() as conn:
        last = conn.scalar(text("SELECT MAX(rowid) FROM session_sources")) or 0
    command = [
        sys.executable,
        "-m",
        scan_module.__name__,
        path,
        str(last),
        str(SCAN_ROWS),
        str(SQLITE_BUSY_SECONDS),
    ]
    child = subprocess.run(command, capture_output=True, check=False)
    if child.returncode:
        cause = (child.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        raise IntegrityError(f"The session-cost scan of {path} failed: {cause}")
    return pl.read_ipc(io.BytesIO(child.stdout))


def credit_sql(*, dated: bool) -> str:
    """The credit rows of the label bound as ``:model`` and ``:conv_type_id``, of the dates bound as ``:dates``
    when ``dated`` (an index range per date where the warehouse has indexes), with their revenue."""
    return _CREDIT_SQL.format(where=f"a.event_date {_DATES}" if dated else "a.event_date IS NOT NULL")


def cost_sql() -> str:
    """The session cost of the dates bound as ``:dates``: the sessions of those dates by the date index,
    each session's cost looked up by its id, in key order within each channel and date."""
    where = f"WHERE s.event_date {_DATES}"
    return SESSION_COST_SQL.format(where=where)


def _by_dates(
    conn: Connection, sql: str, dates: frozenset[str] | None, schema: dict, **params: str
) -> pl.DataFrame:
    statement = text(sql)
    if dates is not None:
        statement, params = (
            statement.bindparams(bindparam("dates", expanding=True)),
            {**params, "dates": sorted(dates)},
        )
    return pl.DataFrame(conn.execute(statement, params).fetchall(), schema=schema, orient="row")


def credit_by_channel_date(
    conn: Connection, dates: frozenset[str] | None, label: CreditLabel
) -> pl.DataFrame:
    """``label``'s stored credit and credit-weighted revenue per channel and session date (all dates when
    ``None``).

    Why summed here, exactly (``math.fsum``): a float sum's last bits depend on the order it adds in, and
    credit fractions times revenue in cents often land on a half of the files' last decimal, where the last
    bit decides the printed digit. An exact sum is the same in any row order, on any warehouse, after any
    sequence of runs.
    """
    rows = _by_dates(conn, credit_sql(dated=dates is not None), dates, CREDIT_SCHEMA, **label._asdict())
    sums = [
        (channel, date, math.fsum(group["ihc"].to_numpy()), math.fsum(group["ihc_revenue"].to_numpy()))
        for (channel, date), group in rows.partition_by("channel_name", "date", as_dict=True).items()
    ]
    return pl.DataFrame(sums, schema=CREDIT_SCHEMA, orient="row")


def session_costs_on(conn: Connection, dates: frozenset[str]) -> pl.DataFrame:
    """Session cost per channel for each of ``dates``, reading only those dates' sessions."""
    if not dates:
        return pl.DataFrame(schema=COST_SCHEMA)
    return _by_dates(conn, cost_sql(), dates, COST_SCHEMA)


def _costs_in_scope(conn: Connection, scope: ReportScope) -> pl.DataFrame:
    """The cost of the scope's dates: read anew for its cost dates and for dates without a row yet, kept as
    reported for the others."""
    dates = sorted(scope.dates or ())
    reported = pl.DataFrame(
        conn.execute(
            select(channel_reporting.c["channel_name", "date", "cost"]).where(
                channel_reporting.c.date.in_(dates)
            )
        ).fetchall(),
        schema=COST_SCHEMA,
        orient="row",
    )
    fresh = scope.cost_dates | (frozenset(dates) - set(reported["date"]))
    kept = reported.filter(~pl.col("date").is_in(sorted(fresh)))
    return pl.concat([session_costs_on(conn, fresh & frozenset(dates)), kept])


def build_channel_report(
    conn: Connection, scope: ReportScope, costs: pl.DataFrame | None = None, *, label: CreditLabel
) -> int:
    """Rebuild the ``channel_reporting`` rows of ``scope`` with ``label``'s credit, and every row that holds
    another label's (``_widened``).

    ``costs`` is ``aggregate_session_costs``' frame, needed (only) when the scope is every row. Runs inside
    the caller's transaction; returns the number of report rows now in the table.
    """
    scope = _widened(conn, scope, label)
    if scope.dates is None:
        if costs is None:
            raise ValueError("Rebuilding every report row needs the session costs of every date")
        conn.execute(delete(channel_reporting))
    elif not scope.dates:
        return conn.scalar(select(func.count()).select_from(channel_reporting))
    else:
        costs = _costs_in_scope(conn, scope)
        conn.execute(delete(channel_reporting).where(channel_reporting.c.date.in_(sorted(scope.dates))))
    credit = credit_by_channel_date(conn, scope.dates, label)
    rows = (
        costs.join(credit, on=["channel_name", "date"], how="full", coalesce=True)
        .with_columns(pl.col("cost", "ihc", "ihc_revenue").fill_null(0.0), **label_literals(label))
        .select(*REPORT_SCHEMA)
        .sort("date", "channel_name")
    )
    bulk_insert(conn, channel_reporting, rows)
    return conn.scalar(select(func.count()).select_from(channel_reporting))


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
    return ReportScope(scope.dates | dates, scope.cost_dates) if dates else scope


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
