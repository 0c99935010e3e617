"""The session-cost scan of a SQLite file: columnar reads (connectorx) summed by Polars, for a child process.

Why a module of its own: the scan runs in a process of its own (see ``channel_report``), started as
``python -m`` on this module, which imports only Polars and connectorx, so it starts in a fraction of a
second and never re-runs the caller's main module (as a ``multiprocessing`` spawn would).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections.abc import Iterator
from urllib.parse import quote

import polars as pl

COST_SCHEMA = {"channel_name": pl.String, "date": pl.String, "cost": pl.Float64}
MICROS = 1_000_000
"""Session costs are summed as whole millionths, in integers: a total is then exact, the same in whatever
order its sessions are added (a whole-range scan, a daily run's index read, two warehouses), and rounding
to a millionth changes no amount of money. Ties round away from zero, as SQLite's ``ROUND`` does."""
LARGEST_MICROS = 2**63 - 1
"""The largest total of session cost, in millionths, the report sums: a signed 64-bit integer, as SQL's
``SUM`` of ``BIGINT`` keeps it (SQLite stops with "integer overflow" beyond it, Polars would wrap around)."""
SESSION_COST_SQL = f"""
SELECT s.channel_name, s.event_date AS date,
       CAST(SUM(CAST(ROUND(COALESCE(c.cost, 0.0) * {MICROS}) AS BIGINT)) AS DOUBLE PRECISION) / {MICROS} AS cost
FROM {{sessions}}
LEFT JOIN {{costs}} ON c.session_id = s.session_id
{{where}}
GROUP BY s.event_date, s.channel_name
"""
# Every column aliased: SQLite names a bare column as the table declares it (``Session_ID``), whatever case
# the query spells it in, and the frames are joined by name. Ids as text: a SQLite table may store them as
# numbers (warehouse.sources compares them as stored), and a hash of 7 is not a hash of '7'.
COSTS_SQL = "SELECT CAST(session_id AS TEXT) AS session_id, cost AS cost FROM {costs}"
# A chunk is a subquery: connectorx probes a query's columns with LIMIT 1, appended as text to a query it cannot
# parse (a relation of the source mapping: GLOB, deep CASEs), which must then end without a LIMIT of its own.
SESSIONS_SQL = (
    "SELECT * FROM (SELECT {rowid} AS scan_rowid, CAST(session_id AS TEXT) AS session_id, channel_name AS channel_name, "
    "event_date AS date FROM {sessions} {after} ORDER BY {rowid} LIMIT {rows}) chunk"
)


def scan_sqlite_costs(
    path: str, sessions: str, rowid: str, costs: str, scan_rows: int, busy_seconds: float
) -> pl.DataFrame:
    """Session cost per channel and date of a SQLite file, by a hash join of columnar reads (connectorx):
    every cost row of the relation ``costs`` once, then the sessions of the relation ``sessions`` in chunks
    of ``scan_rows`` (``_session_chunks``, by the rowid read as ``rowid``) joined to them and summed by
    Polars; run it in a process that holds no lock on the file. The relations are FROM items
    (``warehouse.sources``). A read that finds the file locked by a writer is tried again for up to ``busy_seconds``, as the
    pipeline's own connections wait.

    Why not SQLite's join: it looks each session's cost up by id, and real tables store sessions in arrival
    order with hashed ids, so every lookup lands at random in the cost index; a hash join reads both tables
    once, in whatever order they lie.
    """
    uri = f"sqlite://{quote(path)}"
    cost_rows = _keyed(pl.from_arrow(_read(uri, COSTS_SQL.format(costs=costs), busy_seconds)))
    parts = [
        _sum_costs(_priced(_keyed(chunk), cost_rows))
        for chunk in _session_chunks(uri, sessions, rowid, scan_rows, busy_seconds)
    ]
    if not parts:
        return pl.DataFrame(schema=COST_SCHEMA)
    totals = _within_64_bits(_sum_costs(pl.concat(parts)))
    # numpy's division, correctly rounded as SQL's is: Polars may multiply by the reciprocal instead
    return totals.with_columns(pl.Series("cost", totals["cost"].to_numpy() / MICROS, dtype=pl.Float64))


class SumOverflow(ValueError):
    """A total of session cost beyond ``LARGEST_MICROS``."""


def beyond_sum(where: str) -> str:
    """The words for a total of session cost (of ``where``) beyond the largest the report sums."""
    whole, fraction = divmod(LARGEST_MICROS, MICROS)
    return (
        f"the session cost of {where} is beyond ±{whole:,}.{fraction:06d}, the largest total the report sums "
        "exactly (whole millionths in a signed 64-bit integer)"
    )


def _within_64_bits(totals: pl.DataFrame) -> pl.DataFrame:
    """The totals as 64-bit integers, or ``SumOverflow`` naming the first channel and date beyond them."""
    beyond = totals.filter(pl.col("cost").abs() > LARGEST_MICROS).sort("date", "channel_name")
    if beyond.height:
        channel, date = beyond.row(0)[:2]
        raise SumOverflow(beyond_sum(f"{channel} on {date}"))
    return totals.with_columns(pl.col("cost").cast(pl.Int64))


def _session_chunks(
    uri: str, sessions: str, rowid: str, scan_rows: int, busy_seconds: float
) -> Iterator[pl.DataFrame]:
    """The sessions in chunks of ``scan_rows``, in rowid order, each read from just after the largest rowid of
    the one before (a keyset: one seek in the table's b-tree, then its rows in stored order).

    Why not fixed windows of rowids: rowids are any signed 64-bit integers (negative after an update, a
    hashed ``INTEGER PRIMARY KEY``, a few far above the rest), so windows from 0 to the largest miss rows
    below 0 and may be billions of empty reads; a keyset reads each row once whatever its rowid.
    """
    after = ""
    while True:
        sql = SESSIONS_SQL.format(sessions=sessions, rowid=rowid, after=after, rows=scan_rows)
        chunk = pl.from_arrow(_read(uri, sql, busy_seconds))
        if chunk.height:
            yield chunk
        if chunk.height < scan_rows:
            return
        after = f"WHERE {rowid} > {chunk['scan_rowid'].max()}"


def _read(uri: str, sql: str, busy_seconds: float) -> object:
    """One columnar read, tried again for up to ``busy_seconds`` while a writer holds the file (connectorx's
    own SQLite waits only 5 s, less than an index build can take), as each statement of the pipeline waits."""
    import connectorx  # here, not at the top: the pipeline imports this module's SQL and limits, not its reads

    deadline = time.monotonic() + busy_seconds
    while True:
        try:
            return connectorx.read_sql(uri, sql, return_type="arrow")
        except RuntimeError as error:
            if "database is locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def _keyed(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows with ``key``, a 64-bit hash of ``session_id``: joining on it is several times faster than
    joining on 64-character ids."""
    return frame.with_columns(key=pl.col("session_id").hash())


def _priced(sessions: pl.DataFrame, costs: pl.DataFrame) -> pl.DataFrame:
    """Each session with its cost in millionths (``MICROS``); a cost row whose id only shares the session's
    hash adds nothing (so the join is exact), and a session without a cost row keeps a null cost."""
    joined = sessions.join(costs, on="key", how="left", suffix="_cost")
    same = pl.col("session_id") == pl.col("session_id_cost")
    micros = (pl.col("cost") * MICROS).round(mode="half_away_from_zero").cast(pl.Int64)
    return joined.select("channel_name", "date", cost=pl.when(same).then(micros))


def _sum_costs(frame: pl.DataFrame) -> pl.DataFrame:
    """Costs in millionths summed per channel and date (integers: exact in any order; 128 bits, so a total
    beyond 64 bits is found, not wrapped around)."""
    return frame.group_by("channel_name", "date").agg(pl.col("cost").fill_null(0).cast(pl.Int128).sum())


PARENT_VARIABLE = "ATTRIBUTION_SCAN_PARENT"
"""The environment variable naming the process that started the scan (``die_with_parent``)."""
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """End this process when the one that started it ends, even by SIGKILL (Linux's ``PR_SET_PDEATHSIG``),
    and at once if it has ended already: an orphaned scan would read the file for nothing.

    Why in the child: ``preexec_fn`` is unsafe in a process with threads, and the scan is started from one."""
    parent = int(os.environ.get(PARENT_VARIABLE, "0"))
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent and os.getppid() != parent:
        sys.exit("the process that started the scan has ended")


def main(argv: list[str]) -> None:
    """``python -m attribution.reporting.sqlite_scan PATH SESSIONS ROWID COSTS SCAN_ROWS BUSY_SECONDS``
    (``SESSIONS``, ``COSTS``: the relations as FROM items; ``ROWID``: the name that reads the sessions'
    rowid): the costs as Arrow IPC on standard output."""
    die_with_parent()
    path, sessions, rowid, costs = argv[:4]
    try:
        totals = scan_sqlite_costs(path, sessions, rowid, costs, int(argv[4]), float(argv[5]))
    except SumOverflow as error:
        sys.exit(str(error))  # one line, no traceback: the caller shows the last line
    totals.write_ipc(sys.stdout.buffer)


if __name__ == "__main__":
    main(sys.argv[1:])
