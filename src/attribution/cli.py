"""The ``attribution`` command: flags in, one use case of ``attribution.app`` per command, its answer shown.

Why thin: what a command does is tested in the package without a terminal; here errors a user can cause end
as one red line and a non-zero exit code (a traceback only with ``--debug``). Every command imports what it
needs when it runs, so ``--help`` loads neither Polars, SQLAlchemy, Pydantic nor the pipeline.
"""

from __future__ import annotations

import atexit
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from attribution.console import flags as f
from attribution.console.output import console, errors, print_paths, progress, say, shown, warn
from attribution.errors import AttributionError, Interrupted
from attribution.interrupts import exit_code, stopping_on_signals
from attribution.pipeline.defaults import DEFAULT_DB
from attribution.sample_data import options as gen

app = typer.Typer(
    help="Marketing attribution: customer journeys -> per-session credit -> channel report (CSV).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: Rich's help formatting alone costs a third of a second per start
)
EXIT_ERROR = 1
EXIT_UNATTRIBUTED = 3


@app.callback()
def _options(debug: f.Debug = False) -> None:
    """Options of every command (``--debug`` is read by ``main``'s error handler, before any command)."""


@app.command("run")
@f.takes(*f.SETTING_FLAGS)
def run_command(local_ihc: f.LocalIhc = False, **flags: object) -> None:
    """Build journeys, attribute them, store the credit, rebuild the channel report and export it.

    Exits with 3 when conversions are left unattributed (IHC API failures or the request quota); the same
    command run again sends only those. The IHC API's key comes from IHC_API_KEY, never a flag.
    """
    given = f.settings_flags({**flags, "local_ihc": local_ihc})
    with _start_up():
        from attribution.app.runs import run_pipeline
        from attribution.console.tables import print_summary

    with progress() as show:
        summary = run_pipeline(show, on_server_failure=_server_log, **given)
    print_summary(summary)
    print_paths(summary.report_paths)
    if summary.unattributed:
        warn(f"{summary.unattributed} conversions left unattributed; rerun to resume.")
        raise typer.Exit(EXIT_UNATTRIBUTED)


def _server_log(log: Path) -> None:
    errors().print(f"The local IHC server's log: {shown(log)}", highlight=False)


