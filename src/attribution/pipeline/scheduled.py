"""The scheduled runner, for schedulers: the same steps as ``in_process``, each a task of its own, with the
run's journeys and credit kept in the warehouse's work tables (``store.work_tables``) between tasks, keyed by run.

Why: a scheduler runs every task as its own process, perhaps on another machine, so nothing may stay in
memory between steps, and every task can run again with the same result: staging journeys again replaces the run's rows,
a batch replaces its own credit, and finishing a run that is already finished changes nothing. Nothing
here imports Airflow.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl
from sqlalchemy import Connection, Engine, Row

from attribution.errors import ConfigError, IntegrityError, TransientError
from attribution.ihc_api.answers import RETRIES_EXHAUSTED
from attribution.ihc_api.client import IHCApiAttributor
from attribution.ihc_api.outcomes import ClientReport
from attribution.ihc_api.packing import pack_requests
from attribution.objectstore import as_uri
from attribution.pipeline import steps
from attribution.pipeline.model_setup import build_model
from attribution.pipeline.settings import Settings
from attribution.pipeline.window import Window, credit_stamp, plan_window
from attribution.reporting.channel_report import aggregate_session_costs
from attribution.reporting.report_inputs import Fingerprint, Stamp
from attribution.store import claims, work_tables
from attribution.store.credit import write_batch
from attribution.store.runs import RunSummary, record_end, record_failure, record_start, renew
from attribution.warehouse.bad_rows import skipped_rows
from attribution.warehouse.locks import write_transaction
from attribution.warehouse.tables import STAGED_COUNTS

logger = logging.getLogger(__name__)

DEFAULT_BATCH_JOURNEYS = 5_000
"""Journeys per batch: one batch is one scheduler task (for the IHC API, whole requests of it)."""


@dataclass(frozen=True)
class StagePlan:
    """What ``stage_journeys`` hands on: the batch ids to attribute and the run's counts."""

    batch_ids: list[int]
    conversions: int = 0
    journeys: int = 0
    sessions: int = 0
    without_sessions: int = 0
    skipped: int = 0


class BatchUnsettledError(TransientError):
    """Some journeys of a batch got no answer (service unreachable, request quota): a retry sends only them."""


def _engine(settings: Settings) -> AbstractContextManager[Engine]:
    return settings.open_warehouse()


def prepare_run(settings: Settings) -> list[str]:
    """The prepare step, with the work tables: notes for the user (a missing index)."""
    steps.check(settings)
    with _engine(settings) as engine:
        return steps.prepare(settings, engine, staging=True).notes


def stage_journeys(
    settings: Settings,
    run_key: str,
    batch_journeys: int = DEFAULT_BATCH_JOURNEYS,
    max_batches: int | None = None,
) -> StagePlan:
    """The journeys step: write the range's journeys into staging in batches of whole journeys, replacing
    the run's earlier rows, and record the run's start.

    Local models get batches of ``batch_journeys`` journeys; the IHC API gets the requests ``pack_requests``
    makes, ``batch_journeys // max_journeys`` of them per batch, so a batch task sends whole requests. Each
    chunk is written in a short transaction; the run counts as staged only once all of them are.
    """
    with _engine(settings) as engine:
        _forget(engine, run_key)
        window = plan_window(settings, engine)
        settings = window.narrowed(settings) if window else settings  # the days it redoes
        try:
            counts, batches = _stage_chunks(engine, settings, run_key, batch_journeys)
            if max_batches is not None and batches > max_batches:
                raise IntegrityError(
                    f"{batches} batches exceed the scheduler's limit of {max_batches}: raise batch_journeys"
                )
        except BaseException:
            _forget(engine, run_key)
            raise
        work_tables.mark_staged(engine, run_key, batches, counts, *_staged_window(window))
        record_start(
            engine,
            run_key,
            settings.model.name,
            settings.time_range,
            in_process=False,
            lease_seconds=settings.policies.run_lease_seconds,
        )
    logger.info("Staged %s of %s in %d batches", counts, settings.time_range, batches)
    return StagePlan(list(range(batches)), **counts)


def _stage_chunks(
    engine: Engine, settings: Settings, run_key: str, batch_journeys: int
) -> tuple[dict[str, int], int]:
    """Append the range's journeys to the run's staged rows chunk by chunk, each chunk in a transaction of its
    own and in batches numbered on from the chunk before; the run's counts and its number of batches."""
    counts, batches = dict.fromkeys(STAGED_COUNTS, 0), 0
    for chunk in steps.journeys(settings, engine):
        assignment, skipped = _batches(chunk.journeys, settings, batch_journeys)
        rows = chunk.journeys.join(assignment, on="conv_id")
        with engine.begin() as conn:
            work_tables.append_journeys(conn, run_key, batches, rows, redshift_copy=settings.redshift_copy)
        batches += int(assignment["batch"].max()) + 1 if assignment.height else 0
        added = (chunk.conversions, assignment.height, chunk.journeys.height, chunk.without_sessions, skipped)
        counts = {name: counts[name] + value for name, value in zip(STAGED_COUNTS, added, strict=True)}
    return counts, batches


