"""The ``attribution`` command: a thin Typer layer over the pipeline, with one error handler.

Why thin: every command only turns flags into settings and calls the package; errors a user can cause
end as one red line and a non-zero exit code (a traceback only with ``--debug``).
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from attribution.errors import AttributionError, ConfigError, Interrupted
from attribution.interrupts import exit_code, stopping_on_signals
from attribution.models.names import MODEL_NAMES
from attribution.pipeline.defaults import DEFAULT_DB, DEFAULT_MODEL, DEFAULT_OUT
from attribution.redaction import one_line
from attribution.warehouse import generate_options as gen

if TYPE_CHECKING:  # the commands import what they need when they run: `--help` stays fast
    from sqlalchemy import Connection

    from attribution.models import IHCParameters
    from attribution.pipeline.settings import Settings
    from attribution.store.runs import RunSummary
    from attribution.timerange import TimeRange
    from attribution.warehouse.freshness import Stale

app = typer.Typer(
    help="Marketing attribution: customer journeys -> per-session credit -> channel report (CSV).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True, soft_wrap=True)
EXIT_ERROR = 1
EXIT_UNATTRIBUTED = 3

Db = Annotated[
    str | None,
    typer.Option(
        "--db", help=f"SQLite file path or SQLAlchemy URL (env ATTRIBUTION_DB; default {DEFAULT_DB})."
    ),
]
Out = Annotated[
    str | None,
    typer.Option(
        "--out",
        help=f"Directory or URL (s3://bucket/prefix) for the report files (default {DEFAULT_OUT}/); "
        "object store credentials from the environment (AWS_*), never a flag.",
    ),
]
SourceMappingFile = Annotated[
    str | None,
    typer.Option(
        "--source-mapping",
        help="TOML file naming the inputs' schema, tables, columns and time zones (env "
        "ATTRIBUTION_SOURCE_MAPPING; default: the challenge's names; docs/data.md).",
    ),
]
CreateIndexes = Annotated[
    bool | None,
    typer.Option(
        help="Add the journey indexes to the input tables if missing (default: on SQLite only; "
        "env ATTRIBUTION_CREATE_INDEXES)."
    ),
]
Start = Annotated[
    str | None,
    typer.Option(
        help="First conversion time included: ISO date or timestamp (UTC, or the report time zone)."
    ),
]
End = Annotated[
    str | None,
    typer.Option(
        help="First conversion time excluded: ISO date or timestamp (UTC, or the report time zone)."
    ),
]
Model = Annotated[
    str | None,
    typer.Option(help=f"Attribution model: {', '.join(MODEL_NAMES)} (default {DEFAULT_MODEL})."),
]
ReportModel = Annotated[
    str | None,
    typer.Option(
        help="The model the report and its files count, the model of record (env ATTRIBUTION_REPORT_MODEL; "
        "default: the run's model)."
    ),
]
Lookback = Annotated[
    int | None, typer.Option(help="Only sessions at most this many days before the conversion.")
]
Formats = Annotated[
    list[str] | None,
    typer.Option("--format", help="Report file to write (repeatable): csv, parquet, html, hyper."),
]
DropImpressions = Annotated[bool | None, typer.Option(help="Leave impression-only sessions out of journeys.")]
OnBadRows = Annotated[
    str | None,
    typer.Option(
        help="Input rows an input check finds bad: error (stop before writing, naming them; the default) or "
        "skip (leave them out of journeys and count them; env ATTRIBUTION_ON_BAD_ROWS). "
        "`attribution check` lists them."
    ),
]

OnStale = Annotated[
    str | None,
    typer.Option(
        help="A date whose inputs look not yet landed (paid sessions without cost rows, no session in the "
        "range's last hours): error (stop before writing) or warn (the default; env ATTRIBUTION_ON_STALE)."
    ),
]
RestateDays = Annotated[
    int | None,
    typer.Option(
        help="Also redo those of the N days before --start whose inputs changed: spend restated at the "
        "source, sessions or conversions that landed late (env ATTRIBUTION_RESTATE_DAYS; 3 suits a daily "
        "schedule)."
    ),
]


def _option(kind: object, help_text: str, panel: str | None = None, *flag: str) -> object:
    """An optional flag of ``kind`` (``None`` when not given: the settings' precedence decides)."""
    return Annotated[kind | None, typer.Option(*flag, help=help_text, rich_help_panel=panel)]


_MODEL = "Model options"
HalfLife = _option(float, "time-decay: half-life in hours (default 168).", _MODEL)
MarkovOrder = _option(int, "markov: order 1 to 3 (default 1).", _MODEL)
DirectChannels = _option(
    list[str], "last-non-direct: a channel that counts as direct (repeatable).", _MODEL, "--direct-channel"
)
PositionWeights = _option(str, "position-based: first,middle,last weights (default 0.4,0.2,0.4).", _MODEL)
_API = "IHC API (--model ihc-api; the key comes from IHC_API_KEY, never a flag)"
IhcUrl = _option(str, "Base URL of the IHC API (env IHC_API_URL).", _API)
ConvType = _option(str, "Trained conversion type id (env IHC_CONV_TYPE_ID).", _API)
LocalIhc = Annotated[
    bool,
    typer.Option(help="Start the project's own IHC server for this run and use it.", rich_help_panel=_API),
]
Force = _option(bool, "Re-send conversions that already hold credit (default: resume).", _API)
MaxJourneys = _option(int, "Journeys per request (default 100).", _API)
MaxSessions = _option(int, "Sessions per request (default 3000; 200 for test accounts).", _API)
Concurrency = _option(int, "Requests in flight (default 4).", _API)
RateLimit = _option(float, "Requests per second (default: no limit).", _API)
MaxRequests = _option(int, "Stop cleanly after this many requests (the run's quota).", _API)
MaxRetries = _option(int, "Retries per request on timeouts, 429 and 5xx (default 6).", _API)
MaxConnectionFailures = _option(
    int,
    "Stop when this many connections in a row fail (refused, reset, connect timeout): the service is down; "
    "answered credit is kept (default 8; env ATTRIBUTION_MAX_CONNECTION_FAILURES).",
    _API,
)
LongJourneys = _option(str, "Journeys longer than --max-sessions: truncate (keep the latest) or skip.", _API)


@app.callback()
def _options(debug: Annotated[bool, typer.Option(help="Show tracebacks on errors.")] = False) -> None:
    """Options of every command (``--debug`` is read by ``main``'s error handler, before any command)."""


def shown(value: object) -> str:
    """``value`` as the terminal may show it, the one way data (a channel name, an id, a path, an error)
    reaches the console: one line without control characters, its Rich markup (``[/]``, ``[link=...]``)
    printed as text."""
    return escape(one_line(value))


def _load_settings(**explicit: object) -> Settings:
    """``load_settings``, imported when a command runs (Pydantic and the pipeline cost half a second)."""
    from attribution.pipeline.settings import load_settings

    return load_settings(**explicit)


def _progress() -> Progress:
    """A step's name, and where its parts can be counted, a bar, ``done/total`` and the time left."""
    counted = "{task.completed:,.0f}/{task.total:,.0f}"
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        _WhenCounted(TextColumn(counted)),
        _WhenCounted(TimeRemainingColumn()),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


class _WhenCounted(ProgressColumn):
    """A column shown only while the task's total is known (no ``0/?`` for a step without parts)."""

    def __init__(self, column: ProgressColumn) -> None:
        super().__init__()
        self.column = column

    def render(self, task: Task) -> RenderableType:
        return self.column.render(task) if task.total is not None else ""


def _run_with_progress(settings: Settings) -> RunSummary:
    from attribution.pipeline.in_process import run

    with _progress() as progress:
        task = progress.add_task("starting", total=None)

        def show(step: str, done: int, total: int | None) -> None:
            progress.update(task, description=step.replace("_", " "), completed=done, total=total)

        summary = run(settings, show)
    _print_summary(summary)
    return summary


@contextmanager
def _local_ihc_server() -> Iterator[tuple[str, str]]:
    """The project's IHC server on a free port with a one-off key, for one run.

    Its log goes to a new private directory, not a fixed path in the shared temporary folder (where another
    user could plant a link to a file of ours); it is kept and named when the run fails, removed otherwise.
    """
    from attribution.ihc_api.local import LocalServer

    key = secrets.token_urlsafe(24)
    folder = Path(tempfile.mkdtemp(prefix="attribution-local-ihc-"))
    log = folder / "server.log"
    try:
        with LocalServer.launch(log, api_key=key) as server:
            yield server.url, key
    except BaseException:
        errors.print(f"The local IHC server's log: {shown(log)}", highlight=False)
        raise
    shutil.rmtree(folder, ignore_errors=True)


def _print_summary(summary: RunSummary) -> None:
    title = f"Run {summary.run_id[:12]} · model {summary.model} · range {summary.time_range}"
    table = Table(title=shown(title))
    table.add_column("figure")
    table.add_column("value", justify="right")
    for label, value in (
        ("conversions in range", summary.conversions),
        ("journeys to attribute", summary.journeys),
        ("journeys attributed", summary.attributed),
        ("journey sessions", summary.sessions),
        ("conversions without sessions", summary.without_sessions),
        ("conversions skipped (bad rows)", summary.skipped_conversions),
        ("sessions skipped (bad rows)", summary.skipped_sessions),
        ("credit total", f"{summary.credit_total:.4f}"),
        ("report rows", summary.report_rows),
    ):
        table.add_row(label, shown(value))
    if summary.requests:
        table.add_row("API requests", str(summary.requests))
    table.add_row("conversions left unattributed", str(summary.unattributed))
    for step, seconds in summary.seconds.items():
        table.add_row(f"time: {step}", f"{seconds:.2f} s")
    console.print(table)
    for note in summary.notes:
        console.print(f"[yellow]{shown(note)}[/yellow]")


@app.command("run")
def run_command(
    db: Db = None,
    source_mapping: SourceMappingFile = None,
    create_indexes: CreateIndexes = None,
    start: Start = None,
    end: End = None,
    model: Model = None,
    report_model: ReportModel = None,
    out: Out = None,
    formats: Formats = None,
    lookback_days: Lookback = None,
    drop_impressions: DropImpressions = None,
    on_bad_rows: OnBadRows = None,
    on_stale: OnStale = None,
    restate_days: RestateDays = None,
    half_life_hours: HalfLife = None,
    markov_order: MarkovOrder = None,
    direct_channels: DirectChannels = None,
    position_weights: PositionWeights = None,
    ihc_url: IhcUrl = None,
    conv_type_id: ConvType = None,
    local_ihc: LocalIhc = False,
    force: Force = None,
    max_journeys: MaxJourneys = None,
    max_sessions: MaxSessions = None,
    long_journey_policy: LongJourneys = None,
    concurrency: Concurrency = None,
    rate_limit: RateLimit = None,
    max_requests: MaxRequests = None,
    max_retries: MaxRetries = None,
    max_connection_failures: MaxConnectionFailures = None,
) -> None:
    """Build journeys, attribute them, store the credit, rebuild the channel report and export it.

    Exits with 3 when conversions are left unattributed (IHC API failures or the request quota); the same
    command run again sends only those.
    """
    source = {
        "db": db,
        "source_mapping": source_mapping,
        "create_indexes": create_indexes,
        "out": out,
        "formats": tuple(formats) if formats else None,
    }
    scope = {
        "start": start,
        "end": end,
        "lookback_days": lookback_days,
        "drop_impressions": drop_impressions,
        "on_bad_rows": on_bad_rows,
        "on_stale": on_stale,
        "restate_days": restate_days,
    }
    model_flags = {
        "model": model,
        "report_model": report_model,
        "half_life_hours": half_life_hours,
        "markov_order": markov_order,
        "direct_channels": tuple(direct_channels) if direct_channels else None,
        "position_weights": _numbers(position_weights, "position weights"),
    }
    api_flags = {"ihc_url": ihc_url, "conv_type_id": conv_type_id, "force": force}
    api_limits = {
        "max_journeys": max_journeys,
        "max_sessions": max_sessions,
        "long_journey_policy": long_journey_policy,
        "concurrency": concurrency,
        "rate_limit": rate_limit,
    }
    quota = {
        "max_requests": max_requests,
        "max_retries": max_retries,
        "max_connection_failures": max_connection_failures,
    }
    options = {**source, **scope, **model_flags, **api_flags, **api_limits, **quota}
    if local_ihc:
        with _local_ihc_server() as (url, key):
            summary = _run_with_progress(_load_settings(**{**options, "ihc_url": url, "ihc_api_key": key}))
    else:
        summary = _run_with_progress(_load_settings(**options))
    _print_paths(summary.report_paths)
    if summary.unattributed:
        errors.print(
            f"[yellow]{summary.unattributed} conversions left unattributed; rerun to resume.[/yellow]"
        )
        raise typer.Exit(EXIT_UNATTRIBUTED)


@app.command(
    "serve-ihc",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def serve_ihc_command(ctx: typer.Context) -> None:
    """Run the project's IHC-compatible server (--host, --port, fault flags: see `serve-ihc --help`).

    Accepted keys come from the environment variable IHC_API_KEY (comma-separated), never from a flag.
    """
    from attribution.ihc_api.command import main as serve_ihc_main

    raise typer.Exit(serve_ihc_main(ctx.args, _trained_types))


def _trained_types(db: str) -> dict[str, IHCParameters]:
    """The conversion types trained in ``db``, for ``serve-ihc --db``."""
    from attribution.store.parameters import load_all_parameters
    from attribution.warehouse.engine import open_engine

    with open_engine(db) as engine:
        return load_all_parameters(engine)


@app.command("generate")
def generate_command(
    db: Annotated[Path, typer.Option("--db", help="Path of the new SQLite file (must not exist).")] = Path(
        DEFAULT_DB
    ),
    sessions: Annotated[int, typer.Option(help="Number of sessions.")] = gen.DEFAULT_SESSIONS,
    conversions: Annotated[int, typer.Option(help="Number of conversions.")] = gen.DEFAULT_CONVERSIONS,
    users: Annotated[
        int | None, typer.Option(help="Number of users (default: derived from sessions).")
    ] = None,
    days: Annotated[int, typer.Option(help="Number of days of traffic.")] = gen.DEFAULT_DAYS,
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same file.")
    ] = gen.DEFAULT_SEED,
    layout: Annotated[
        gen.Layout,
        typer.Option(
            help="Row order: arrival (by user and time, as real exports; ids in random order) or sorted "
            "(by id: every key lookup sequential, flattering; for comparisons)."
        ),
    ] = gen.DEFAULT_LAYOUT,
) -> None:
    """Generate a challenge-like SQLite database for demos, tests and benchmarks."""
    from attribution.warehouse.generate import generate_database

    with _progress() as progress:
        task = progress.add_task("generating sessions", total=sessions)
        result = generate_database(
            db,
            sessions=sessions,
            conversions=conversions,
            users=users,
            days=days,
            seed=seed,
            layout=layout,
            on_progress=lambda done: progress.update(task, completed=done),
        )
    console.print(
        f"Wrote {shown(result.path)}: {result.sessions:,} sessions, {result.users:,} users, "
        f"{result.conversions:,} conversions over {result.days} days (seed {result.seed}, {result.layout} layout) "
        f"in {result.seconds:.1f} s"
    )


def _numbers(text: str | None, what: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(
            f"Bad {what} {text!r}: expected numbers separated by commas, e.g. 0.4,0.2,0.4"
        ) from None


@app.command("train-ihc")
def train_ihc_command(
    conv_type_id: Annotated[str, typer.Option(help="Name to store the trained parameters under.")],
    db: Db = None,
    source_mapping: SourceMappingFile = None,
    start: Start = None,
    end: End = None,
    lookback_days: Lookback = None,
) -> None:
    """Train the local IHC engine on the database's journeys and store the parameters as a new version."""
    from attribution.pipeline.training import train_conversion_type

    settings = _load_settings(
        db=db,
        source_mapping=source_mapping,
        start=start,
        end=end,
        lookback_days=lookback_days,
        conv_type_id=conv_type_id,
    )
    with _progress() as progress:
        progress.add_task("training", total=None)
        trained = train_conversion_type(settings)
    console.print(
        f"Stored IHC parameters '{shown(trained.conv_type_id)}' version {trained.version} "
        f"({trained.journeys:,} training journeys): phase weights {trained.phase_weights}"
    )
    for warning in trained.warnings:
        errors.print(f"[yellow]{shown(warning)}[/yellow]")


@app.command("calibrate-ihc")
def calibrate_ihc_command(
    answers: Annotated[
        Path | None,
        typer.Option(help="CSV of the IHC service's answers, one row per session (default: stored answers)."),
    ] = None,
    conv_type_id: Annotated[
        str | None,
        typer.Option("--conv-type-id", "--conversion-type", help="Name to store the parameters under."),
    ] = None,
    from_conv_type: Annotated[
        str | None,
        typer.Option(help="Without --answers: the conversion type whose stored ihc-api answers to fit."),
    ] = None,
    db: Db = None,
) -> None:
    """Fit the local IHC engine to real answers of the service (a CSV, or what earlier --model ihc-api runs
    stored), print its cross-validated error, and store the parameters as a new version of the conversion
    type."""
    from attribution.pipeline.calibration import calibrate_conversion_type, read_answers, stored_api_answers

    settings = _load_settings(db=db, conv_type_id=conv_type_id)
    source = from_conv_type or settings.ihc_api.conv_type_id
    frame = read_answers(answers) if answers else stored_api_answers(settings, source)
    with _progress() as progress:
        progress.add_task("calibrating", total=None)
        done = calibrate_conversion_type(frame, settings)
    error, stored = done.fidelity, done.stored
    console.print(
        f"Stored IHC parameters '{shown(stored.conv_type_id)}' version {stored.version} ({stored.journeys:,} journeys "
        f"of two or more sessions): phase weights {stored.phase_weights}\n"
        f"Cross-validated mean absolute error on {error.sessions:,} sessions: initializer "
        f"{error.initializer:.4f}, holder {error.holder:.4f}, closer {error.closer:.4f}, ihc {error.ihc:.4f}"
    )


@app.command("compare")
def compare_command(
    models: Annotated[
        list[str] | None, typer.Option("--model", help="A model to compare (repeatable).")
    ] = None,
    db: Db = None,
    source_mapping: SourceMappingFile = None,
    start: Start = None,
    end: End = None,
    value: Annotated[str, typer.Option(help="credit or revenue.")] = "credit",
) -> None:
    """Channel credit (or attributed revenue) by model, side by side, without storing anything."""
    from attribution.pipeline.training import compare_stored_models

    chosen = models or ["last-touch", "linear", "time-decay", "position-based", "ihc"]
    settings = _load_settings(db=db, source_mapping=source_mapping, start=start, end=end)
    with _progress() as progress:
        progress.add_task(f"attributing with {len(chosen)} models", total=None)
        wide = compare_stored_models(settings, chosen, value)
    table = Table(title=shown(f"Channel {value} by model · range {settings.time_range}"))
    for column in wide.columns:
        table.add_column(shown(column), justify="left" if column == "channel_name" else "right")
    for row in wide.iter_rows():
        table.add_row(shown(row[0]), *(f"{number:,.2f}" for number in row[1:]))
    console.print(table)


@app.command("copy-db")
def copy_db_command(
    source: Annotated[str, typer.Option("--from", help="Database to read: SQLite path or SQLAlchemy URL.")],
    target: Annotated[
        str, typer.Option("--to", help="Database to fill, e.g. postgresql+psycopg://user@host/db.")
    ],
) -> None:
    """Copy the three input tables into another database (it must not hold them yet)."""
    from attribution.warehouse.copy_db import copy_inputs
    from attribution.warehouse.engine import redact_url

    with _progress() as progress:
        task = progress.add_task("copying", total=None)

        def show(table: str, done: int, total: int) -> None:
            progress.update(task, description=f"copying {table}", completed=done, total=total)

        staged_copy = _load_settings().staged_copy  # Redshift: ATTRIBUTION_REDSHIFT_COPY_URL and _IAM_ROLE
        copied = copy_inputs(source, target, on_progress=show, staged_copy=staged_copy)
    console.print(
        shown(
            ", ".join(f"{table}: {rows:,} rows" for table, rows in copied.items())
            + f" -> {redact_url(target)}"
        )
    )


@app.command("check")
def check_command(db: Db = None, source_mapping: SourceMappingFile = None) -> None:
    """Run every input check over the whole database and print, per check, its table, how many rows (or
    repeated ids) break it and the first of them. Exits with 1 when any check fails."""
    from attribution.warehouse.freshness import find_stale, last_week
    from attribution.warehouse.input_checks import run_checks
    from attribution.warehouse.schema import validate_inputs

    settings = _load_settings(db=db, source_mapping=source_mapping)
    with settings.open_warehouse() as engine:
        validate_inputs(engine)
        results = run_checks(engine)
        week = last_week(engine)
        stale = find_stale(engine, week)
    _print_freshness(week, stale)
    console.print(
        f"Input checks of {shown(settings.warehouse.safe_db)} (bad: rows, or ids that repeat)",
        highlight=False,
    )
    console.print(f"{'check':<26} {'table':<15} {'bad':>8}  first ids", highlight=False)
    for result in results:
        ids = ", ".join(result.first_ids) + (", …" if result.count > len(result.first_ids) else "")
        line = f"{result.check.name:<26} {result.check.table:<15} {result.count:>8}  {ids}"
        console.print(shown(line), highlight=False, soft_wrap=True)
    failing = [result for result in results if result.count]
    if failing:
        errors.print(f"[red]{len(failing)} of {len(results)} checks failed[/red]", highlight=False)
        raise typer.Exit(EXIT_ERROR)
    console.print("every check passed")


def _print_freshness(week: TimeRange, stale: list[Stale]) -> None:
    """Per date of the data's last week: ``landed``, or what looks missing (information: today's date of
    a live warehouse is always still landing)."""
    from attribution.warehouse.freshness import days_of

    console.print("Freshness of the last dates the sessions reach", highlight=False)
    for day in days_of(week):
        reasons = [found.reason for found in stale if found.date == day] or ["landed"]
        for reason in reasons:
            console.print(shown(f"{day}  {reason}"), highlight=False, soft_wrap=True)


@app.command("report")
def report_command(
    db: Db = None,
    source_mapping: SourceMappingFile = None,
    out: Out = None,
    formats: Formats = None,
    html: Annotated[bool, typer.Option("--html", help="Also write the HTML dashboard.")] = False,
    report_model: Annotated[
        str | None,
        typer.Option(
            help="Make the stored report count this model's stored credit, then export it (env "
            "ATTRIBUTION_REPORT_MODEL; default: the model the stored report counts)."
        ),
    ] = None,
    compare_models: Annotated[
        bool,
        typer.Option(
            "--compare-models", help="Print every stored model's credit per channel side by side; no file."
        ),
    ] = False,
) -> None:
    """Export the stored channel report and print totals per channel (default: CSV only)."""
    from attribution.pipeline.steps import report_context, switch_report
    from attribution.reporting.files import export_all

    chosen = list(formats or ["csv"]) + (["html"] if html and "html" not in (formats or []) else [])
    settings = _load_settings(
        db=db, source_mapping=source_mapping, out=out, formats=tuple(chosen), report_model=report_model
    )
    with settings.open_warehouse() as engine:
        if compare_models:
            with engine.connect() as conn:
                _print_comparison(conn)
            return
        if settings.model.report_model is not None:
            switch_report(settings, engine)
        with engine.connect() as conn:
            context = report_context(conn, compare="html" in settings.output.formats)
            options = settings.output.storage_options.get_secret_value()
            paths = export_all(conn, settings.output.out, settings.output.formats, context, options)
            _print_channels(conn)
    _print_paths(paths)


def _print_comparison(conn: Connection) -> None:
    """Every stored model's credit per channel, the models of a channel one under the other."""
    from attribution.reporting.model_comparison import compare_stored_models
    from attribution.warehouse.tables import CreditLabel

    table = Table(title="Models side by side, over the stored report's dates")
    for column in ("channel", "model", "cost", "credit share", "orders", "revenue", "CPO", "ROAS"):
        table.add_column(column, justify="left" if column in ("channel", "model") else "right")
    rows = compare_stored_models(conn).rows(named=True)
    for row, after in zip(rows, [*rows[1:], None], strict=True):
        share, cpo, roas = (row[name] for name in ("credit_share", "CPO", "ROAS"))
        table.add_row(
            row["channel_name"],
            str(CreditLabel(row["model"], row["conv_type_id"])),
            f"{row['cost']:,.2f}",
            "—" if share is None else f"{share:.1%}",
            f"{row['ihc']:,.2f}",
            f"{row['ihc_revenue']:,.2f}",
            *("—" if ratio is None else f"{ratio:.2f}" for ratio in (cpo, roas)),
            end_section=after is None or after["channel_name"] != row["channel_name"],
        )
    console.print(table)


def _print_paths(paths: dict[str, str | Path]) -> None:
    for name, path in paths.items():
        console.print(f"{name:>8} report: [bold]{shown(path)}[/bold]")


def _print_channels(conn: Connection) -> None:
    """The stored report's totals per channel, most revenue first."""
    import polars as pl

    from attribution.reporting.channel_report import read_channel_report
    from attribution.reporting.metrics import with_ratios

    totals = with_ratios(
        read_channel_report(conn)
        .group_by("channel_name")
        .agg(pl.col("cost", "ihc", "ihc_revenue").sum())
        .sort("ihc_revenue", "channel_name", descending=[True, False])
    )
    table = Table(title="Channels over the whole report")
    for column in ("channel", "cost", "orders (ihc)", "revenue (ihc)", "CPO", "ROAS"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    for channel, cost, ihc, revenue, cpo, roas in totals.iter_rows():
        ratios = ("—" if ratio is None else f"{ratio:.2f}" for ratio in (cpo, roas))
        table.add_row(shown(channel), f"{cost:,.2f}", f"{ihc:,.2f}", f"{revenue:,.2f}", *ratios)
    console.print(table)


_TABLEAU = "Tableau (the token's secret: ATTRIBUTION_TABLEAU_TOKEN_SECRET, never a flag)"
TableauUrl = _option(str, "Tableau Server or Cloud: https://...", _TABLEAU)
TableauSite = _option(str, "The site's content URL; empty for the default site.", _TABLEAU)
TableauProject = _option(str, "The project to publish into: its name, or its path Parent/Child.", _TABLEAU)
TableauDatasource = _option(str, "The data source's name (default channel_reporting).", _TABLEAU)
TableauTokenName = _option(str, "The personal access token's name.", _TABLEAU)
TableauTimeout = _option(float, "Seconds Tableau may take to answer a request (default 300).", _TABLEAU)


@app.command("publish-tableau")
def publish_tableau_command(
    out: Out = None,
    tableau_url: TableauUrl = None,
    tableau_site: TableauSite = None,
    tableau_project: TableauProject = None,
    tableau_datasource: TableauDatasource = None,
    tableau_token_name: TableauTokenName = None,
    tableau_timeout: TableauTimeout = None,
) -> None:
    """Publish the Hyper extract in --out (channel_reporting.hyper, written with --format hyper) to Tableau
    Server or Cloud as a data source, replacing the project's data source of that name. Each option can be
    set in the environment as ATTRIBUTION_<NAME> (ATTRIBUTION_TABLEAU_URL, ...)."""
    from attribution.pipeline.steps import publish_to_tableau

    settings = _load_settings(
        out=out,
        tableau_url=tableau_url,
        tableau_site=tableau_site,
        tableau_project=tableau_project,
        tableau_datasource=tableau_datasource,
        tableau_token_name=tableau_token_name,
        tableau_timeout=tableau_timeout,
    )
    with _progress() as progress:
        progress.add_task("publishing to Tableau", total=None)
        done = publish_to_tableau(settings)
    site_words = f"site {done.site!r}" if done.site else "the default site"
    console.print(
        shown(
            f"Published {done.bytes:,} bytes to {done.server} ({site_words}), project {done.project!r}: "
            f"data source {done.datasource!r} ({done.datasource_id}), replacing the one of that name"
        ),
        highlight=False,
        soft_wrap=True,
    )


@app.command("demo")
def demo_command(
    db: Annotated[Path, typer.Option("--db", help="The demo database (generated when missing).")] = Path(
        DEFAULT_DB
    ),
    out: Out = None,
) -> None:
    """Generate the default demo database if it does not exist, then run the whole pipeline on it."""
    from attribution.warehouse.engine import open_engine

    if not db.exists():
        generate_command(db=db)
    summary = _run_with_progress(_load_settings(db=str(db), out=out))
    with open_engine(str(db)) as engine, engine.connect() as conn:
        _print_channels(conn)
    _print_paths(summary.report_paths)


def main() -> None:
    """Entry point: run the app, turning project and database errors into one red line."""
    debug = "--debug" in sys.argv[1:]
    try:
        with stopping_on_signals():
            app()
    except Interrupted as stopped:
        errors.print(
            f"{stopped}: stopped before its next step; nothing half-written is kept", highlight=False
        )
        sys.exit(exit_code(stopped))
    except Exception as exc:
        if debug or not _is_user_error(exc):
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        errors.print(f"[red]Error:[/red] {shown(message)}", highlight=False)
        sys.exit(EXIT_ERROR)


def _is_user_error(exc: Exception) -> bool:
    """A project or database error: one red line, not a traceback.

    SQLAlchemy is looked up, not imported: a command that never loaded it cannot have raised its errors,
    and importing it here would cost every start a third of a second.
    """
    database = sys.modules.get("sqlalchemy.exc")
    return isinstance(exc, AttributionError) or (
        database is not None and isinstance(exc, database.SQLAlchemyError)
    )
