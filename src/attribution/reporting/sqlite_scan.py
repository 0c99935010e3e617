"""The session-cost scan of a SQLite file: columnar reads (connectorx) summed by Polars, for a child process.

Why a module of its own: the scan runs in a process of its own (see ``channel_report``), started as
``python -m`` on this module, which imports only Polars and connectorx, so it starts in a fraction of a
second and never re-runs the caller's main module (as a ``multiprocessing`` spawn would).
"""

from __future__ import annotations

import sys
from urllib.parse import quote

import connectorx
import polars as pl

COST_SCHEMA = {"channel_name": pl.String, "date": pl.String, "cost": pl.Float64}
SESSION_COST_SQL = """
SELECT s.channel_name, s.event_date AS date, {cost} AS cost
FROM session_sources s
LEFT JOIN session_costs c ON c.session_id = s.session_id
{where}
"""


def scan_sqlite_costs(path: str, last_rowid: int, scan_rows: int) -> pl.DataFrame:
    """Session cost per channel and date of a SQLite file, read by connectorx in chunks of ``scan_rows``
    sessions (by rowid) and summed by Polars; run it in a process that holds no lock on the file."""
    uri = f"sqlite://{quote(path)}"
    statement = SESSION_COST_SQL.format(cost="c.cost", where="WHERE s.rowid > {low} AND s.rowid <= {high}")
    parts = [
        _sum_costs(
            connectorx.read_sql(uri, statement.format(low=low, high=low + scan_rows), return_type="polars")
        )
        for low in range(0, last_rowid, scan_rows)
    ]
    return _sum_costs(pl.concat(parts)) if parts else pl.DataFrame(schema=COST_SCHEMA)


def _sum_costs(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.cast(COST_SCHEMA).group_by("channel_name", "date").agg(pl.col("cost").fill_null(0.0).sum())


def main(argv: list[str]) -> None:
    """``python -m attribution.reporting.sqlite_scan PATH LAST_ROWID SCAN_ROWS``: the costs as Arrow IPC on
    standard output."""
    path, last_rowid, scan_rows = argv[0], int(argv[1]), int(argv[2])
    scan_sqlite_costs(path, last_rowid, scan_rows).write_ipc(sys.stdout.buffer)


if __name__ == "__main__":
    main(sys.argv[1:])