def _staged_window(window: Window | None) -> tuple[int | None, dict[str, Fingerprint]]:
    """What staging keeps of a run's window for the task that finishes it: the days it redoes, and the
    inputs it read before its journeys."""
    return (None, {}) if window is None else (window.redo_days, window.inputs)


def _window(
    conn: Connection, settings: Settings, stamp: Stamp | None, run_key: str, staged: Row
) -> Window | None:
    """The window of a staged run as it was planned when its journeys were staged (``None``: none)."""
    if staged.redo_days is None or stamp is None:
        return None
    inputs = {
        day: Fingerprint(*values) for day, values in work_tables.staged_inputs_of(conn, run_key).items()
    }
    return Window(tuple(settings.restated_dates), staged.redo_days, inputs, stamp)


def _forget(engine: Engine, run_key: str) -> None:
    with engine.begin() as conn:
        work_tables.forget_run(conn, run_key, record=True)


def _batches(journeys: pl.DataFrame, settings: Settings, batch_journeys: int) -> tuple[pl.DataFrame, int]:
    """Each journey's batch (``conv_id``, ``batch`` from 0) and how many journeys are left out as too long."""
    if not settings.remote:
        ids = journeys["conv_id"].unique(maintain_order=True)
        return pl.DataFrame({"conv_id": ids, "batch": np.arange(len(ids)) // batch_journeys}), 0
    config = build_model(settings).config
    plan = pack_requests(journeys, config.max_journeys, config.max_sessions, config.long_journey_policy)
    request = np.repeat(np.arange(len(plan)), np.diff(plan.offsets))
    per_batch = max(1, batch_journeys // config.max_journeys)
    rows = plan.rows[plan.row_index].select("conv_id").with_columns(batch=pl.Series(request // per_batch))
    return rows.unique("conv_id", keep="first"), len(plan.skipped_ids)


def attribute_batch(settings: Settings, run_key: str, batch_id: int) -> dict[str, int]:
    """The attribute step on one staged batch, its credit staged; running it again gives the same rows.

    Local credit replaces the batch's staged credit at once. IHC API credit is staged request by request and
    a rerun sends only the journeys still without credit, claimed as the in-process runner claims them (a
    run at the same time sends the others); failures are recorded as the in-process runner records them,
    and journeys left without an answer raise ``BatchUnsettledError`` so the scheduler retries. The run's
    lease is renewed first: its owner is alive.
    """
    model = build_model(settings)
    with _engine(settings) as engine:
        renew(engine, run_key)
        journeys = work_tables.read_batch(engine, run_key, batch_id)
        result = {
            "batch_id": batch_id,
            "journeys": journeys["conv_id"].n_unique(),
            "requests": 0,
            "failed": 0,
            "left_to_other_runs": 0,  # IHC API journeys another run at the same time sends
        }
        if not isinstance(model, IHCApiAttributor):
            credits = steps.attribute(model, journeys, settings)
            work_tables.stage_credits(
                engine, run_key, batch_id, credits, whole_batch=True, redshift_copy=settings.redshift_copy
            )
            return result
        report, result["left_to_other_runs"] = _attribute_unsettled(
            engine, settings, model, run_key, batch_id, journeys
        )
    if report is None:
        return result
    logger.info("Batch %d: %s", batch_id, report.summary())
    if report.failure_reasons.get(RETRIES_EXHAUSTED) or report.journeys_unsent:
        raise BatchUnsettledError(f"Batch {batch_id} of run {run_key}: {report.summary()}")
    return {**result, "requests": report.requests, "failed": report.journeys_failed}


def _attribute_unsettled(
    engine: Engine,
    settings: Settings,
    client: IHCApiAttributor,
    run_key: str,
    batch_id: int,
    journeys: pl.DataFrame,
) -> tuple[ClientReport | None, int]:
    """Send the batch's journeys still without staged credit that this run claims, staging credit and failures
    request by request; the client's report (``None``: nothing left to send) and how many journeys are left to
    another run at the same time."""
    todo = journeys.join(work_tables.credited_in_batch(engine, run_key, batch_id), on="conv_id", how="anti")
    if todo.is_empty():
        return None, 0
    todo, left = steps.claimed(engine, run_key, todo, settings)
    copy = settings.redshift_copy
    work_tables.stage_left(engine, run_key, batch_id, left, redshift_copy=copy)

    def commit(credits: pl.DataFrame, failures: pl.DataFrame) -> None:
        work_tables.stage_credits(engine, run_key, batch_id, credits, whole_batch=False, redshift_copy=copy)
        write_batch(engine, run_key, settings.credit_label, credits.clear(), failures, redshift_copy=copy)

    return steps.attribute_remotely(client, todo, settings, commit), len(left)


def finish_run(settings: Settings, run_key: str) -> RunSummary | None:
    """The store and report steps: the run's staged credit replaces stored credit, the report rows of every
    date it touches are rebuilt and the run's staging rows dropped, in one transaction under the write lock;
    ``None`` if the run is not staged (it is finished already, so running this again changes nothing)."""
    began = time.perf_counter()
    with _engine(settings) as engine:
        with engine.connect() as conn:
            if work_tables.staged_run(conn, run_key) is None:
                return None
        renew(engine, run_key)  # the lock may be another writer's for a while
        # every session's cost only for an open range; it reads the input tables only: before the lock
        costs = aggregate_session_costs(engine) if steps.whole_report(settings) else None
        stamp = credit_stamp(settings, engine) if settings.restated_dates else None
        with write_transaction(engine) as conn:
            if (staged := work_tables.staged_run(conn, run_key)) is None:
                return None
            window = _window(conn, settings, stamp, run_key, staged)
            settings = window.narrowed(settings) if window else settings  # the days it staged
            summary = _summary(conn, settings, run_key, staged)
            dates = steps.store(
                conn,
                settings,
                work_tables.staged_dates(conn, run_key),
                work_tables.credited_conversions(run_key),
                lambda conn: work_tables.copy_credits(conn, run_key),
            )
            summary.report_rows, restated = steps.report(conn, settings, dates, costs, window)
            summary.notes.extend(restated)  # the task log shows each, as a warning
            work_tables.forget_run(conn, run_key)
            claims.release(conn, run_key)
            summary.seconds["finish"] = time.perf_counter() - began
            record_end(conn, summary)
    for note in summary.notes:
        logger.warning(note)
    logger.info("Run %s %s: %s", run_key, summary.status, vars(summary))
    return summary


def _summary(conn: Connection, settings: Settings, run_key: str, staged: Row) -> RunSummary:
    """The run's summary from its staged counts; a local model must have credited every staged journey."""
    counts = (staged.conversions, staged.journeys, staged.sessions, staged.without_sessions)
    summary = RunSummary(run_key, settings.model.name, str(settings.time_range), *counts)
    summary.attributed, summary.credit_total = work_tables.credit_totals(conn, run_key)
    summary.left_to_other_runs = work_tables.left_count(conn, run_key)
    summary.unattributed = summary.journeys - summary.attributed - summary.left_to_other_runs
    if summary.unattributed and not settings.remote:
        raise IntegrityError(f"Run {run_key}: {summary.unattributed} staged journeys have no credit")
    summary.unattributed += staged.skipped
    summary.notes = [
        *steps.empty_range_notes(conn, settings, summary.conversions),
        *steps.left_note(summary.left_to_other_runs),
    ]
    if settings.policies.on_bad_rows == "skip":
        summary.skipped_conversions, summary.skipped_sessions = skipped_rows(conn, settings.time_range)
    return summary


def fail_run(settings: Settings, run_key: str, exc: BaseException) -> None:
    """Record that the run stopped on ``exc`` (a task failed for good), as the in-process runner does: its
    record says ``failed`` with the error's line instead of staying ``running``. Its staged rows stay, so
    clearing the failed task runs it again."""
    with _engine(settings) as engine:
        record_failure(engine, run_key, exc)
    logger.info("Run %s recorded as failed: %s: %s", run_key, type(exc).__name__, exc)


def export_files(settings: Settings, run_key: str) -> dict[str, str]:
    """The export step, after the run's commit: the committed report in every format of
    ``settings.output.formats`` into ``settings.output.out`` as one set, the dashboard describing this run; each format's
    file URI. Run again (a retry after a kill), it first finishes the set the killed try left."""
    context = steps.dashboard_context(
        settings, RunSummary(run_key, settings.model.name, str(settings.time_range))
    )
    with _engine(settings) as engine, engine.connect() as conn:
        paths = steps.export_files(settings, conn, context)
    return {name: as_uri(path) for name, path in paths.items()}


def publish_extract(settings: Settings, files: dict[str, str]) -> dict[str, object]:
    """The publish step, after the export: the Hyper extract the export wrote for this run (its URI in
    ``files``, the export's answer) to Tableau, replacing the data source of that name; what it became.

    Why the export's URI and not the output folder: a run whose formats lack ``hyper`` would otherwise publish
    an extract an earlier run left there."""
    if "hyper" not in files:
        raise ConfigError(
            f"Publishing to Tableau needs the run's Hyper extract, but the run writes {', '.join(files) or 'no file'}: "
            "add hyper to its formats (ATTRIBUTION_FORMATS, the DAG's Variable attribution_formats)"
        )
    return asdict(steps.publish_to_tableau(settings, files["hyper"]))
