"""The steps of a run, defined once: prepare → window → journeys → attribute → store → report → export (the
restatement window's plan: ``pipeline.window``), and publishing the export's Hyper extract to Tableau after it.

Why one definition: the CLI runs them in one process (``in_process``) and a scheduler runs them as tasks
with state in the warehouse between them (``staged``); both call these functions, so what a run replaces,
which report dates it touches, its lock and its record cannot differ between the two. Each step takes
what the one before returned; none fills a shared context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import Connection, Engine, Select

from attribution.errors import ConfigError
from attribution.journeys import JourneyChunk, build_journeys
from attribution.models import Attributor, check_model_name, validate_credits
from attribution.pipeline.model_setup import build_model, learns_from_warehouse, reads_null_paths
from attribution.pipeline.settings import Settings
from attribution.pipeline.window import Review, Window
from attribution.reporting.channel_report import (
    ReportScope,
    build_channel_report,
    create_report_view,
    date_totals,
    label_literals,
    reported_label,
)
from attribution.reporting.dashboard import DashboardContext
from attribution.reporting.files import FILE_NAMES, export_all, renderer
from attribution.reporting.publish import Pending, Publish, check_destination, publishing
from attribution.reporting.report_inputs import forget_inputs
from attribution.reporting.tableau import Published, extract_location, publish_extract
from attribution.store import claims
from attribution.store.credit import (
    conversion_dates,
    has_credit,
    insert_credits,
    loading_credit,
    replace_credit,
    touched_dates,
)
from attribution.store.runs import RunSummary, committed
from attribution.vocabulary import PHASES, STORED_CREDIT_SCHEMA
from attribution.warehouse.bad_rows import Skipped, enforce
from attribution.warehouse.freshness import enforce_fresh
from attribution.warehouse.locks import write_transaction
from attribution.warehouse.redshift_copy import RedshiftCopy
from attribution.warehouse.schema import create_output_tables, create_tables, index_inputs, validate_inputs
from attribution.warehouse.tables import WORK_TABLES

if TYPE_CHECKING:  # the IHC API's client loads only for a run that sends (model_setup)
    from attribution.ihc_api.client import IHCApiAttributor
    from attribution.ihc_api.outcomes import BatchOutcome, ClientReport

CreditWriter = Callable[[Connection], None]
"""Inserts a run's new credit rows inside the store step's transaction."""
Counter = Callable[[int, int], None]
"""Told ``(done, total)`` as a step's parts are done."""


@dataclass(frozen=True)
class Prepared:
    """What ``prepare`` hands on: the run's attributor, notes for the user (a missing index, rows left
    out) and what the run leaves out of its journeys."""

    model: Attributor
    notes: list[str]
    skipped: Skipped = field(default_factory=Skipped)


def check(settings: Settings) -> None:
    """Refuse, before the warehouse is opened, an unknown model or an ``out`` the report files cannot go to
    (one line naming the path and the cause)."""
    check_model_name(settings.model.name)
    if settings.model.report_model is not None:
        check_model_name(settings.model.report_model)
    check_destination(settings.output.out, [FILE_NAMES[name] for name in settings.output.formats])


def prepare(
    settings: Settings,
    engine: Engine,
    *,
    staging: bool = False,
    before_writes: Callable[[], object] | None = None,
    on_phase: Callable[[str], None] = lambda _phase: None,
    conversion_paths: bool = True,
) -> Prepared:
    """Check the input tables, add the indexes the run reads through (where allowed), check the input rows
    the run reads (``input_checks``), create missing output (and, for a scheduler, staging) tables, then
    build the model: Markov and Shapley learn from the rows just checked, through the indexes just built.
    A missing table, a bad row the policy refuses, an unknown model or a missing API key fails here, before
    any output table is written. ``before_writes``, if given, is called before the first write (a reader
    beside prepare finishing). ``on_phase`` is told each phase by name as it starts. ``conversion_paths``:
    see ``build_model`` (false where the caller trains a path model on the journeys it streams).

    Why this order: no query runs before the index it reads through exists (on a fresh file the paths'
    join by user, without it, grew with users times sessions). An open range's checks scan every row and need
    no index: they run first, beside the session-cost scan, and the build waits for both."""
    validate_inputs(engine)
    bounded = settings.time_range.is_bounded

    def indexing() -> list[str]:
        on_phase("index builds")
        return index_inputs(engine, settings.warehouse.create_indexes, bounded=bounded)

    notes = indexing() if bounded else []  # a bounded run's checks read through the range's indexes
    stale, skipped = _check_rows(settings, engine, on_phase)
    notes = [*notes, *stale]
    if before_writes:
        before_writes()
    if not bounded:
        notes = [*indexing(), *notes]
    on_phase("output tables")
    _create_outputs(engine, staging=staging)
    check_report_model(settings, engine)
    on_phase("learning the model" if learns_from_warehouse(settings.model.name) else "model")
    model = build_model(settings, engine, conversion_paths=conversion_paths)
    return Prepared(model, [*notes, *skipped.notes], skipped)


