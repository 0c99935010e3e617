"""The pipeline in batches, for schedulers: stage a run's journeys, attribute each batch on its own, then
store, report and export.

Why staging tables: a scheduler runs every step as its own process, perhaps on another machine, so the
journeys and the credit between steps live in the warehouse, keyed by run, never in the scheduler's
messages. Why keyed by run: two runs never read or delete each other's rows, and every step can run again
with the same result: staging replaces the run's rows, a batch replaces its own credit, and finishing a run
that is already finished changes nothing. Nothing here imports Airflow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import polars as pl
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    Row,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
)

from attribution import store, warehouse
from attribution.bulk import bulk_insert
from attribution.errors import IntegrityError, TransientError
from attribution.export import export_all
from attribution.ihc_api.answers import RETRIES_EXHAUSTED
from attribution.ihc_api.client import BatchOutcome, IHCApiAttributor
from attribution.ihc_api.packing import pack_requests
from attribution.journeys import JOURNEY_SCHEMA, build_journeys, in_journey_order
from attribution.models import validate_credits
from attribution.pipeline import RunSummary, build_model, dashboard_context
from attribution.report import aggregate_session_costs, build_channel_report
from attribution.settings import Settings
from attribution.storage import as_uri
from attribution.warehouse import Real, attribution_customer_journey, attribution_failures

logger = logging.getLogger(__name__)

DEFAULT_BATCH_JOURNEYS = 5_000
"""Journeys per batch: one batch is one scheduler task (for the IHC API, whole requests of it)."""
STAGED_SCHEMA = {**JOURNEY_SCHEMA, "conversion": pl.Int8()}
_COUNTS = ("conversions", "journeys", "sessions", "without_sessions", "skipped")


def _run_and_batch() -> tuple[Column, Column]:
    return Column("run_key", Text, primary_key=True), Column("batch_id", Integer, primary_key=True)


staged_runs = Table(
    "attribution_staged_runs",
    warehouse.metadata,
    Column("run_key", Text, primary_key=True),
    Column("batches", Integer, nullable=False),
    *(Column(name, Integer, nullable=False) for name in _COUNTS),
)
staged_journeys = Table(
    "attribution_staged_journeys",
    warehouse.metadata,
    *_run_and_batch(),
    Column("conv_id", Text, primary_key=True),
    Column("session_id", Text, primary_key=True),
    *(Column(name, Real if name == "revenue" else Text) for name in ("conv_ts", "revenue", "timestamp")),
    Column("channel_name", Text),
    *(Column(name, Integer) for name in ("holder_engagement", "closer_engagement", "impression_interaction")),
    Column("conversion", Integer),
)
staged_credits = Table(
    "attribution_staged_credits",
    warehouse.metadata,
    *_run_and_batch(),
    Column("conv_id", Text, primary_key=True),
    Column("session_id", Text, primary_key=True),
    Column("ihc", Real, nullable=False),
)
STAGING_TABLES = (staged_runs, staged_journeys, staged_credits)


class BatchUnsettledError(TransientError):
    """Some journeys of a batch got no answer (service unreachable, request quota): a retry sends only them."""


@dataclass(frozen=True)
class StagePlan:
    """What ``stage_journeys`` wrote: the batch ids to attribute and the run's counts."""

    batch_ids: list[int]
    conversions: int = 0
    journeys: int = 0
    sessions: int = 0
    without_sessions: int = 0
    skipped: int = 0


@contextmanager
def _engine(settings: Settings) -> Iterator[Engine]:
    engine = warehouse.connect(settings.db, staged_copy=settings.staged_copy)
    try:
        yield engine
    finally:
        engine.dispose()


def prepare_run(settings: Settings) -> list[str]:
    """Check the model and the inputs, create missing output and staging tables and, where allowed, the
    journey indexes; notes for the user (a missing index)."""
    build_model(settings)  # an unknown model or a missing API key fails here, before any work
    with _engine(settings) as engine:
        notes = warehouse.prepare(engine, settings.create_indexes)
        warehouse.metadata.create_all(engine, tables=list(STAGING_TABLES), checkfirst=True)
    return notes


