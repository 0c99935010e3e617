"""The in-process runner: every step in one process, for the CLI and for library users.

Why this shape: the read steps compute everything (for an open range every session's cost, on a background
thread beside attribution); the write steps then share
one short transaction under the write lock, with the run's record and its report files staged, so a
failure anywhere leaves the previous tables and files untouched; the files are put in place after the
commit (``reporting.file_set``). No work tables: what one step hands the next stays in memory.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, cast

import polars as pl
from sqlalchemy import Engine, func, select

from attribution.errors import Interrupted
from attribution.interrupts import stopping_on_signals
from attribution.journeys import JourneyChunk
from attribution.models import Attributor
from attribution.pipeline import steps
from attribution.pipeline.settings import Settings
from attribution.pipeline.window import Window, plan_window
from attribution.reporting.channel_report import CREDIT_SUM_SCHEMA, aggregate_session_costs, credit_rows
from attribution.reporting.publish import Pending, Publish
from attribution.store import claims
from attribution.store.credit import conversions_in, write_batch
from attribution.store.runs import Heartbeat, RunSummary, record_end, record_failure, record_start
from attribution.vocabulary import empty_paths, journey_paths
from attribution.warehouse.locks import write_transaction
from attribution.warehouse.schema import builds_indexes, missing_indexes

if TYPE_CHECKING:
    from attribution.ihc_api.client import IHCApiAttributor
    from attribution.models.path_model import PathModel

ProgressCallback = Callable[[str, int, int | None], None]
"""Called as ``(step, done, total)`` when a step or a phase of prepare starts (total ``None``: a step with
no parts to count) and as it advances: conversions attributed per chunk, credit frames stored, files made."""


@dataclass
class Attributed:
    """What the attribute step hands the store step: local credit in memory (remote credit is already
    stored, request by request) and the dates of the sessions that got credit."""

    credits: list[pl.DataFrame] = field(default_factory=list)
    dates: set[str] = field(default_factory=set)
    report_rows: list[pl.DataFrame] | None = None
    """The credit as the report reads it (``credit_rows``) where the run replaces its model's whole stored
    credit (a local model's open range); ``None`` otherwise: the report reads the stored credit."""

    def stored(self) -> pl.DataFrame | None:
        """The model's whole stored credit once this is stored, as the report reads it, where known."""
        return (
            None
            if self.report_rows is None
            else pl.concat([pl.DataFrame(schema=CREDIT_SUM_SCHEMA), *self.report_rows])
        )


def run(settings: Settings, on_progress: ProgressCallback | None = None) -> RunSummary:
    """Run the whole pipeline once for ``settings`` and return its summary."""
    began = time.perf_counter()
    steps.check(settings)
    summary = RunSummary(
        run_id=uuid.uuid4().hex, model=settings.model.name, time_range=str(settings.time_range)
    )
    progress = on_progress or (lambda _step, _done, _total: None)
    with (
        settings.open_warehouse() as engine,
        ThreadPoolExecutor(max_workers=1) as background,
    ):
        costs = _cost_scan(settings, engine, background)
        with _timed(summary, "prepare"):
            prepared, settings, window = _prepare(settings, engine, summary, progress, costs)
        heartbeat = Heartbeat(engine, summary.run_id, settings.policies.run_lease_seconds)
        with ExitStack() as destination:
            with _failure_recorded(engine, summary.run_id):
                attributed = _attribute_range(settings, engine, prepared.model, summary, progress, heartbeat)
                heartbeat.beat()  # before the write steps' one transaction, which may wait for the lock
                publish = destination.enter_context(steps.destination(settings, engine))
                files = _write_steps(
                    settings, engine, attributed, summary, progress, costs, publish, began, window
                )
            files.release()  # the run has committed: should this fail, the next run finishes it
    return summary


def _prepare(
    settings: Settings,
    engine: Engine,
    summary: RunSummary,
    progress: ProgressCallback,
    costs: Future[pl.DataFrame] | None,
) -> tuple[steps.Prepared, Settings, Window | None]:
    """The prepare step, then the restatement window and the run's record: what it prepared, the settings
    narrowed to the days the run redoes, and the window (``None``: none)."""
    prepared = steps.prepare(
        settings,
        engine,
        before_writes=_scan_end(costs, settings, engine),
        on_phase=lambda phase: progress(f"prepare: {phase}", 0, None),
        conversion_paths=False,  # a path model learns from the journeys the run streams
    )
    summary.notes.extend(prepared.notes)
    summary.skipped_conversions = prepared.skipped.conversions
    summary.skipped_sessions = prepared.skipped.sessions
    if settings.restated_dates:
        progress("prepare: restatement window", 0, None)
    window = plan_window(settings, engine)
    settings = window.narrowed(settings) if window else settings  # the days it redoes
    summary.time_range = str(settings.time_range)
    lease = settings.policies.run_lease_seconds
    record_start(
        engine, summary.run_id, settings.model.name, settings.time_range, in_process=True, lease_seconds=lease
    )
    return prepared, settings, window


def _cost_scan(
    settings: Settings, engine: Engine, background: ThreadPoolExecutor
) -> Future[pl.DataFrame] | None:
    """The whole session-cost scan of an open range, started in the background beside prepare (whose input
    checks read every row meanwhile)."""
    if not steps.whole_report(settings):
        return None
    return background.submit(aggregate_session_costs, engine)


def _scan_end(
    costs: Future[pl.DataFrame] | None, settings: Settings, engine: Engine
) -> Callable[[], object] | None:
    """What prepare waits for before it writes: the SQLite scan's end when prepare will build indexes, whose
    build holds the file's write lock for longer than a reader waits (the scan reads while the checks do,
    then the build runs alone)."""
    if (
        costs is None
        or engine.dialect.name != "sqlite"
        or not builds_indexes(engine, settings.warehouse.create_indexes)
    ):
        return None
    return costs.result if missing_indexes(engine) else None


@contextmanager
def _failure_recorded(engine: Engine, run_id: str) -> Iterator[None]:
    """The run's record closed as ``failed`` on an error, ``interrupted`` on a signal (``Interrupted``)."""
    try:
        yield
    except (Exception, Interrupted) as exc:
        with stopping_on_signals(ignored=True):  # a second signal must not leave the record open
            record_failure(engine, run_id, exc)
        raise


def _write_steps(
    settings: Settings,
    engine: Engine,
    attributed: Attributed,
    summary: RunSummary,
    progress: ProgressCallback,
    costs: Future[pl.DataFrame] | None,
    publish: Publish,
    began: float,
    window: Window | None,
) -> Pending:
    """Store, report and export in one transaction that also records the run's end; the files it made,
    to release once it has committed."""
    with write_transaction(engine) as conn:
        progress("store", 0, len(attributed.credits))
        with _timed(summary, "store"):
            written = steps.frames_writer(
                attributed.credits, partial(progress, "store"), redshift_copy=settings.redshift_copy
            )
            dates = steps.store(conn, settings, attributed.dates, [], written)
        progress("report", 0, None)
        with _timed(summary, "costs (wait)"):
            session_costs = costs.result() if costs else None
        with _timed(summary, "report"):
            summary.report_rows, restated = steps.report(
                conn, settings, dates, session_costs, window, attributed.stored()
            )
            summary.notes.extend(restated)
        progress("export", 0, len(settings.output.formats))
        with _timed(summary, "export"):
            files = steps.export(conn, settings, summary, publish, partial(progress, "export"))
            summary.report_paths = {name: str(path) for name, path in files.paths.items()}
        summary.seconds["total"] = time.perf_counter() - began
        claims.release(conn, summary.run_id)
        record_end(conn, summary)
    return files


def _attribute_range(
    settings: Settings,
    engine: Engine,
    model: Attributor,
    summary: RunSummary,
    progress: ProgressCallback,
    heartbeat: Heartbeat,
) -> Attributed:
    """Stream the range's journeys and attribute each chunk: local credit is kept for the store step; the
    remote API's is committed request by request, so a killed run resumes where it stopped. The run's lease
    is renewed between chunks (``Heartbeat``)."""
    with engine.connect() as conn:
        total = conn.scalar(
            select(func.count()).select_from(conversions_in(conn, settings.time_range).subquery())
        )
        summary.notes.extend(steps.empty_range_notes(conn, settings, total))
    attributed, chunks = Attributed(), steps.journeys(settings, engine)
    if steps.whole_report(settings) and not settings.remote:
        attributed.report_rows = []
    if getattr(model, "learns_from_journeys", False):  # a path model, its converting paths not given
        model, chunks = _trained(cast("PathModel", model), chunks, summary)
    while not summary.stopped_early:
        heartbeat.beat()
        with _timed(summary, "journeys"):
            chunk = next(chunks, None)
        if chunk is None:
            break
        with _timed(summary, "attribute"):
            _attribute_chunk(settings, engine, model, chunk, attributed, summary)
        progress("attribute_conversions", summary.conversions, total)
    summary.notes.extend(steps.left_note(summary.left_to_other_runs))
    return attributed


def _attribute_chunk(
    settings: Settings,
    engine: Engine,
    model: Attributor,
    chunk: JourneyChunk,
    attributed: Attributed,
    summary: RunSummary,
) -> None:
    """One chunk's credit: kept for the store step (and its report rows), or the remote API's committed
    request by request; the chunk counted in the summary."""
    if settings.remote:  # the model is the IHC API's client
        _attribute_remotely(engine, model, chunk.journeys, settings, summary)
    else:
        attributed.credits.append(steps.attribute(model, chunk.journeys, settings))
        _count_credit(summary, attributed.credits[-1])
        if attributed.report_rows is not None:
            attributed.report_rows.append(credit_rows(attributed.credits[-1], chunk.journeys))
    attributed.dates |= steps.session_dates(chunk.journeys)
    summary.conversions += chunk.conversions
    summary.without_sessions += chunk.without_sessions
    summary.journeys += chunk.conversions - chunk.without_sessions
    summary.sessions += chunk.journeys.height


def _trained(
    model: PathModel, chunks: Iterator[JourneyChunk], summary: RunSummary
) -> tuple[PathModel, Iterator[JourneyChunk]]:
    """A path model trained on the range's journeys, and those journeys to attribute: read once, where
    reading them apart to learn from doubled the run's reads (a million orders: about two million sessions).
    They stay in memory until attributed, as their credit does until stored."""
    with _timed(summary, "journeys"):
        read = list(chunks)
    with _timed(summary, "attribute"):
        trained = model.trained_on(
            pl.concat([empty_paths(), *(journey_paths(chunk.journeys) for chunk in read)])
        )
    return trained, iter(read)


def _attribute_remotely(
    engine: Engine, model: IHCApiAttributor, journeys: pl.DataFrame, settings: Settings, summary: RunSummary
) -> None:
    limit = model.config.max_requests
    if limit is not None and summary.requests >= limit:
        summary.stopped_early = True
        summary.unattributed += journeys["conv_id"].n_unique()
        return
    journeys, left = steps.claimed(engine, summary.run_id, journeys, settings)
    summary.left_to_other_runs += len(left)
    client = model if limit is None else model.with_quota(limit - summary.requests)

    def commit(credits: pl.DataFrame, failures: pl.DataFrame) -> None:
        write_batch(
            engine,
            summary.run_id,
            settings.credit_label,
            credits,
            failures,
            redshift_copy=settings.redshift_copy,
        )
        _count_credit(summary, credits)

    report = steps.attribute_remotely(client, journeys, settings, commit)
    summary.requests += report.requests
    summary.unattributed += report.journeys_failed + report.journeys_skipped + report.journeys_unsent
    summary.stopped_early = report.stopped_at_quota
    if not report.complete:
        summary.notes.append(report.summary())


def _count_credit(summary: RunSummary, credits: pl.DataFrame) -> None:
    """Count the journeys ``credits`` attributes and the credit it gives them."""
    summary.attributed += credits["conv_id"].n_unique()
    summary.credit_total += float(credits["ihc"].sum())


@contextmanager
def _timed(summary: RunSummary, name: str) -> Iterator[None]:
    began = time.perf_counter()
    try:
        yield
    finally:
        summary.seconds[name] = summary.seconds.get(name, 0.0) + time.perf_counter() - began