def _check_rows(
    settings: Settings, engine: Engine, on_phase: Callable[[str], None]
) -> tuple[list[str], Skipped]:
    """The input rows the run reads, checked against the bad-rows and the staleness policies: the notes on
    stale inputs, and what the run leaves out."""
    on_phase("input checks")
    skipped = enforce(
        engine,
        settings.time_range,
        settings.policies.on_bad_rows,
        null_paths=reads_null_paths(settings.model.name),
    )
    on_phase("freshness")
    return enforce_fresh(engine, settings.time_range, settings.policies.on_stale), skipped


def _create_outputs(engine: Engine, *, staging: bool) -> None:
    """The output tables and the report view that are missing, and for a scheduler the work tables."""
    create_output_tables(engine)
    create_report_view(engine)
    if staging:
        create_tables(engine, WORK_TABLES)


def check_report_model(settings: Settings, engine: Engine) -> None:
    """Refuse a model of record other than the run's model that has no stored credit: its report would be
    empty, or cost without orders."""
    if settings.report_label == settings.credit_label:
        return
    with engine.connect() as conn:
        if not has_credit(conn, settings.report_label):
            raise _no_credit(settings)


def switch_report(settings: Settings, engine: Engine) -> None:
    """Make the stored report count the stored credit of ``settings.model.report_model`` (``attribution report
    --report-model``): rows counting another model are rebuilt, their cost kept. Refused, changing nothing,
    when that model has no stored credit."""
    check_model_name(settings.report_label.model)
    with write_transaction(engine) as conn:
        if not has_credit(conn, settings.report_label):
            raise _no_credit(settings)
        build_channel_report(
            conn, ReportScope(frozenset()), label=settings.report_label, redshift_copy=settings.redshift_copy
        )


def _no_credit(settings: Settings) -> ConfigError:
    label = settings.report_label
    return ConfigError(
        f"The report model {str(label)!r} has no stored credit in {settings.warehouse.safe_db}: run it first "
        f"(--model {label.model}), or report another model"
    )


def journeys(settings: Settings, engine: Engine) -> Iterator[JourneyChunk]:
    """The range's journeys, streamed in chunks of whole journeys."""
    return build_journeys(
        engine, settings.time_range, settings.journey_options, settings.policies.chunk_conversions
    )


def empty_range_notes(conn: Connection, settings: Settings, conversions: int) -> list[str]:
    """A note when the range holds no conversion while the warehouse has some: a run over the wrong days
    succeeds with nothing to do, so its summary and log say which days hold data."""
    dates = None if conversions else conversion_dates(conn)
    if dates is None:
        return []
    return [
        f"No conversions in {settings.time_range}: the warehouse's conversions are dated {dates[0]} to {dates[1]}"
    ]


def session_dates(journeys: pl.DataFrame) -> set[str]:
    """The dates of the journeys' sessions: their report rows get the new credit."""
    return set(journeys["timestamp"].str.slice(0, 10).unique())


