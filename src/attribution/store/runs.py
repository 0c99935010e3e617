"""The run record: one row of ``attribution_runs`` per run, from its start to how it ended.

Why its start and failure in transactions of their own: a run that fails still leaves its trace, and the
record says what it did (counts, timings, notes) or the error line that stopped it. Its end is written with
its tables, so the record says whether they committed (what a report file set waits for).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, Engine, insert, select, update

from attribution.errors import Interrupted
from attribution.timerange import TimeRange
from attribution.warehouse.tables import attribution_runs

COMMITTED = ("succeeded", "incomplete")
"""The statuses of runs whose tables are committed (``RunSummary.status``)."""


@dataclass
class RunSummary:
    """What a run did, for the CLI's table, the run record and the DAG's logs."""

    run_id: str
    model: str
    time_range: str
    conversions: int = 0
    """Conversions in the range."""
    journeys: int = 0
    """Journeys to attribute: the conversions with at least one session before them (the rest get no credit)."""
    attributed: int = 0
    """Journeys that got credit: ``journeys`` less those left unattributed (failed, skipped, unsent) and those
    left to other runs."""
    sessions: int = 0
    without_sessions: int = 0
    credit_total: float = 0.0
    """The credit written: one per attributed journey, so it equals ``attributed``."""
    skipped_conversions: int = 0
    """Conversions in the range left out as bad input rows (``--on-bad-rows skip``)."""
    skipped_sessions: int = 0
    """Sessions of the range's converting users left out of journeys as bad input rows."""
    unattributed: int = 0
    """Journeys left without credit (IHC API failures, the request quota): a rerun resumes them."""
    left_to_other_runs: int = 0
    """IHC API journeys another run at the same time had claimed (or credited since this run read them): it
    sends them (``store.claims``)."""
    requests: int = 0
    stopped_early: bool = False
    report_rows: int = 0
    report_paths: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    """Seconds per step."""

    @property
    def status(self) -> str:
        """``incomplete`` while conversions are left without credit (a rerun resumes them), else ``succeeded``."""
        return "incomplete" if self.unattributed else "succeeded"


def now_text(seconds_ago: float = 0) -> str:
    """The time (UTC) as the bookkeeping tables store it, text that sorts as time does."""
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%d %H:%M:%S")


def record_start(engine: Engine, run_id: str, model: str, time_range: TimeRange, *, in_process: bool) -> None:
    """Record that a run began (in its own transaction, so a failed run still leaves its trace).

    An ``in_process`` run records its host and process id: a later run then marks it ``abandoned`` if that
    process is gone without finishing it (a kill). A scheduled run's tasks are processes that come and go,
    so it records neither and its scheduler tells whether it still runs.
    """
    owner = {"host": socket.gethostname(), "pid": os.getpid()} if in_process else {}
    with engine.begin() as conn:
        mark_abandoned(conn)
        conn.execute(
            insert(attribution_runs).values(
                run_id=run_id,
                started_at=now_text(),
                status="running",
                model=model,
                range_start=time_range.start_text,
                range_end=time_range.end_text,
                **owner,
            )
        )


def mark_abandoned(conn: Connection) -> None:
    """Mark ``abandoned`` the runs still ``running`` whose process on this host has ended."""
    runs = attribution_runs.c
    running = select(runs.run_id, runs.pid).where(
        runs.status == "running", runs.host == socket.gethostname(), runs.pid.is_not(None)
    )
    for run_id, pid in conn.execute(running).all():
        if not _alive(pid):
            reason = {"error": f"its process ({pid} on {socket.gethostname()}) ended without finishing it"}
            conn.execute(
                update(attribution_runs)
                .where(runs.run_id == run_id)
                .values(finished_at=now_text(), status="abandoned", summary=json.dumps(reason))
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def record_end(conn: Connection, summary: RunSummary) -> None:
    """Record how a run ended: its status and its summary (counts, timings, notes), in the transaction that
    writes its tables, so a run is ``succeeded`` exactly when they are committed (``committed``)."""
    _write_end(conn, summary.run_id, summary.status, asdict(summary))


def record_failure(engine: Engine, run_id: str, exc: BaseException) -> None:
    """Record that a run stopped on an error (``failed``) or a signal (``interrupted``), with its line. Only a
    run still ``running``: one whose tables are committed keeps its record (a scheduler's export can fail
    after its commit)."""
    status = "interrupted" if isinstance(exc, Interrupted) else "failed"
    with engine.begin() as conn:
        error = {"error": f"{type(exc).__name__}: {exc}"}
        _write_end(conn, run_id, status, error, attribution_runs.c.status == "running")


def committed(bind: Engine | Connection, run_id: str) -> bool:
    """Whether the run's tables are committed: its record, written in the same transaction, says it ended
    (``succeeded`` or ``incomplete``)."""
    status = select(attribution_runs.c.status).where(attribution_runs.c.run_id == run_id)
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return conn.scalar(status) in COMMITTED
    return bind.scalar(status) in COMMITTED


def _write_end(
    conn: Connection, run_id: str, status: str, summary: dict, *where: ColumnElement[bool]
) -> None:
    conn.execute(
        update(attribution_runs)
        .where(attribution_runs.c.run_id == run_id, *where)
        .values(finished_at=now_text(), status=status, summary=json.dumps(summary, sort_keys=True))
    )
