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
from urllib.parse import quote

import connectorx
import polars as pl

COST_SCHEMA = {"channel_name": pl.String, "date": pl.String, "cost": pl.Float64}
MICROS = 1_000_000
"""Session costs are summed as whole millionths, in integers: a total is then exact, the same in whatever
order its sessions are added (a whole-range scan, a daily run's index read, two warehouses), and rounding
to a millionth changes no amount of money. Ties round away from zero, as SQLite's ``ROUND`` does."""
SESSION_COST_SQL = f"""
SELECT s.channel_name, s.event_date AS date,
       CAST(SUM(CAST(ROUND(COALESCE(c.cost, 0.0) * {MICROS}) AS BIGINT)) AS DOUBLE PRECISION) / {MICROS} AS cost
FROM session_sources s
LEFT JOIN session_costs c ON c.session_id = s.session_id
{{where}}
GROUP BY s.event_date, s.channel_name
"""
# Every column aliased: SQLite names a bare column as the table declares it (``Session_ID``), whatever case
# the query spells it in, and the frames are joined by name.
COSTS_SQL = "SELECT session_id AS session_id, cost AS cost FROM session_costs"
SESSIONS_SQL = (
    "SELECT session_id AS session_id, channel_name AS channel_name, event_date AS date "
    "FROM session_sources WHERE rowid > {low} AND rowid <= {high}"
)


def scan_sqlite_costs(path: str, last_rowid: int, scan_rows: int, busy_seconds: float) -> pl.DataFrame:
    """Session cost per channel and date of a SQLite file, by a hash join of columnar reads (connectorx):
    every cost row once, then the sessions in chunks of ``scan_rows`` (by rowid) joined to them and summed
    by Polars; run it in a process that holds no lock on the file. A read that finds the file locked by a
    writer is tried again for up to ``busy_seconds``, as the pipeline's own connections wait.

    Why not SQLite's join: it looks each session's cost up by id, and real tables store sessions in arrival
    order with hashed ids, so every lookup lands at random in the cost index; a hash join reads both tables
    once, in whatever order they lie.
    """
    uri = f"sqlite://{quote(path)}"
    costs = _keyed(_read(uri, COSTS_SQL, busy_seconds))
    parts = [
        _sum_costs(
            _priced(
                _keyed(_read(uri, SESSIONS_SQL.format(low=low, high=low + scan_rows), busy_seconds)), costs
            )
        )
        for low in range(0, last_rowid, scan_rows)
    ]
    if not parts:
        return pl.DataFrame(schema=COST_SCHEMA)
    totals = _sum_costs(pl.concat(parts))
    # numpy's division, correctly rounded as SQL's is: Polars may multiply by the reciprocal instead
    return totals.with_columns(pl.Series("cost", totals["cost"].to_numpy() / MICROS, dtype=pl.Float64))


def _read(uri: str, sql: str, busy_seconds: float) -> object:
    """One columnar read, tried again for up to ``busy_seconds`` while a writer holds the file (connectorx's
    own SQLite waits only 5 s, less than an index build can take), as each statement of the pipeline waits."""
    deadline = time.monotonic() + busy_seconds
    while True:
        try:
            return connectorx.read_sql(uri, sql, return_type="arrow")
        except RuntimeError as error:
            if "database is locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def _keyed(table: object) -> pl.DataFrame:
    """The rows with ``key``, a 64-bit hash of ``session_id``: joining on it is several times faster than
    joining on 64-character ids."""
    frame = pl.from_arrow(table)
    return frame.with_columns(key=pl.col("session_id").hash())


def _priced(sessions: pl.DataFrame, costs: pl.DataFrame) -> pl.DataFrame:
    """Each session with its cost in millionths (``MICROS``); a cost row whose id only shares the session's
    hash adds nothing (so the join is exact), and a session without a cost row keeps a null cost."""
    joined = sessions.join(costs, on="key", how="left", suffix="_cost")
    same = pl.col("session_id") == pl.col("session_id_cost")
    micros = (pl.col("cost") * MICROS).round(mode="half_away_from_zero").cast(pl.Int64)
    return joined.select("channel_name", "date", cost=pl.when(same).then(micros))


def _sum_costs(frame: pl.DataFrame) -> pl.DataFrame:
    """Costs in millionths summed per channel and date (integers: exact in any order)."""
    return frame.group_by("channel_name", "date").agg(pl.col("cost").fill_null(0).sum())


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
    """``python -m attribution.reporting.sqlite_scan PATH LAST_ROWID SCAN_ROWS BUSY_SECONDS``: the costs as
    Arrow IPC on standard output."""
    die_with_parent()
    path, last_rowid, scan_rows, busy_seconds = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    scan_sqlite_costs(path, last_rowid, scan_rows, busy_seconds).write_ipc(sys.stdout.buffer)


if __name__ == "__main__":
    main(sys.argv[1:])
