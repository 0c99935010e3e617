"""The run record: one row of ``attribution_runs`` per run, from its start to how it ended.

Why its own transactions: a run that fails still leaves its trace, and the record says what it did
(counts, timings, notes) or the error line that stopped it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, update

from attribution.timerange import TimeRange
from attribution.warehouse.tables import attribution_runs


@dataclass
class RunSummary:
    """What a run did, for the CLI's table, the run record and the DAG's logs."""

    run_id: str
    model: str
    time_range: str
    conversions: int = 0
    """Conversions in the range."""
    journeys: int = 0
    """Conversions with at least one session before them (the rest get no credit)."""
    sessions: int = 0
    without_sessions: int = 0
    credit_total: float = 0.0
    """The credit written: one per attributed journey."""
    unattributed: int = 0
    """Journeys left without credit (IHC API failures, the request quota): a rerun resumes them."""
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


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def record_start(engine: Engine, run_id: str, model: str, time_range: TimeRange) -> None:
    """Record that a run began (in its own transaction, so a failed run still leaves its trace)."""
    with engine.begin() as conn:
        conn.execute(
            insert(attribution_runs).values(
                run_id=run_id,
                started_at=_now(),
                status="running",
                model=model,
                range_start=time_range.start_text,
                range_end=time_range.end_text,
            )
        )


def record_end(engine: Engine, summary: RunSummary) -> None:
    """Record how a run ended: its status and its summary (counts, timings, notes)."""
    _write_end(engine, summary.run_id, summary.status, asdict(summary))


def record_failure(engine: Engine, run_id: str, exc: BaseException) -> None:
    """Record that a run stopped on an error, with the error's line."""
    _write_end(engine, run_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})


def _write_end(engine: Engine, run_id: str, status: str, summary: dict) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(attribution_runs)
            .where(attribution_runs.c.run_id == run_id)
            .values(finished_at=_now(), status=status, summary=json.dumps(summary, sort_keys=True))
        )
