"""The tables the commands print: a run's summary, the channels of the stored report, models side by side,
and the input checks.

Why here: a command returns data (``attribution.app``); how it reads on a terminal is decided once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from attribution.console.output import console, say, shown, warn

if TYPE_CHECKING:
    import polars as pl

    from attribution.app.inputs import CheckReport
    from attribution.pipeline.calibration import CalibratedType
    from attribution.pipeline.training import StoredType
    from attribution.reporting.tableau import Published
    from attribution.sample_data.generate import GenerateSummary
    from attribution.store.runs import RunSummary

NO_RATIO = "—"


def _ratio(value: float | None) -> str:
    return NO_RATIO if value is None else f"{value:.2f}"


def print_summary(summary: RunSummary) -> None:
    """A run's figures, its time per step, and its notes."""
    title = f"Run {summary.run_id[:12]} · model {summary.model} · range {summary.time_range}"
    table = _table(shown(title), "figure", "value")
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
    console().print(table)
    for note in summary.notes:
        console().print(f"[yellow]{shown(note)}[/yellow]")


def _table(title: str, *columns: str, left: tuple[str, ...] = ()) -> Table:
    """A table whose first column (and those in ``left``) reads left to right, the figures right-aligned."""
    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 or column in left else "right")
    return table


def print_channels(totals: pl.DataFrame) -> None:
    """The stored report's totals per channel (``reporting.model_comparison.channel_totals``)."""
    table = _table(
        "Channels over the whole report", "channel", "cost", "orders (ihc)", "revenue (ihc)", "CPO", "ROAS"
    )
    for channel, cost, ihc, revenue, cpo, roas in totals.iter_rows():
        table.add_row(
            shown(channel), f"{cost:,.2f}", f"{ihc:,.2f}", f"{revenue:,.2f}", _ratio(cpo), _ratio(roas)
        )
    console().print(table)


def print_comparison(compared: pl.DataFrame) -> None:
    """Every stored model's credit per channel, the models of a channel one under the other."""
    from attribution.warehouse.tables import CreditLabel

    columns = ("channel", "model", "cost", "credit share", "orders", "revenue", "CPO", "ROAS")
    table = _table("Models side by side, over the stored report's dates", *columns, left=("model",))
    rows = compared.rows(named=True)
    for row, after in zip(rows, [*rows[1:], None], strict=True):
        share = row["credit_share"]
        table.add_row(
            row["channel_name"],
            str(CreditLabel(row["model"], row["conv_type_id"])),
            f"{row['cost']:,.2f}",
            NO_RATIO if share is None else f"{share:.1%}",
            f"{row['ihc']:,.2f}",
            f"{row['ihc_revenue']:,.2f}",
            _ratio(row["CPO"]),
            _ratio(row["ROAS"]),
            end_section=after is None or after["channel_name"] != row["channel_name"],
        )
    console().print(table)


def print_wide(title: str, wide: pl.DataFrame) -> None:
    """A frame of channels (first column) and figures, one column per model."""
    table = _table(shown(title), *(shown(column) for column in wide.columns))
    for row in wide.iter_rows():
        table.add_row(shown(row[0]), *(f"{number:,.2f}" for number in row[1:]))
    console().print(table)


def print_checks(report: CheckReport) -> None:
    """Per date of the data's last week, ``landed`` or what looks missing; then per input check its table (as
    the source mapping names it), how many rows (or repeated ids) break it and the first of them."""
    console().print("Freshness of the last dates the sessions reach", highlight=False)
    for day, reasons in report.freshness.items():
        for reason in reasons:
            console().print(shown(f"{day}  {reason}"), highlight=False, soft_wrap=True)
    console().print(
        f"Input checks of {shown(report.safe_db)} (bad: rows, or ids that repeat)", highlight=False
    )
    width = max([15, *(len(result.table) for result in report.results)])
    console().print(f"{'check':<26} {'table':<{width}} {'bad':>8}  first ids", highlight=False)
    for result in report.results:
        ids = ", ".join(result.first_ids) + (", …" if result.count > len(result.first_ids) else "")
        line = f"{result.check.name:<26} {result.table:<{width}} {result.count:>8}  {ids}"
        console().print(shown(line), highlight=False, soft_wrap=True)


def print_generated(result: GenerateSummary) -> None:
    console().print(
        f"Wrote {shown(result.path)}: {result.sessions:,} sessions, {result.users:,} users, "
        f"{result.conversions:,} conversions over {result.days} days (seed {result.seed}, {result.layout} layout) "
        f"in {result.seconds:.1f} s"
    )


def print_trained(trained: StoredType) -> None:
    console().print(
        f"Stored IHC parameters '{shown(trained.conv_type_id)}' version {trained.version} "
        f"({trained.journeys:,} training journeys): phase weights {trained.phase_weights}"
    )
    for warning in trained.warnings:
        warn(warning)


def print_calibrated(done: CalibratedType) -> None:
    error, stored = done.fidelity, done.stored
    console().print(
        f"Stored IHC parameters '{shown(stored.conv_type_id)}' version {stored.version} ({stored.journeys:,} journeys "
        f"of two or more sessions): phase weights {stored.phase_weights}\n"
        f"Cross-validated mean absolute error on {error.sessions:,} sessions: initializer "
        f"{error.initializer:.4f}, holder {error.holder:.4f}, closer {error.closer:.4f}, ihc {error.ihc:.4f}"
    )


def print_published(done: Published) -> None:
    site_words = f"site {done.site!r}" if done.site else "the default site"
    say(
        f"Published {done.bytes:,} bytes to {done.server} ({site_words}), project {done.project!r}: "
        f"data source {done.datasource!r} ({done.datasource_id}), replacing the one of that name"
    )
