"""The pipeline: an ordered tuple of steps with one signature, folded by ``run()``.

Why this shape: the CLI and the Airflow DAG call the same steps in the same order; the steps that write
share one transaction, so a failure anywhere leaves the previous tables untouched.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, func, select

from attribution import store
from attribution.export import export_channel_report
from attribution.journeys import build_journeys
from attribution.models import Attributor, get_model, validate_credits
from attribution.report import build_channel_report
from attribution.settings import Settings
from attribution.warehouse import connect, create_output_tables, ensure_indexes, validate_inputs

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``(step, done, total)`` while a long step advances."""


@dataclass
class RunSummary:
    """What a run did, for the CLI's table, the run record and the DAG's logs."""

    run_id: str
    model: str
    time_range: str
    conversions: int = 0
    journeys: int = 0
    sessions: int = 0
    without_sessions: int = 0
    credit_total: float = 0.0
    report_rows: int = 0
    csv_path: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class RunContext:
    """Everything the steps share: settings, the open transaction, the model and what was touched."""

    settings: Settings
    engine: Engine
    model: Attributor
    summary: RunSummary
    conn: Connection | None = None
    touched_dates: set[str] | None = None
    on_progress: ProgressCallback | None = None

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.summary.seconds[name] = self.summary.seconds.get(name, 0.0) + time.perf_counter() - began

    def progress(self, step: str, done: int, total: int) -> None:
        if self.on_progress:
            self.on_progress(step, done, total)


def prepare_warehouse(ctx: RunContext) -> None:
    """Check the inputs, create missing output tables and the indexes the journey SQL needs."""
    validate_inputs(ctx.engine)
    create_output_tables(ctx.engine)
    ensure_indexes(ctx.engine)


def attribute_conversions(ctx: RunContext) -> None:
    """Replace the range's credit: stream journeys, attribute each chunk, check it, insert it."""
    conn, time_range, summary = ctx.conn, ctx.settings.time_range, ctx.summary
    touched = store.credited_dates(conn, time_range)
    store.delete_credits(conn, time_range)
    total = conn.scalar(select(func.count()).select_from(store.conversions_in(time_range).subquery()))
    chunks = build_journeys(conn, time_range, ctx.settings.journey_options, ctx.settings.chunk_conversions)
    while True:
        with ctx.timed("journeys"):
            chunk = next(chunks, None)
        if chunk is None:
            break
        with ctx.timed("attribute"):
            credits = ctx.model.attribute(chunk.journeys)
            validate_credits(chunk.journeys, credits)
        with ctx.timed("store"):
            store.insert_credits(conn, credits)
        touched.update(chunk.journeys["timestamp"].str.slice(0, 10).unique())
        summary.conversions += chunk.conversions
        summary.without_sessions += chunk.without_sessions
        summary.journeys += chunk.conversions - chunk.without_sessions
        summary.sessions += chunk.journeys.height
        summary.credit_total += float(credits["ihc"].sum())
        ctx.progress("attribute", summary.conversions, total)
    ctx.touched_dates = touched | set(time_range.dates()) if time_range.is_bounded else None


def rebuild_report(ctx: RunContext) -> None:
    """Recompute the report rows of every date the run touched (all dates for an open range)."""
    with ctx.timed("report"):
        ctx.summary.report_rows = build_channel_report(ctx.conn, ctx.touched_dates)


def export_report(ctx: RunContext) -> None:
    """Write the report files into the output directory."""
    with ctx.timed("export"):
        ctx.summary.csv_path = str(export_channel_report(ctx.conn, Path(ctx.settings.out)))


STEPS: tuple[Callable[[RunContext], None], ...] = (attribute_conversions, rebuild_report, export_report)
"""The steps that write, in order; they share one transaction."""


def run(settings: Settings, on_progress: ProgressCallback | None = None) -> RunSummary:
    """Run the whole pipeline once for ``settings`` and return its summary."""
    began = time.perf_counter()
    model = get_model(settings.model)
    engine = connect(settings.db)
    summary = RunSummary(run_id=uuid.uuid4().hex, model=settings.model, time_range=str(settings.time_range))
    ctx = RunContext(settings, engine, model, summary, on_progress=on_progress)
    try:
        with ctx.timed("prepare"):
            prepare_warehouse(ctx)
        store.start_run(engine, summary.run_id, settings.model, settings.time_range)
        try:
            with engine.begin() as ctx.conn:
                for step in STEPS:
                    step(ctx)
        except Exception as exc:
            store.finish_run(engine, summary.run_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})
            raise
        summary.seconds["total"] = time.perf_counter() - began
        store.finish_run(engine, summary.run_id, "succeeded", vars(summary))
        return summary
    finally:
        engine.dispose()
