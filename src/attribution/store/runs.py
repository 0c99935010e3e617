"""The run record: one row of ``attribution_runs`` per run, from its start to how it ended, and its lease.

Why its start and failure in transactions of their own: a run that fails still leaves its trace, and the
record says what it did (counts, timings, notes) or the error line that stopped it. Its end is written with
its tables, so the record says whether they committed (what a report file set waits for).

Why a lease: a run killed without closing its record (``kill -9``, a lost machine, a scheduler's run
deleted) would stay ``running`` for ever, and its IHC API claims with it (``store.claims``). A CLI run's
process on this host is checked directly; any other run (another host, a scheduler's tasks, which have no
one process) counts as alive while its owner renews ``heartbeat_at`` within its ``lease_seconds``. The
owner renews at step boundaries (``Heartbeat``, ``renew``); every run, as it starts, closes as ``abandoned``
the records whose owner is gone (``mark_abandoned``). An owner that was only slow finds its record
abandoned at its next renewal and opens it again.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, Engine, Row, insert, select, update

from attribution.errors import Interrupted
from attribution.timerange import TimeRange
from attribution.warehouse.tables import attribution_runs

logger = logging.getLogger(__name__)

COMMITTED = ("succeeded", "incomplete")
"""The statuses of runs whose tables are committed (``RunSummary.status``)."""
OWNED = ("running", "abandoned")
"""The statuses a run's own failure may write over: an ``abandoned`` run's owner was only slow."""
DEFAULT_LEASE_SECONDS = 3600
"""How long a run counts as alive after its owner's last renewal, by default (also for a record of an earlier
version, which has none, counted from its start)."""
MIN_LEASE_SECONDS = 900
"""The shortest lease: longer than the longest silence of an owner at the default settings, one IHC API
request with every retry (7 attempts of at most 90 s, 6 waits of at most 30 s: about 14 minutes)."""
MAX_LEASE_SECONDS = 86_400
"""The longest lease: a dead run's record (and its IHC API claims) is closed within a day."""
RENEW_FRACTION = 0.25
"""An owner renews its lease at a step boundary once this part of it has passed: a run shorter than that
writes no renewal at all, a longer one renews long before its lease runs out."""


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
    """Sessions in the attributed journeys."""
    without_sessions: int = 0
    """Conversions in the range with no session before them: no journey, no credit."""
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
    """IHC API requests sent (none for a local model)."""
    stopped_early: bool = False
    """The request quota (``--max-requests``) ended the run before every journey was sent."""
    report_rows: int = 0
    """Rows of ``channel_reporting`` the run rebuilt."""
    report_paths: dict[str, str] = field(default_factory=dict)
    """The report files written, by format."""
    notes: list[str] = field(default_factory=list)
    """What the user should know of the run: inputs that look stale, dates restated, the IHC API's retries."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Seconds per step."""

    @property
    def status(self) -> str:
        """``incomplete`` while conversions are left without credit (a rerun resumes them), else ``succeeded``."""
        return "incomplete" if self.unattributed else "succeeded"


def now_text(seconds_ago: float = 0) -> str:
    """The time (UTC) as the bookkeeping tables store it, text that sorts as time does."""
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%d %H:%M:%S")


def record_start(
    engine: Engine,
    run_id: str,
    model: str,
    time_range: TimeRange,
    *,
    in_process: bool,
    lease_seconds: int,
) -> None:
    """Record that a run began (in its own transaction, so a failed run still leaves its trace), holding a
    lease of ``lease_seconds`` from now; close first the records whose owner is gone (``mark_abandoned``).

    An ``in_process`` run records its host and process id: a later run on this host then marks it
    ``abandoned`` as soon as that process is gone without finishing it (a kill). A scheduled run's tasks are
    processes that come and go, so it records neither: its lease tells.
    """
    owner = {"host": socket.gethostname(), "pid": os.getpid()} if in_process else {}
    started = now_text()
    with engine.begin() as conn:
        mark_abandoned(conn)
        conn.execute(
            insert(attribution_runs).values(
                run_id=run_id,
                started_at=started,
                status="running",
                model=model,
                range_start=time_range.start_text,
                range_end=time_range.end_text,
                heartbeat_at=started,
                lease_seconds=lease_seconds,
                **owner,
            )
        )


