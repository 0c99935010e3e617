"""The pipeline: ordered tuples of steps with one signature, folded by ``run()``.

Why this shape: the CLI and the Airflow DAG call the same steps in the same order. The read steps compute
everything (session costs and the dashboard's chart library warm-up on background threads, beside
attribution); the write steps then share one short transaction, so a failure anywhere leaves the previous
tables untouched.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import polars as pl
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, func, select

from attribution import store
from attribution.dashboard import DashboardContext
from attribution.dashboard import warm_up as warm_up_dashboard
from attribution.errors import ConfigError
from attribution.export import export_all
from attribution.ihc_api.client import BatchOutcome, IHCApiAttributor
from attribution.ihc_api.config import ClientConfig
from attribution.journeys import build_journeys
from attribution.models import IHC, Attributor, Markov, Shapley, check_model_name, get_model, validate_credits
from attribution.models.ihc_store import load_parameters
from attribution.paths import build_conversion_paths, build_null_paths
from attribution.report import aggregate_session_costs, build_channel_report
from attribution.settings import Settings, config_error
from attribution.warehouse import connect, prepare

ProgressCallback = Callable[[str, int, int | None], None]
"""Called as ``(step, done, total)`` when a step starts (total ``None``: unknown) and as it advances."""

Step = Callable[["RunContext"], None]


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
    unattributed: int = 0
    requests: int = 0
    stopped_early: bool = False
    report_rows: int = 0
    report_paths: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class RunContext:
    """Everything the steps share: settings, the model, what was computed and the open transaction."""

    settings: Settings
    engine: Engine
    summary: RunSummary
    on_progress: ProgressCallback | None = None
    model: Attributor | None = None
    recorded: bool = False
    background: Executor | None = None
    costs: Future[pl.DataFrame] | None = None
    credits: list[pl.DataFrame] = field(default_factory=list)
    credited_dates: set[str] = field(default_factory=set)
    conn: Connection | None = None

    @property
    def remote(self) -> bool:
        """Whether credit comes from the IHC API (committed per request) rather than a local model."""
        return isinstance(self.model, IHCApiAttributor)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.summary.seconds[name] = self.summary.seconds.get(name, 0.0) + time.perf_counter() - began

    def progress(self, step: str, done: int = 0, total: int | None = None) -> None:
        if self.on_progress:
            self.on_progress(step, done, total)


def prepare_warehouse(ctx: RunContext) -> None:
    """Check the inputs, create missing output tables and journey indexes, and record the run's start."""
    with ctx.timed("prepare"):
        ctx.summary.notes.extend(prepare(ctx.engine, ctx.settings.create_indexes))
        ctx.model = build_model(ctx.settings, ctx.engine)
        store.start_run(ctx.engine, ctx.summary.run_id, ctx.settings.model, ctx.settings.time_range)
        ctx.recorded = True


def attribute_conversions(ctx: RunContext) -> None:
    """Stream the range's journeys and attribute each chunk; session costs sum alongside.

    Local models keep their checked credit for the write steps; the remote API's credit is committed
    batch by batch as requests complete, so a killed run resumes where it stopped.
    """
    ctx.costs = ctx.background.submit(aggregate_session_costs, ctx.engine)
    if "html" in ctx.settings.formats:
        ctx.background.submit(warm_up_dashboard)
    time_range, summary = ctx.settings.time_range, ctx.summary
    with ctx.engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(store.conversions_in(time_range).subquery()))
    if ctx.remote and ctx.settings.force:
        _forget_range_credit(ctx)
    chunks = build_journeys(
        ctx.engine, time_range, ctx.settings.journey_options, ctx.settings.chunk_conversions
    )
    while not summary.stopped_early:
        with ctx.timed("journeys"):
            chunk = next(chunks, None)
        if chunk is None:
            break
        with ctx.timed("attribute"):
            (_attribute_remotely if ctx.remote else _attribute_locally)(ctx, chunk.journeys)
        ctx.credited_dates.update(chunk.journeys["timestamp"].str.slice(0, 10).unique())
        summary.conversions += chunk.conversions
        summary.without_sessions += chunk.without_sessions
        summary.journeys += chunk.conversions - chunk.without_sessions
        summary.sessions += chunk.journeys.height
        ctx.progress("attribute_conversions", summary.conversions, total)


def _attribute_locally(ctx: RunContext, journeys: pl.DataFrame) -> None:
    credits = ctx.model.attribute(journeys)
    validate_credits(journeys, credits)
    ctx.credits.append(credits.select("conv_id", "session_id", "ihc"))
    ctx.summary.credit_total += float(credits["ihc"].sum())


def _attribute_remotely(ctx: RunContext, journeys: pl.DataFrame) -> None:
    summary, limit = ctx.summary, ctx.model.config.max_requests
    if limit is not None and summary.requests >= limit:
        summary.stopped_early = True
        summary.unattributed += journeys["conv_id"].n_unique()
        return
    client = ctx.model if limit is None else ctx.model.with_quota(limit - summary.requests)

    def commit(outcome: BatchOutcome) -> None:
        credited = journeys.join(outcome.credits.select("conv_id").unique(), on="conv_id", how="semi")
        validate_credits(credited, outcome.credits)
        store.write_batch(ctx.engine, summary.run_id, outcome.credits, outcome.failures)
        summary.credit_total += float(outcome.credits["ihc"].sum())

    report = client.attribute_batches(journeys, commit)
    summary.requests += report.requests
    summary.unattributed += report.journeys_failed + report.journeys_skipped + report.journeys_unsent
    summary.stopped_early = report.stopped_at_quota
    if report.journeys_skipped or report.journeys_failed or report.stopped_at_quota:
        summary.notes.append(report.summary())