def stage_journeys(
    settings: Settings,
    run_key: str,
    batch_journeys: int = DEFAULT_BATCH_JOURNEYS,
    max_batches: int | None = None,
) -> StagePlan:
    """Write the range's journeys into staging in batches of whole journeys, replacing the run's earlier rows.

    Local models get batches of ``batch_journeys`` journeys; the IHC API gets the requests ``pack_requests``
    makes, ``batch_journeys // max_journeys`` of them per batch, so a batch task sends whole requests. Each
    chunk is written in a short transaction; the run counts as staged only once all of them are.
    """
    counts, batches = dict.fromkeys(_COUNTS, 0), 0
    options = (settings.time_range, settings.journey_options, settings.chunk_conversions)
    with _engine(settings) as engine:
        _forget(engine, run_key)
        try:
            for chunk in build_journeys(engine, *options):
                assignment, skipped = _batches(chunk.journeys, settings, batch_journeys)
                rows = chunk.journeys.join(assignment, on="conv_id")
                with engine.begin() as conn:
                    ids = {"run_key": pl.lit(run_key), "batch_id": pl.col("batch") + batches}
                    bulk_insert(conn, staged_journeys, rows.with_columns(**ids))
                batches += int(assignment["batch"].max()) + 1 if assignment.height else 0
                added = (chunk.conversions, assignment.height, rows.height, chunk.without_sessions, skipped)
                counts = {name: counts[name] + value for name, value in zip(_COUNTS, added, strict=True)}
            if max_batches is not None and batches > max_batches:
                raise IntegrityError(
                    f"{batches} batches exceed the scheduler's limit of {max_batches}: raise batch_journeys"
                )
        except BaseException:
            _forget(engine, run_key)
            raise
        with engine.begin() as conn:
            conn.execute(insert(staged_runs).values(run_key=run_key, batches=batches, **counts))
        store.start_run(engine, run_key, settings.model, settings.time_range)
    logger.info("Staged %s of %s in %d batches", counts, settings.time_range, batches)
    return StagePlan(list(range(batches)), **counts)


def _forget(engine: Engine, run_key: str) -> None:
    """Drop a run's staged rows and its run record, so staging again starts clean."""
    with engine.begin() as conn:
        for table in STAGING_TABLES:
            conn.execute(delete(table).where(table.c.run_key == run_key))
        conn.execute(delete(store.attribution_runs).where(store.attribution_runs.c.run_id == run_key))