def renew(bind: Engine | Connection, run_id: str) -> None:
    """Renew the run's lease from now (in a transaction of its own, or the caller's): its owner is alive. A
    record closed without committed tables (``abandoned`` meanwhile, or a scheduled run's failed task cleared
    to run again) is ``running`` again; a committed one is left as it is."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            renew(conn, run_id)
        return
    runs = attribution_runs.c
    bind.execute(
        update(attribution_runs)
        .where(runs.run_id == run_id, runs.status.not_in(COMMITTED))
        .values(heartbeat_at=now_text(), status="running", finished_at=None, summary=None)
    )


class Heartbeat:
    """An in-process run's renewals: ``beat`` at each step boundary renews the lease once ``RENEW_FRACTION``
    of it has passed since the last renewal (the run's start, recorded just before).

    Why not at every boundary: a renewal is a write, and on SQLite a write waits for the readers beside it
    (the session-cost scan); a run shorter than a quarter of its lease never waits for one.
    """

    def __init__(
        self, engine: Engine, run_id: str, lease_seconds: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._engine, self._run_id, self._clock = engine, run_id, clock
        self._every = lease_seconds * RENEW_FRACTION
        self._renewed = clock()

    def beat(self) -> None:
        """Renew the lease if it is due."""
        if self._clock() - self._renewed < self._every:
            return
        renew(self._engine, self._run_id)
        self._renewed = self._clock()


def mark_abandoned(conn: Connection) -> None:
    """Mark ``abandoned``, with one line saying why, the runs still ``running`` whose owner is gone: a process
    of this host that has ended, or any run (of any host, a scheduler's) whose lease ran out.

    The mark is conditional on the renewal it judged: an owner renewing meanwhile keeps its record.
    """
    runs = attribution_runs.c
    lease = (runs.run_id, runs.host, runs.pid, runs.started_at, runs.heartbeat_at, runs.lease_seconds)
    for record in conn.execute(select(*lease).where(runs.status == "running")).all():
        reason = _gone(record)
        if reason is None:
            continue
        same_renewal = (
            runs.heartbeat_at.is_(None)
            if record.heartbeat_at is None
            else runs.heartbeat_at == record.heartbeat_at
        )
        marked = conn.execute(
            update(attribution_runs)
            .where(runs.run_id == record.run_id, runs.status == "running", same_renewal)
            .values(finished_at=now_text(), status="abandoned", summary=json.dumps({"error": reason}))
        )
        if marked.rowcount:
            logger.warning("Run %s marked abandoned: %s", record.run_id, reason)


def _gone(record: Row) -> str | None:
    """Why the run's owner is gone (one line), or ``None`` while it may be alive."""
    here = socket.gethostname()
    if record.host == here and record.pid is not None and not _alive(record.pid):
        return f"its process ({record.pid} on {here}) ended without finishing it"
    seconds = record.lease_seconds or DEFAULT_LEASE_SECONDS
    renewed = record.heartbeat_at or record.started_at
    if renewed >= now_text(seconds):
        return None
    owner = f"its process ({record.pid} on {record.host})" if record.host else "its scheduler's tasks"
    return f"{owner} renewed its lease of {seconds} s last at {renewed} UTC, and it ran out"


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
    run its owner may still write over (``OWNED``): one whose tables are committed keeps its record (a
    scheduler's export can fail after its commit)."""
    status = "interrupted" if isinstance(exc, Interrupted) else "failed"
    with engine.begin() as conn:
        error = {"error": f"{type(exc).__name__}: {exc}"}
        _write_end(conn, run_id, status, error, attribution_runs.c.status.in_(OWNED))


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
