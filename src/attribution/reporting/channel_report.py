"""The channel report: per channel and session date, cost, credit and credit-weighted revenue.

Why two independent sums: cost comes from the sessions themselves (each session once, NULL or missing
cost as 0), so sessions that led to no conversion keep their cost and sessions shared by two journeys are
not counted twice; credit comes from the stored attribution joined to the conversions' revenue.

Why session cost is a separate, read-only pass (``aggregate_session_costs``): it scans every session,
which is the most expensive read of a run, depends only on the input tables, and so can run before and
beside attribution. SQLite has no hash aggregation (its GROUP BY sorts every row), so there the scan is
read in columnar chunks by a child process and summed by Polars; other warehouses aggregate in SQL.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, Engine, bindparam, delete, func, select, text

from attribution.errors import IntegrityError
from attribution.reporting import sqlite_scan as scan_module
from attribution.reporting.metrics import with_ratios
from attribution.reporting.sqlite_scan import COST_SCHEMA, SESSION_COST_SQL
from attribution.warehouse.bulk import bulk_insert
from attribution.warehouse.dialects import Profile, profile_of
from attribution.warehouse.tables import channel_reporting

CREDIT_SCHEMA = {"channel_name": pl.String, "date": pl.String, "ihc": pl.Float64, "ihc_revenue": pl.Float64}
SCAN_ROWS = 2_000_000
"""Sessions per columnar read on SQLite: bounds memory to a few hundred MB whatever the table size."""

_CREDIT_SQL = """
SELECT s.channel_name, s.event_date AS date, SUM(a.ihc) AS ihc, SUM(a.ihc * v.revenue) AS ihc_revenue
FROM {credits} AS a
JOIN session_sources s ON s.session_id = a.session_id
JOIN conversions v ON v.conv_id = a.conv_id
{where}
GROUP BY s.channel_name, s.event_date
"""

_ORDERED_CREDITS = (
    "(SELECT conv_id, session_id, ihc FROM attribution_customer_journey ORDER BY session_id, conv_id)"
)
"""Credit in session order, so SQLite's lookups of each credited session sweep the index; then by conversion, so
the sums add in one order whatever order the rows were written in (runners, reruns)."""


def aggregate_session_costs(engine: Engine) -> pl.DataFrame:
    """Total session cost per channel and date over the whole session table."""
    if engine.dialect.name == "sqlite":
        return _aggregate_sqlite_costs(engine)
    statement = SESSION_COST_SQL.format(cost="SUM(COALESCE(c.cost, 0.0))", where="") + " GROUP BY 1, 2"
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
    command = [sys.executable, "-m", scan_module.__name__, path, str(last), str(SCAN_ROWS)]
    child = subprocess.run(command, capture_output=True, check=False)
    if child.returncode:
        cause = (child.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        raise IntegrityError(f"The session-cost scan of {path} failed: {cause}")
    return pl.read_ipc(io.BytesIO(child.stdout))


def credit_sql(profile: Profile, *, dated: bool) -> str:
    """The credit aggregation for a warehouse, over the dates bound as ``:dates`` when ``dated``."""
    credits = _ORDERED_CREDITS if profile.ordered_scans else "attribution_customer_journey"
    return _CREDIT_SQL.format(credits=credits, where="WHERE s.event_date IN :dates" if dated else "")


def credit_by_channel_date(conn: Connection, dates: Collection[str] | None) -> pl.DataFrame:
    """Stored credit and credit-weighted revenue per channel and session date (all dates when ``None``)."""
    statement = text(credit_sql(profile_of(conn), dated=dates is not None))
    params = {}
    if dates is not None:
        statement = statement.bindparams(bindparam("dates", expanding=True))
        params = {"dates": sorted(dates)}
    return pl.DataFrame(conn.execute(statement, params).fetchall(), schema=CREDIT_SCHEMA, orient="row")


def build_channel_report(conn: Connection, costs: pl.DataFrame, dates: Collection[str] | None = None) -> int:
    """Recompute ``channel_reporting`` for the given session dates (all dates when ``None``).

    ``costs`` is ``aggregate_session_costs``' frame. Runs inside the caller's transaction; returns the
    number of report rows now in the table.
    """
    if dates is not None and not dates:
        return conn.scalar(select(func.count()).select_from(channel_reporting))
    if dates is None:
        conn.execute(delete(channel_reporting))
    else:
        costs = costs.filter(pl.col("date").is_in(sorted(dates)))
        conn.execute(delete(channel_reporting).where(channel_reporting.c.date.in_(sorted(dates))))
    rows = (
        costs.join(
            credit_by_channel_date(conn, dates), on=["channel_name", "date"], how="full", coalesce=True
        )
        .with_columns(pl.col("cost", "ihc", "ihc_revenue").fill_null(0.0))
        .select("channel_name", "date", "cost", "ihc", "ihc_revenue")
        .sort("date", "channel_name")
    )
    bulk_insert(conn, channel_reporting, rows)
    return conn.scalar(select(func.count()).select_from(channel_reporting))


def read_channel_report(conn: Connection) -> pl.DataFrame:
    """The report table with CPO and ROAS, ordered by date then channel (in byte order, as in SQLite,
    whatever the warehouse's collation: the files are the same from every warehouse)."""
    rows = conn.execute(select(channel_reporting))
    frame = pl.DataFrame(
        rows.fetchall(),
        schema={
            "channel_name": pl.String,
            "date": pl.String,
            "cost": pl.Float64,
            "ihc": pl.Float64,
            "ihc_revenue": pl.Float64,
        },
        orient="row",
    )
    return with_ratios(frame.sort("date", "channel_name"))
