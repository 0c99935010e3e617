"""A one-file HTML dashboard of the channel report: headline figures, charts and a sortable table.

Why one self-contained file: marketers open it from a mail or a shared drive, without network, so plotly.js
is embedded inline and nothing is fetched. Why from the report frame alone: every figure on the page is
computed from the same frame the CSV and Parquet files are written from, so the page and the files agree.
Chart ids are fixed and nothing depends on the clock, so the same report and context give the same bytes.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from itertools import cycle
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots
from sqlalchemy import Connection, select

from attribution.reporting.metrics import totals_with_ratios, with_ratios
from attribution.reporting.publish import atomic_path
from attribution.warehouse.tables import attribution_runs

if TYPE_CHECKING:
    from attribution.store.runs import RunSummary

UNDEFINED = "—"
SUM_DECIMALS = 9
SPEND, REVENUE = "#2f6fdb", "#e8832a"
MODEL_COLOURS = ("#2f6fdb", "#e8832a", "#2a9d6f", "#8a5cc9", "#c9463d", "#6b7785")
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
HEADLINE = {  # figure: (label, prefix of the shown value)
    "spend": ("Spend", "€"),
    "revenue": ("Attributed revenue", "€"),
    "orders": ("Attributed orders", ""),
    "ROAS": ("ROAS", ""),
    "CPO": ("CPO", "€"),
}
RATIOS = {  # column: (title, prefix of shown values, why it can be undefined, colour)
    "ROAS": ("ROAS: attributed revenue per € spent", "", "no spend", SPEND),
    "CPO": ("CPO: € spent per attributed order", "€", "no orders", REVENUE),
}
COMPARISON_NAMES = {"credit": "ihc", "revenue": "ihc_revenue"}
"""``compare_models``' column names for the report's."""
TABLE_COLUMNS = {  # column: (heading, prefix of shown values)
    "channel_name": ("Channel", None),
    "date": ("Date", None),
    "cost": ("Spend", "€"),
    "ihc": ("Orders (ihc)", ""),
    "ihc_revenue": ("Revenue (ihc)", "€"),
    "CPO": ("CPO", "€"),
    "ROAS": ("ROAS", ""),
}


@dataclass(frozen=True, eq=False)  # eq=False: a frame has no truth value to compare by
class DashboardContext:
    """The run a dashboard describes, shown as given, and optional credit by model for comparison.

    ``by_model`` has columns ``channel_name, model, ihc`` (or ``credit``, as ``compare.compare_models``
    names it); the side-by-side section appears when it holds two models or more.
    """

    time_range: str
    model: str
    conv_type: str | None = None
    run_id: str = ""
    generated_at: str = ""
    by_model: pl.DataFrame | None = None

    @classmethod
    def for_run(
        cls, summary: RunSummary, conv_type: str | None = None, by_model: pl.DataFrame | None = None
    ) -> DashboardContext:
        """The context of a pipeline run, stamped with the current UTC time."""
        return cls(summary.time_range, summary.model, conv_type, summary.run_id, _now(), by_model)

    @classmethod
    def unknown(cls) -> DashboardContext:
        """For a report whose run is not known: the page says so rather than guessing."""
        return cls("not recorded", "not recorded", generated_at=_now())


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def latest_run_context(conn: Connection) -> DashboardContext:
    """The context of the last succeeded run recorded in ``attribution_runs`` (for ``attribution report``)."""
    runs = attribution_runs.c
    last = conn.execute(
        select(runs.run_id, runs.model, runs.range_start, runs.range_end)
        .where(runs.status == "succeeded")
        .order_by(runs.finished_at.desc())
        .limit(1)
    ).first()
    if last is None:
        return DashboardContext.unknown()
    time_range = f"[{last.range_start or '-inf'}, {last.range_end or '+inf'})"
    return DashboardContext(time_range, last.model, run_id=last.run_id, generated_at=_now())


def write_dashboard(report: pl.DataFrame, path: Path, *, run: DashboardContext) -> Path:
    """Write the dashboard of ``report`` (``read_channel_report``'s frame) atomically to ``path``."""
    channels, figures = channel_totals(report), headline(report)
    page = Template(files("attribution").joinpath("templates/dashboard.html").read_text("utf-8"))
    text = page.substitute(
        title="Channel attribution report",
        plotlyjs=get_plotlyjs(),
        run=_run_html(run, report),
        headline=_headline_html(figures),
        headline_note=html.escape(_headline_note(figures)),
        share_chart=_chart_html(_share_figure(channels), "chart-share"),
        trend_chart=_chart_html(_trend_figure(report, _bars_height(channels)), "chart-trend"),
        ratio_chart=_chart_html(_ratio_figure(channels), "chart-ratios"),
        model_section=_model_section(run.by_model, channels["channel_name"]),
        table=_table_html(report),
    )
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def warm_up() -> None:
    """Build each kind of chart once on a one-row report, so plotly's lazy loading (about a second on
    first use) is paid early: the pipeline does this on its second thread while attribution runs."""
    sample = with_ratios(
        pl.DataFrame(
            {"channel_name": ["x"], "date": ["2023-09-01"], "cost": [1.0], "ihc": [1.0], "ihc_revenue": [1.0]}
        )
    )
    channels = channel_totals(sample)
    for figure in (_share_figure(channels), _trend_figure(sample, 300), _ratio_figure(channels)):
        _chart_html(figure, "warm-up")


def headline(report: pl.DataFrame) -> dict[str, float | None]:
    """Spend, attributed revenue and orders over the report, and the overall ROAS and CPO (None: undefined)."""
    totals = totals_with_ratios(report)
    return {
        "spend": totals["cost"],
        "revenue": totals["ihc_revenue"],
        "orders": totals["ihc"],
        "ROAS": totals["ROAS"],
        "CPO": totals["CPO"],
    }


def channel_totals(report: pl.DataFrame) -> pl.DataFrame:
    """Per channel: sums, ratios and shares of spend and credit, the most credited channel first."""
    totals = report.group_by("channel_name").agg(_group_sum("cost", "ihc", "ihc_revenue"))
    shares = {f"{column}_share": _share(column) for column in ("cost", "ihc")}
    ordered = totals.sort(["ihc", "channel_name"], descending=[True, False])  # before the shares' sums
    return with_ratios(ordered).with_columns(**shares)


def _group_sum(*columns: str) -> pl.Expr:
    """Sums rounded to 1e-9: a group-by adds in varying order, and the same report must give the same page."""
    return pl.col(*columns).sum().round(SUM_DECIMALS)


def _share(column: str) -> pl.Expr:
    total = pl.col(column).sum()
    return pl.when(total > 0).then(pl.col(column) / total)


def format_value(value: float | None, prefix: str = "") -> str:
    """Two decimals with thousands separators; an undefined value is a dash."""
    return UNDEFINED if value is None else f"{prefix}{value:,.2f}"


def _run_html(run: DashboardContext, report: pl.DataFrame) -> str:
    """The header: the whole report's dates (every run's rows), then the run that made the page, whose range
    may be one day of them, and its whole id (a scheduler's run key is longer than a CLI run's)."""
    dates = f"{report['date'].min()} to {report['date'].max()}" if report.height else "none"
    items = {
        "Report dates": dates,
        "Run's range": run.time_range,
        "Model": run.model,
        "Conversion type": run.conv_type or "all",
        "Run": run.run_id or UNDEFINED,
        "Generated": run.generated_at or UNDEFINED,
    }
    return "".join(
        f'<span data-param="{key}">{key}: <b>{html.escape(value)}</b></span>' for key, value in items.items()
    )


def _headline_html(figures: dict[str, float | None]) -> str:
    return "".join(
        f'<div class="figure" data-figure="{key}"><div class="label">{HEADLINE[key][0]}</div>'
        f'<div class="value">{format_value(value, HEADLINE[key][1])}</div></div>'
        for key, value in figures.items()
    )


def _headline_note(figures: dict[str, float | None]) -> str:
    notes = ["ROAS = attributed revenue / spend; CPO = spend / attributed orders."]
    if figures["ROAS"] is None:
        notes.append(f"ROAS is undefined ({UNDEFINED}): the report has no spend.")
    if figures["CPO"] is None:
        notes.append(f"CPO is undefined ({UNDEFINED}): the report has no attributed orders.")
    return " ".join(notes)


def _chart_text(values: pl.Series | list[str]) -> list[str]:
    """Values from the data as chart labels and hover text: ``&``, ``<`` and ``>`` as entities, which plotly
    shows as those characters. Plotly reads a subset of HTML in labels (``<a href>``, ``<b>``, ``<br>``), so a
    channel named like a link would otherwise become a live link on the page."""
    return [html.escape(value, quote=False) for value in values]


def _chart_html(figure: go.Figure, div_id: str) -> str:
    figure.update_layout(template="plotly_white", margin={"l": 10, "r": 10, "t": 30, "b": 10}, font_size=12)
    return pio.to_html(
        figure, include_plotlyjs=False, full_html=False, div_id=div_id, config=PLOT_CONFIG, validate=False
    )


def _share_figure(channels: pl.DataFrame) -> go.Figure:
    figure = go.Figure()
    for column, name, colour in (
        ("cost_share", "Spend share", SPEND),
        ("ihc_share", "Credit share", REVENUE),
    ):
        figure.add_bar(
            y=_chart_text(channels["channel_name"]),
            x=channels[column],
            name=name,
            orientation="h",
            marker_color=colour,
        )
    figure.update_layout(height=_bars_height(channels), legend={"orientation": "h", "y": 1.06})
    figure.update_xaxes(tickformat=".0%")
    return figure.update_yaxes(autorange="reversed")


def _trend_figure(report: pl.DataFrame, height: int) -> go.Figure:
    daily = report.group_by("date").agg(_group_sum("cost", "ihc_revenue")).sort("date")
    figure = go.Figure()
    for column, name, colour in (("cost", "Spend", SPEND), ("ihc_revenue", "Attributed revenue", REVENUE)):
        figure.add_scatter(
            x=_chart_text(daily["date"]), y=daily[column], name=name, mode="lines+markers", line_color=colour
        )
    figure.update_yaxes(tickprefix="€", rangemode="tozero")
    return figure.update_layout(height=height, legend={"orientation": "h", "y": 1.06})


def _ratio_figure(channels: pl.DataFrame) -> go.Figure:
    """ROAS and CPO bars side by side; an undefined ratio is an empty bar labelled with a dash and why."""
    figure = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.05,
        subplot_titles=[title for title, *_ in RATIOS.values()],
    )
    for col, (column, (_title, prefix, reason, colour)) in enumerate(RATIOS.items(), start=1):
        values = channels[column].to_list()
        figure.add_bar(
            y=_chart_text(channels["channel_name"]),
            x=[value or 0.0 for value in values],
            text=[f"{UNDEFINED} {reason}" if v is None else format_value(v, prefix) for v in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{text}<extra></extra>",
            orientation="h",
            marker_color=colour,
            showlegend=False,
            row=1,
            col=col,
        )
        # room right of the longest bar for its label, which plotly would otherwise cut at the edge
        figure.update_xaxes(range=[0, 1.25 * max(filter(None, values), default=1.0)], row=1, col=col)
    figure.update_layout(height=_bars_height(channels))
    return figure.update_yaxes(autorange="reversed")


def _bars_height(channels: pl.DataFrame) -> int:
    return 90 + 26 * channels.height


def _model_section(by_model: pl.DataFrame | None, channels: pl.Series) -> str:
    if by_model is None or by_model["model"].n_unique() < 2:
        return ""
    credit = by_model.rename(COMPARISON_NAMES, strict=False)
    totals = credit.group_by("channel_name", "model").agg(_group_sum("ihc"))
    figure = go.Figure()
    for model, colour in zip(sorted(totals["model"].unique()), cycle(MODEL_COLOURS), strict=False):
        rows = channels.to_frame().join(totals.filter(model=model), on="channel_name", how="left")
        figure.add_bar(
            x=_chart_text(rows["channel_name"]),
            y=rows["ihc"],
            name=_chart_text([model])[0],
            marker_color=colour,
        )
    figure.update_layout(barmode="group", height=420, legend={"orientation": "h", "y": 1.08})
    chart = _chart_html(figure, "chart-models")
    return f'<section class="card"><h2>Attributed orders by channel and model</h2>{chart}</section>'


def _table_html(report: pl.DataFrame) -> str:
    heads = "".join(
        f'<th scope="col"{"" if prefix is None else " class=num"}>{heading}</th>'
        for heading, prefix in TABLE_COLUMNS.values()
    )
    rows = "".join(
        f"<tr>{''.join(_cell(row[c], TABLE_COLUMNS[c][1]) for c in TABLE_COLUMNS)}</tr>"
        for row in report.iter_rows(named=True)
    )
    return f'<table id="report"><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>'


def _cell(value: str | float | None, prefix: str | None) -> str:
    if prefix is None:
        text = html.escape(value)
        return f'<td data-sort="{text}">{text}</td>'
    undefined = " undefined" if value is None else ""
    sort = "" if value is None else repr(value)
    return f'<td class="num{undefined}" data-sort="{sort}">{format_value(value, prefix)}</td>'