def attribute(model: Attributor, journeys: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """A local model's credit for the journeys, checked (one row per session, each journey summing to 1)
    and labelled."""
    credits = model.attribute(journeys)
    validate_credits(journeys, credits)
    return labelled(credits, journeys, settings)


def attribute_remotely(
    client: IHCApiAttributor,
    journeys: pl.DataFrame,
    settings: Settings,
    commit: Callable[[pl.DataFrame, pl.DataFrame], None],
) -> ClientReport:
    """Send the journeys to the IHC API; each answered request's credit is checked, labelled and handed to
    ``commit`` with its failures at once, so a killed run loses nothing it was answered."""

    def checked(outcome: BatchOutcome) -> None:
        validate_credits(journeys.join(outcome.credits, on="conv_id", how="semi"), outcome.credits)
        commit(labelled(outcome.credits, journeys, settings), outcome.failures)

    return client.attribute_batches(journeys, checked)


def claimed(
    engine: Engine, run_id: str, journeys: pl.DataFrame, settings: Settings
) -> tuple[pl.DataFrame, list[str]]:
    """The journeys the run may send to the IHC API, claimed for it (``store.claims``), and the conversions it
    leaves to another run at the same time, which sends them. Both runners call this before they send: two
    runs at once, CLI or scheduled, never send a journey twice."""
    ids = journeys["conv_id"].unique(maintain_order=True).to_list()
    claim = claims.claim(
        engine,
        run_id,
        settings.credit_label,
        ids,
        forced=settings.policies.force,
        redshift_copy=settings.redshift_copy,
    )
    return journeys.filter(pl.col("conv_id").is_in(claim.mine)), claim.left


def left_note(left: int) -> list[str]:
    """The summary's note on journeys left to other runs (none when there are none)."""
    if not left:
        return []
    return [
        f"{left} journeys were left to another IHC API run at the same time, which sends them "
        "(attribution_ihc_claims)"
    ]


def labelled(credits: pl.DataFrame, journeys: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """Credit as it is stored (``STORED_CREDIT_SCHEMA``): with the model and conversion type that made it, the IHC
    phases where the model gives them (null otherwise), and each session's date and channel from its
    journey."""
    details = {
        **label_literals(settings.credit_label),
        **{
            phase: pl.col(phase) if phase in credits.columns else pl.lit(None, pl.Float64) for phase in PHASES
        },
    }
    sessions = journeys.select(
        "conv_id", "session_id", "channel_name", event_date=pl.col("timestamp").str.slice(0, 10)
    )
    return (
        credits.join(sessions, on=["conv_id", "session_id"], how="left")
        .with_columns(**details)
        .select(list(STORED_CREDIT_SCHEMA))
    )


def store(
    conn: Connection,
    settings: Settings,
    new_dates: Iterable[str],
    incoming: Select | list[str],
    write: CreditWriter,
) -> set[str] | None:
    """Replace the stored credit of the run's model with the run's, inside the caller's write transaction
    (``write_transaction``); the report dates of that model this touches (``None``: all).

    A local model replaces the range's whole credit. The remote API replaces credit conversion by
    conversion (``incoming``), as answers arrive: what it did not answer keeps what it had. Either keeps
    other models' credit.
    """
    label, time_range = settings.credit_label, settings.time_range
    dates = touched_dates(conn, time_range, label, new_dates)  # before the old credit goes
    emptied = replace_credit(conn, time_range, label, whole_range=not settings.remote, incoming=incoming)
    with loading_credit(conn, emptied):
        write(conn)
    return dates


def frames_writer(
    credits: list[pl.DataFrame],
    on_frame: Counter = lambda _done, _total: None,
    *,
    redshift_copy: RedshiftCopy | None = None,
) -> CreditWriter:
    """A ``CreditWriter`` for credit held in memory; ``on_frame`` counts the frames written. ``redshift_copy``:
    the run's (``Settings.redshift_copy``, see ``bulk_insert``).

    Why as one frame: ``bulk_insert`` loads in key order, and the chunks' conversions are in time order, so
    each chunk's rows would spread over the whole key: a million orders' credit in 50 chunks took 12.2 s of
    CPU and 56 s of wall time on SQLite, against 9.2 s and 20 s in one key order."""

    def write(conn: Connection) -> None:
        if credits:
            insert_credits(conn, pl.concat(credits, rechunk=False), redshift_copy=redshift_copy)
        on_frame(len(credits), len(credits))

    return write


def report(
    conn: Connection,
    settings: Settings,
    dates: set[str] | None,
    costs: pl.DataFrame | None,
    window: Window | None = None,
    stored: pl.DataFrame | None = None,
) -> tuple[int, list[str]]:
    """Rebuild the report of the report model (``Settings.report_label``): the rows of the touched ``dates``
    when it is the run's model (``None``: every row, from ``costs``, the whole session-cost scan) and those
    of the ``window``'s dates whose sessions or spend changed, none otherwise (its credit did not change);
    the number of report rows, and notes naming what changed on the window's dates (none when the report
    switches model: every date changes then, and none was restated).

    The inputs of the dates it rebuilt are recorded with the rows (``Window.record``); a run without a window
    drops what was recorded for its dates, which it rebuilt without reading their inputs' fingerprints.
    ``stored``: the run's whole credit as the report reads it (``reporting.channel_report.credit_rows``),
    where it is all of its model's stored credit (a local model's open range), so the report need not read
    it back."""
    label = settings.report_label
    if label != settings.credit_label:
        rows = build_channel_report(
            conn, ReportScope(frozenset()), costs, label=label, redshift_copy=settings.redshift_copy
        )
        return rows, []
    review = window.review(conn) if window else Review(frozenset(), [], frozenset())
    span = settings.time_range.date_span()
    scope = ReportScope(None if dates is None else frozenset(dates) | review.recosted, span, review.recosted)
    watched = list(window.dates) if window and reported_label(conn) == label else []  # same model
    before = date_totals(conn, watched)
    rows = build_channel_report(
        conn, scope, costs, label=label, stored=stored, redshift_copy=settings.redshift_copy
    )
    if window:
        window.record(conn, settings.time_range, review.recosted)
    else:
        forget_inputs(conn, span)
    notes = [*review.notes, *restatement_notes(before, date_totals(conn, watched), review.unrecorded)]
    return rows, notes if watched else []


RESTATED_CENTS = 0.005
"""A change of a date's spend, orders or revenue worth a note: half a cent (or of an order) or more."""


def restatement_notes(
    before: dict[tuple[str, str], tuple[float, float, float]],
    after: dict[tuple[str, str], tuple[float, float, float]],
    unrecorded: frozenset[str],
) -> list[str]:
    """What the window's report rows show changed, date by date, for the dates reported before (one
    reported for the first time was not restated): credit redone (sessions that landed late, or journeys
    restated) with the channels whose credit moved, and, for the ``unrecorded`` dates (whose inputs were not
    recorded to compare), spend restated at the source."""
    notes = []
    for day in sorted({day for day, _channel in before}):
        rows = [
            (channel, before.get((day, channel), (0.0, 0.0, 0.0)), after.get((day, channel), (0.0, 0.0, 0.0)))
            for channel in sorted({channel for d, channel in before.keys() | after.keys() if d == day})
        ]
        cost, new_cost = sum(old[0] for _, old, _ in rows), sum(new[0] for _, _, new in rows)
        if day in unrecorded and abs(new_cost - cost) >= RESTATED_CENTS:
            notes.append(f"spend restated on {day}: {new_cost - cost:+,.2f} ({cost:,.2f} -> {new_cost:,.2f})")
        moved = [
            channel
            for channel, old, new in rows
            if max(abs(new[1] - old[1]), abs(new[2] - old[2])) >= RESTATED_CENTS
        ]
        if moved:
            notes.append(
                f"credit redone on {day}: {', '.join(moved)} (sessions landed late, or journeys restated)"
            )
    return notes


def whole_report(settings: Settings) -> bool:
    """Whether the run rebuilds every report row (an open range), and so needs every session's cost."""
    return not settings.time_range.is_bounded


def destination(settings: Settings, engine: Engine) -> AbstractContextManager[Publish]:
    """The run's destination ``settings.output.out``, locked, with what a killed run left there finished first."""
    options = settings.output.storage_options.get_secret_value()
    return publishing(settings.output.out, partial(committed, engine), options)


def export(
    conn: Connection,
    settings: Settings,
    summary: RunSummary,
    publish: Publish,
    on_file: Counter = lambda _done, _total: None,
) -> Pending:
    """Make the report files of ``settings.output.formats`` from the tables ``conn`` sees, the dashboard describing
    the run, awaiting its commit: the caller releases them after it. ``on_file`` counts the files made."""
    context = dashboard_context(settings, summary)
    return publish(renderer(conn, settings.output.formats, context, on_file), summary.run_id)


def publish_to_tableau(settings: Settings, location: str | None = None) -> Published:
    """Publish the Hyper extract at ``location`` (default: the one in ``settings.output.out``) to the Tableau project
    of ``settings``, replacing its data source of that name. The settings are checked before the extract is
    read."""
    target = settings.tableau_target
    extract = location or extract_location(settings.output.out)
    return publish_extract(extract, target, settings.output.storage_options.get_secret_value())


def export_files(settings: Settings, conn: Connection, context: DashboardContext) -> dict[str, str | Path]:
    """The committed report ``conn`` sees, in every format of the settings, into their ``out`` as one set
    (``reporting.files.export_all``: a set a killed export left is finished first), the dashboard saying
    ``context``; each format's path or URL."""
    options = settings.output.storage_options.get_secret_value()
    return export_all(conn, settings.output.out, settings.output.formats, context, options)


def dashboard_context(settings: Settings, summary: RunSummary) -> DashboardContext:
    """What the dashboard says about the run, with the model the report counts; the conversion type only for
    the IHC models that use one."""
    label = settings.report_label
    return replace(DashboardContext.for_run(summary, conv_type=label.conv_type_id or None), model=label.model)


def report_context(conn: Connection, compare: bool = False) -> DashboardContext:
    """What the dashboard of ``attribution report`` says: the last succeeded run, with the model the stored
    report counts, and with ``compare`` every stored model's credit per channel and date (a scan of the credit
    table: asked for when the dashboard is written)."""
    from attribution.reporting.dashboard import latest_run_context
    from attribution.reporting.model_comparison import stored_credit_by_date

    context, label = latest_run_context(conn), reported_label(conn)
    if compare:
        context = replace(context, by_model=stored_credit_by_date(conn))
    return (
        context
        if label is None
        else replace(context, model=label.model, conv_type=label.conv_type_id or None)
    )
