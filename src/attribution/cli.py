"""The ``attribution`` command: a thin Typer layer over the pipeline, with one error handler.

Why thin: every command only turns flags into settings and calls the package; errors a user can cause
end as one red line and a non-zero exit code (a traceback only with ``--debug``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from attribution import generate as gen
from attribution.errors import AttributionError
from attribution.export import export_channel_report, read_channel_report
from attribution.models import MODELS
from attribution.pipeline import RunSummary, run
from attribution.settings import DEFAULT_DB, DEFAULT_OUT, load_settings
from attribution.warehouse import connect

app = typer.Typer(
    help="Marketing attribution: customer journeys -> per-session credit -> channel report (CSV).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True, soft_wrap=True)
_debug = {"on": False}

Db = Annotated[str, typer.Option("--db", help="SQLite file path or SQLAlchemy URL (env ATTRIBUTION_DB).")]
Out = Annotated[Path, typer.Option("--out", help="Directory for the report files.")]
Start = Annotated[
    str | None, typer.Option(help="First conversion time included: ISO date or timestamp (UTC).")
]
End = Annotated[str | None, typer.Option(help="First conversion time excluded: ISO date or timestamp (UTC).")]
Model = Annotated[str, typer.Option(help=f"Attribution model: {', '.join(sorted(MODELS))}.")]
Lookback = Annotated[
    int | None, typer.Option(help="Only sessions at most this many days before the conversion.")
]
DropImpressions = Annotated[bool, typer.Option(help="Leave impression-only sessions out of journeys.")]


@app.callback()
def _options(debug: Annotated[bool, typer.Option(help="Show tracebacks on errors.")] = False) -> None:
    _debug["on"] = debug


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _run_with_progress(**options: object) -> RunSummary:
    settings = load_settings(**options)
    with _progress() as progress:
        task = progress.add_task("attributing conversions", total=None)
        summary = run(settings, lambda _step, done, total: progress.update(task, completed=done, total=total))
    _print_summary(summary)
    return summary


def _print_summary(summary: RunSummary) -> None:
    table = Table(title=f"Run {summary.run_id[:12]} · model {summary.model} · range {summary.time_range}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for label, value in (
        ("conversions in range", summary.conversions),
        ("journeys attributed", summary.journeys),
        ("journey sessions", summary.sessions),
        ("conversions without sessions", summary.without_sessions),
        ("credit total", f"{summary.credit_total:.4f}"),
        ("report rows", summary.report_rows),
    ):
        table.add_row(label, str(value))
    for step, seconds in summary.seconds.items():
        table.add_row(f"time: {step}", f"{seconds:.2f} s")
    console.print(table)
    console.print(f"Report written to [bold]{summary.csv_path}[/bold]")


@app.command("run")
def run_command(
    db: Db = DEFAULT_DB,
    start: Start = None,
    end: End = None,
    model: Model = "ihc",
    out: Out = DEFAULT_OUT,
    lookback_days: Lookback = None,
    drop_impressions: DropImpressions = False,
) -> None:
    """Build journeys, attribute them, store the credit, rebuild the channel report and export it."""
    _run_with_progress(
        db=db,
        start=start,
        end=end,
        model=model,
        out=out,
        lookback_days=lookback_days,
        drop_impressions=drop_impressions,
    )


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
) -> None:
    """Generate a challenge-like SQLite database for demos, tests and benchmarks."""
    with _progress() as progress:
        task = progress.add_task("generating sessions", total=sessions)
        result = gen.generate_database(
            db,
            sessions=sessions,
            conversions=conversions,
            users=users,
            days=days,
            seed=seed,
            on_progress=lambda done: progress.update(task, completed=done),
        )
    console.print(
        f"Wrote {result.path}: {result.sessions:,} sessions, {result.users:,} users, "
        f"{result.conversions:,} conversions over {result.days} days (seed {result.seed}) in {result.seconds:.1f} s"
    )


@app.command("report")
def report_command(db: Db = DEFAULT_DB, out: Out = DEFAULT_OUT) -> None:
    """Export the stored channel report (CSV with CPO and ROAS) and print totals per channel."""
    engine = connect(load_settings(db=db).db)
    with engine.connect() as conn:
        path = export_channel_report(conn, out)
        frame = read_channel_report(conn)
    _print_channels(frame)
    console.print(f"Report written to [bold]{path}[/bold]")


def _print_channels(frame) -> None:
    import polars as pl

    totals = (
        frame.group_by("channel_name")
        .agg(pl.col("cost", "ihc", "ihc_revenue").sum())
        .sort("ihc_revenue", descending=True)
    )
    table = Table(title="Channels over the whole report")
    for column in ("channel", "cost", "orders (ihc)", "revenue (ihc)", "CPO", "ROAS"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    for channel, cost, ihc, revenue in totals.iter_rows():
        cpo = f"{cost / ihc:.2f}" if ihc > 0 else "—"
        roas = f"{revenue / cost:.2f}" if cost > 0 else "—"
        table.add_row(channel, f"{cost:,.2f}", f"{ihc:,.2f}", f"{revenue:,.2f}", cpo, roas)
    console.print(table)


@app.command("demo")
def demo_command(
    db: Annotated[Path, typer.Option("--db")] = Path(DEFAULT_DB), out: Out = DEFAULT_OUT
) -> None:
    """Generate the default demo database if it does not exist, then run the whole pipeline on it."""
    if not db.exists():
        generate_command(db=db)
    _run_with_progress(db=str(db), out=out)
    report_command(db=str(db), out=out)


def main() -> None:
    """Entry point: run the app, turning project and database errors into one red line."""
    try:
        app()
    except (AttributionError, SQLAlchemyError) as exc:
        if _debug["on"]:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        errors.print(f"[red]Error:[/red] {message}", highlight=False)
        sys.exit(1)