@app.command(
    "serve-ihc",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def serve_ihc_command(ctx: typer.Context) -> None:
    """Run the project's IHC-compatible server (--host, --port, fault flags: see `serve-ihc --help`).

    Accepted keys come from the environment variable IHC_API_KEY (comma-separated), never from a flag.
    """
    from attribution.app.ihc import serve_ihc

    raise typer.Exit(serve_ihc(ctx.args))


@app.command("generate")
def generate_command(
    db: f.NewDb = Path(DEFAULT_DB),
    sessions: f.Sessions = gen.DEFAULT_SESSIONS,
    conversions: f.Conversions = gen.DEFAULT_CONVERSIONS,
    users: f.Users = None,
    days: f.Days = gen.DEFAULT_DAYS,
    seed: f.Seed = gen.DEFAULT_SEED,
    layout: f.Layout = gen.DEFAULT_LAYOUT,
) -> None:
    """Generate a challenge-like SQLite database for demos, tests and benchmarks."""
    from attribution.console.tables import print_generated
    from attribution.sample_data.generate import generate_database

    options = {"sessions": sessions, "conversions": conversions, "users": users, "days": days, "seed": seed}
    with progress("generating sessions") as show:
        counted = generate_database(
            db, layout=layout, on_progress=lambda done: show("generating sessions", done, sessions), **options
        )
    print_generated(counted)


@app.command("train-ihc")
@f.takes("db", "source_mapping", "start", "end", "lookback_days")
def train_ihc_command(conv_type_id: f.TrainedType, **where: object) -> None:
    """Train the local IHC engine on the database's journeys and store the parameters as a new version."""
    from attribution.app.ihc import train_ihc
    from attribution.console.tables import print_trained

    with progress("training"):
        trained = train_ihc(conv_type_id=conv_type_id, **where)
    print_trained(trained)


@app.command("calibrate-ihc")
@f.takes("db")
def calibrate_ihc_command(
    answers: f.Answers = None,
    conv_type_id: f.StoredType = None,
    from_conv_type: f.FromType = None,
    **where: object,
) -> None:
    """Fit the local IHC engine to real answers of the service (a CSV, or what earlier --model ihc-api runs
    stored), print its cross-validated error, and store the parameters as a new version of the conversion
    type."""
    from attribution.app.ihc import calibrate_ihc
    from attribution.console.tables import print_calibrated

    with progress("calibrating"):
        done = calibrate_ihc(answers, from_conv_type, conv_type_id=conv_type_id, **where)
    print_calibrated(done)


@app.command("compare")
@f.takes("db", "source_mapping", "start", "end")
def compare_command(
    models: f.Compared = None, value: f.Value = "credit", split: f.Split = "journey", **where: object
) -> None:
    """Channel credit (or attributed revenue) by model, side by side, without storing anything."""
    from attribution.app.reports import COMPARED_BY_DEFAULT, compare_models
    from attribution.console.tables import print_wide

    with progress(f"attributing with {len(models or COMPARED_BY_DEFAULT)} models"):
        time_range, wide = compare_models(models, value, split, **where)
    print_wide(f"Channel {value} by model · {split} split · range {time_range}", wide)


@app.command("copy-db")
@f.takes("source_mapping")
def copy_db_command(source: f.Source, target: f.Target, **mapping: object) -> None:
    """Copy the three input tables into another database (it must not hold them yet); with a source
    mapping, the tables it names, under the same names, so the same mapping reads the copy."""
    from attribution.app.inputs import copy_inputs

    with progress("copying") as show:
        copied, shown_target = copy_inputs(
            source, target, lambda table, done, total: show(f"copying {table}", done, total), **mapping
        )
    say(", ".join(f"{table}: {rows:,} rows" for table, rows in copied.items()) + f" -> {shown_target}")


@app.command("check")
@f.takes("db", "source_mapping")
def check_command(**where: object) -> None:
    """Run every input check over the whole database and print, per check, its table, how many rows (or
    repeated ids) break it and the first of them. Exits with 1 when any check fails."""
    from attribution.app.inputs import check_inputs
    from attribution.console.tables import print_checks

    report = check_inputs(**where)
    print_checks(report)
    if report.failing:
        errors().print(
            f"[red]{len(report.failing)} of {len(report.results)} checks failed[/red]", highlight=False
        )
        raise typer.Exit(EXIT_ERROR)
    console().print("every check passed")


@app.command("report")
@f.takes("db", "source_mapping", "out", "formats")
def report_command(
    html: f.Html = False,
    report_model: f.StoredReportModel = None,
    compare_models: f.CompareModels = False,
    **where: object,
) -> None:
    """Export the stored channel report and print totals per channel (default: CSV only)."""
    from attribution.app.reports import export_report
    from attribution.console.tables import print_channels, print_comparison

    formats = where.pop("formats") or ["csv"]
    chosen = [*formats, "html"] if html and "html" not in formats else formats
    stored = export_report(compare_models, formats=tuple(chosen), report_model=report_model, **where)
    if stored.comparison is not None:
        print_comparison(stored.comparison)
        return
    print_channels(stored.channels)
    print_paths(stored.paths)


@app.command("publish-tableau")
@f.takes("out", *f.TABLEAU_FLAGS)
def publish_tableau_command(**given: object) -> None:
    """Publish the Hyper extract in --out (channel_reporting.hyper, written with --format hyper) to Tableau
    Server or Cloud as a data source, replacing the project's data source of that name. Each option can be
    set in the environment as ATTRIBUTION_<NAME> (ATTRIBUTION_TABLEAU_URL, ...); the token's secret only
    there (ATTRIBUTION_TABLEAU_TOKEN_SECRET), never a flag."""
    from attribution.app.reports import publish_tableau
    from attribution.console.tables import print_published

    with progress("publishing to Tableau"):
        done = publish_tableau(**given)
    print_published(done)


@app.command("demo")
@f.takes("out")
def demo_command(db: f.DemoDb = Path(DEFAULT_DB), **where: object) -> None:
    """Generate the default demo database if it does not exist, then run the whole pipeline on it."""
    with _start_up():
        from attribution.app.runs import demo
        from attribution.console.tables import print_channels, print_generated, print_summary

    with progress() as show:
        done = demo(db, where["out"], show, on_generated=print_generated)
    print_summary(done.summary)
    print_channels(done.channels)
    print_paths(done.summary.report_paths)


@contextmanager
def _start_up() -> Iterator[None]:
    """Import a command's modules with the cyclic garbage collector paused, then freeze what they made.

    Why: the imports make some 60,000 objects that live as long as the process, and almost no garbage, yet
    during them the collector walks the young ones again and again and once all of them; frozen, no later
    collection walks them. A small run spent about a tenth of its time in those walks.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def main() -> None:
    """Entry point: run the app, turning project and database errors into one red line.

    Why ``gc.freeze`` at exit: the interpreter's last collection walks every object the imports made (Polars,
    SQLAlchemy, pydantic), about half a second of a small run's exit, to free memory the process is about to
    return anyway.
    """
    atexit.unregister(gc.freeze)  # once, however often main runs in one process (tests)
    atexit.register(gc.freeze)
    debug = "--debug" in sys.argv[1:]
    try:
        with stopping_on_signals():
            app()
    except Interrupted as stopped:
        errors().print(
            f"{stopped}: stopped before its next step; nothing half-written is kept", highlight=False
        )
        sys.exit(exit_code(stopped))
    except Exception as exc:
        if debug or not _is_user_error(exc):
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        errors().print(f"[red]Error:[/red] {shown(message)}", highlight=False)
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