def _forget_range_credit(ctx: RunContext) -> None:
    """``--force``: drop the range's remote credit first, so every journey is sent again."""
    with ctx.engine.begin() as conn:
        if ctx.settings.time_range.is_bounded:
            ctx.credited_dates.update(store.credited_dates(conn, ctx.settings.time_range))
        store.delete_credits(conn, ctx.settings.time_range)


def store_credits(ctx: RunContext) -> None:
    """Replace the range's stored credit with the new credit (remote credit is already stored)."""
    with ctx.timed("store"):
        store.lock_writes(ctx.conn)
        time_range = ctx.settings.time_range
        if time_range.is_bounded:  # an open range rebuilds the whole report: no need to know the dates
            ctx.credited_dates.update(store.credited_dates(ctx.conn, time_range))
        if not ctx.remote:
            store.delete_credits(ctx.conn, time_range)
            for credits in ctx.credits:
                store.insert_credits(ctx.conn, credits)


def rebuild_report(ctx: RunContext) -> None:
    """Recompute the report rows of every date the run touched (all dates for an open range)."""
    time_range = ctx.settings.time_range
    dates = ctx.credited_dates | set(time_range.dates()) if time_range.is_bounded else None
    with ctx.timed("costs (wait)"):
        costs = ctx.costs.result()
    with ctx.timed("report"):
        ctx.summary.report_rows = build_channel_report(ctx.conn, costs, dates)


def export_report(ctx: RunContext) -> None:
    """Write the report files (CSV, Parquet, HTML dashboard, ... as configured) into the output directory
    or object store. Inside the write transaction: a failed write or upload rolls the report back too."""
    with ctx.timed("export"):
        settings = ctx.settings
        paths = export_all(
            ctx.conn,
            settings.out,
            settings.formats,
            dashboard_context(settings, ctx.summary),
            settings.storage_options.get_secret_value(),
        )
        ctx.summary.report_paths = {name: str(path) for name, path in paths.items()}


def dashboard_context(settings: Settings, summary: RunSummary) -> DashboardContext:
    """What the dashboard says about the run; the conversion type only for the IHC models that use one."""
    uses_conv_type = settings.model in (IHC.name, IHCApiAttributor.name)
    return DashboardContext.for_run(summary, conv_type=settings.conv_type_id if uses_conv_type else None)


READ_STEPS: tuple[Step, ...] = (prepare_warehouse, attribute_conversions)
"""Steps that only read (and create missing tables and indexes): nothing is replaced yet."""

WRITE_STEPS: tuple[Step, ...] = (store_credits, rebuild_report, export_report)
"""Steps that replace stored rows; they share one transaction, committed after the export."""


def build_model(settings: Settings, engine: Engine | None = None) -> Attributor:
    """The attributor ``settings.model`` names, ready to run on ``engine`` (default: ``settings.db``).

    ``ihc-api`` gets a client configured from the settings; ``ihc`` the parameters stored for the
    conversion type; ``markov`` and ``shapley`` learn once from the run's converting and null paths.
    """
    if settings.model == IHCApiAttributor.name:
        return _api_client(settings)
    check_model_name(settings.model)
    owned = engine is None
    engine = engine or connect(settings.db)
    try:
        return get_model(settings.model, **settings.model_options(), **_learned_options(settings, engine))
    finally:
        if owned:
            engine.dispose()


def _learned_options(settings: Settings, engine: Engine) -> dict[str, object]:
    if settings.model == IHC.name:
        return {"parameters": load_parameters(engine, settings.conv_type_id)}
    if settings.model in (Markov.name, Shapley.name):
        paths = (engine, settings.time_range, settings.journey_options)
        return {"null_paths": build_null_paths(*paths), "conversion_paths": build_conversion_paths(*paths)}
    return {}


def _api_client(settings: Settings) -> IHCApiAttributor:
    if settings.ihc_api_key is None:
        raise ConfigError("The ihc-api model needs an API key: set IHC_API_KEY in the environment")
    try:
        config = ClientConfig(api_key=settings.ihc_api_key, **settings.ihc_client_options())
    except ValidationError as exc:
        raise config_error(exc, "IHC API setting") from None
    return IHCApiAttributor(config)


def run(settings: Settings, on_progress: ProgressCallback | None = None) -> RunSummary:
    """Run the whole pipeline once for ``settings`` and return its summary."""
    began = time.perf_counter()
    check_model_name(settings.model)
    engine = connect(settings.db, staged_copy=settings.staged_copy)
    summary = RunSummary(run_id=uuid.uuid4().hex, model=settings.model, time_range=str(settings.time_range))
    ctx = RunContext(settings, engine, summary, on_progress=on_progress)
    try:
        with ThreadPoolExecutor(max_workers=2) as ctx.background:
            for step in READ_STEPS:
                ctx.progress(step.__name__)
                step(ctx)
            with engine.begin() as ctx.conn:
                for step in WRITE_STEPS:
                    ctx.progress(step.__name__)
                    step(ctx)
    except Exception as exc:
        if ctx.recorded:
            store.finish_run(engine, summary.run_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})
        engine.dispose()
        raise
    summary.seconds["total"] = time.perf_counter() - began
    status = "succeeded" if not summary.unattributed else "incomplete"
    store.finish_run(engine, summary.run_id, status, vars(summary))
    engine.dispose()
    return summary