def _batches(journeys: pl.DataFrame, settings: Settings, batch_journeys: int) -> tuple[pl.DataFrame, int]:
    """Each journey's batch (``conv_id``, ``batch`` from 0) and how many journeys are left out as too long."""
    if settings.model != IHCApiAttributor.name:
        ids = journeys["conv_id"].unique(maintain_order=True)
        return pl.DataFrame({"conv_id": ids, "batch": np.arange(len(ids)) // batch_journeys}), 0
    config = build_model(settings).config
    plan = pack_requests(journeys, config.max_journeys, config.max_sessions, config.long_journey_policy)
    request = np.repeat(np.arange(len(plan)), np.diff(plan.offsets))
    per_batch = max(1, batch_journeys // config.max_journeys)
    rows = plan.rows[plan.row_index].select("conv_id").with_columns(batch=pl.Series(request // per_batch))
    return rows.unique("conv_id", keep="first"), len(plan.skipped_ids)


def attribute_batch(settings: Settings, run_key: str, batch_id: int) -> dict[str, int]:
    """Attribute one staged batch and stage its credit; running it again gives the same staged rows.

    Local credit replaces the batch's staged credit at once. IHC API credit is staged request by request and
    a rerun sends only the journeys still without credit; failures are recorded as the pipeline does, and
    journeys left without an answer raise ``BatchUnsettledError`` so the scheduler retries the task.
    """
    model = build_model(settings)
    with _engine(settings) as engine:
        journeys = _read_batch(engine, run_key, batch_id)
        result = dict(batch_id=batch_id, journeys=journeys["conv_id"].n_unique(), requests=0, failed=0)
        if not isinstance(model, IHCApiAttributor):
            credits = model.attribute(journeys)
            validate_credits(journeys, credits)
            _stage_credits(engine, run_key, batch_id, credits, whole_batch=True)
            return result
        todo = journeys.join(_credited_in(engine, run_key, batch_id), on="conv_id", how="anti")
        if todo.is_empty():
            return result

        def commit(outcome: BatchOutcome) -> None:
            validate_credits(todo.join(outcome.credits, on="conv_id", how="semi"), outcome.credits)
            _stage_credits(engine, run_key, batch_id, outcome.credits, whole_batch=False)
            store.write_batch(engine, run_key, outcome.credits.clear(), outcome.failures)

        report = model.attribute_batches(todo, commit)
    logger.info("Batch %d: %s", batch_id, report.summary())
    if report.failure_reasons.get(RETRIES_EXHAUSTED) or report.journeys_unsent:
        raise BatchUnsettledError(f"Batch {batch_id} of run {run_key}: {report.summary()}")
    return {**result, "requests": report.requests, "failed": report.journeys_failed}


def _read_batch(engine: Engine, run_key: str, batch_id: int) -> pl.DataFrame:
    c = staged_journeys.c
    query = select(*(c[name] for name in STAGED_SCHEMA)).where(c.run_key == run_key, c.batch_id == batch_id)
    with engine.connect() as conn:
        return in_journey_order(
            pl.DataFrame(conn.execute(query).fetchall(), schema=STAGED_SCHEMA, orient="row")
        )


def _credited_in(engine: Engine, run_key: str, batch_id: int) -> pl.DataFrame:
    c = staged_credits.c
    query = select(c.conv_id).distinct().where(c.run_key == run_key, c.batch_id == batch_id)
    with engine.connect() as conn:
        return pl.DataFrame({"conv_id": conn.scalars(query).all()}, schema={"conv_id": pl.String})


def _stage_credits(
    engine: Engine, run_key: str, batch_id: int, credits: pl.DataFrame, *, whole_batch: bool
) -> None:
    """Delete-then-insert the staged credit of the whole batch, or of the conversions in ``credits``."""
    c = staged_credits.c
    same = c.batch_id == batch_id if whole_batch else c.conv_id.in_(credits["conv_id"].unique().to_list())
    rows = credits.select("conv_id", "session_id", "ihc").with_columns(
        run_key=pl.lit(run_key), batch_id=pl.lit(batch_id)
    )
    with engine.begin() as conn:
        conn.execute(delete(staged_credits).where(c.run_key == run_key, same))
        bulk_insert(conn, staged_credits, rows)


def finish_run(settings: Settings, run_key: str) -> RunSummary | None:
    """Replace the range's stored credit with the run's staged credit, rebuild the report rows of every date
    it touches and drop the run's staging rows, in one transaction; ``None`` if the run is not staged (it is
    finished already, so running this again changes nothing).

    Finishing runs are serialised by a write lock taken first (a PostgreSQL advisory lock, SQLite's write
    lock), so runs over overlapping ranges that finish at once are applied one after the other.
    """
    began = time.perf_counter()
    with _engine(settings) as engine:
        with engine.connect() as conn:
            if _staged_run(conn, run_key) is None:
                return None
        costs = aggregate_session_costs(engine)  # reads the input tables only: before the lock
        with engine.begin() as conn:
            store.lock_writes(conn)
            if (staged := _staged_run(conn, run_key)) is None:
                return None
            counts = (staged.conversions, staged.journeys, staged.sessions, staged.without_sessions)
            summary = RunSummary(run_key, settings.model, str(settings.time_range), *counts)
            dates = _touched_dates(conn, settings, run_key)  # before the old credit goes
            _replace_credit(conn, settings, run_key, summary)
            summary.unattributed += staged.skipped
            summary.report_rows = build_channel_report(conn, costs, dates)
            for table in STAGING_TABLES:
                conn.execute(delete(table).where(table.c.run_key == run_key))
        summary.seconds["finish"] = time.perf_counter() - began
        status = "incomplete" if summary.unattributed else "succeeded"
        store.finish_run(engine, run_key, status, vars(summary))
    logger.info("Run %s %s: %s", run_key, status, vars(summary))
    return summary


def _staged_run(conn: Connection, run_key: str) -> Row | None:
    return conn.execute(select(staged_runs).where(staged_runs.c.run_key == run_key)).first()


def _replace_credit(conn: Connection, settings: Settings, run_key: str, summary: RunSummary) -> None:
    """Swap the range's stored credit for the staged one (only the staged conversions' when resuming remote
    credit), and clear the failures of the conversions that now hold credit."""
    c, acj = staged_credits.c, attribution_customer_journey
    totals = select(func.count(c.conv_id.distinct()), func.coalesce(func.sum(c.ihc), 0.0))
    credited, summary.credit_total = conn.execute(totals.where(c.run_key == run_key)).one()
    summary.unattributed = summary.journeys - credited
    if summary.unattributed and settings.model != IHCApiAttributor.name:
        raise IntegrityError(f"Run {run_key}: {summary.unattributed} staged journeys have no credit")
    if not settings.journey_options.only_unattributed:
        store.delete_credits(conn, settings.time_range)
    staged = select(c.conv_id).where(c.run_key == run_key)
    conn.execute(delete(acj).where(acj.c.conv_id.in_(staged)))
    rows = select(c.conv_id, c.session_id, c.ihc).where(c.run_key == run_key)
    conn.execute(insert(acj).from_select(["conv_id", "session_id", "ihc"], rows))
    conn.execute(delete(attribution_failures).where(attribution_failures.c.conv_id.in_(staged)))


def _touched_dates(conn: Connection, settings: Settings, run_key: str) -> set[str] | None:
    """Dates whose report rows change: the range's, those of sessions losing credit and of those getting it."""
    if not settings.time_range.is_bounded:
        return None  # an open range rebuilds the whole report, as the pipeline does
    j = staged_journeys.c
    getting = set(
        conn.scalars(select(func.substr(j.timestamp, 1, 10)).distinct().where(j.run_key == run_key))
    )
    return getting | set(settings.time_range.dates()) | store.credited_dates(conn, settings.time_range)


def export_files(settings: Settings, run_key: str) -> dict[str, str]:
    """Write the whole report in every format of ``settings.formats`` into ``settings.out``, the dashboard
    describing this run, as the pipeline's export step does; each format's file URI."""
    context = dashboard_context(settings, RunSummary(run_key, settings.model, str(settings.time_range)))
    options = settings.storage_options.get_secret_value()
    with _engine(settings) as engine, engine.connect() as conn:
        paths = export_all(conn, settings.out, settings.formats, context, options)
    return {name: as_uri(path) for name, path in paths.items()}
