"""A one-file HTML dashboard of the channel report: honest headline figures, charts, per-channel totals and the
report's rows, for the dates a reader selects, with a CSV download of the rows shown.

Why one self-contained file: marketers open it from a mail or a shared drive, without network, so nothing is
fetched. Why the page draws itself: the report's rows are embedded as JSON and a small inline script sums,
charts (inline SVG) and tabulates the selected dates in the browser, so a date filter needs no server and the
page stays light (tens of kB instead of a 4.8 MB charting library). Why from the report frame alone: every
figure on the page comes from the same rows the CSV and Parquet files are written from, so they agree.
Nothing depends on the clock but the "generated" stamp, so the same report and context give the same bytes.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import Connection, select

from attribution.reporting.csv_rules import DECIMALS, FORMULA_START
from attribution.reporting.metrics import RATIOS, SPEND
from attribution.reporting.publish import atomic_path
from attribution.warehouse.tables import LABEL_COLUMNS, attribution_runs

if TYPE_CHECKING:
    from attribution.store.runs import RunSummary

UNDEFINED = "—"
REPORT_COLUMNS = ("channel_name", "date", "cost", "ihc", "ihc_revenue")
EDGE_DAYS = 2
"""Days at each end of the history marked incomplete. On the default demo 84% of a conversion's credit goes to
sessions of its own day or the day before and 93% to the last three days, so the last day lacks about 44% of
its credit (conversions not yet happened), the day before it about 16%, and the third day under 7%; the
first days gather the credit of journeys cut by the data's start in the same proportions."""
EDGE_REASONS = {
    "start": "journeys cut by the data's start: credit of earlier, unrecorded sessions lands on these days",
    "end": "conversions after the data's end have not happened yet: these days' sessions miss their credit",
}
JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
"""Characters that could end the data's script element or read as markup, written as JSON escapes."""
OPEN_BOUNDS = ("-inf", "+inf")
MODEL_SECTION = (
    '<section class="card"><h2>Attributed orders by channel and model</h2>'
    '<p class="note">Each stored model\'s credit of the sessions of the selected dates: a model run over fewer '
    'conversions credits fewer orders.</p><p class="legend" id="legend-models"></p>'
    '<svg class="chart" id="chart-models"></svg></section>'
)
MODEL_WORDS = {"ihc": "IHC", "api": "API"}
"""Words of model names shown in capitals."""


@dataclass(frozen=True, eq=False)  # eq=False: a frame has no truth value to compare by
class DashboardContext:
    """The run a dashboard describes, shown as given, and optional credit by model for comparison.

    ``by_model`` has columns ``model, channel_name, date, ihc``, a model's credit of a channel's sessions of a
    date (``model_comparison.stored_credit_by_date``); the side-by-side section appears when it holds two models
    or more, and follows the page's date filter.
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
    by_model = _credit_by_model(run.by_model, _dates(report))
    page = Template(_template("dashboard.html"))
    text = page.substitute(
        title="Channel attribution report",
        run=_run_html(run, report),
        model_section=MODEL_SECTION if by_model else "",
        data=_page_data(report, run, by_model),
        script=_template("dashboard.js"),
    )
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _template(name: str) -> str:
    return files("attribution").joinpath(f"templates/{name}").read_text("utf-8")


def _dates(report: pl.DataFrame) -> list[str]:
    """The report's dates, sorted: the page's script lists them in the same order (``DATES``)."""
    return report["date"].unique().sort().to_list()


def _page_data(report: pl.DataFrame, run: DashboardContext, by_model: dict[str, list] | None) -> str:
    """What the page's script draws from, as JSON that cannot end its script element."""
    data = {
        "rows": report.select(REPORT_COLUMNS).rows(),
        "ratios": RATIOS,
        "spend": SPEND,
        "model": model_label(run.model),
        "incomplete": incomplete_days(_dates(report)),
        "byModel": by_model,
        "csv": {"decimals": DECIMALS, "formula": FORMULA_START, "label": _report_label(report)},
    }
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda match: JSON_ESCAPES[match.group()], text)


def _report_label(report: pl.DataFrame) -> dict[str, str]:
    """The model and conversion type the report counts, as the CSV file's last two columns write them
    (``LABEL_COLUMNS``; no conversion type: an empty cell)."""
    first = report.row(0, named=True) if report.height else {}
    return {name: first.get(name) or "" for name in LABEL_COLUMNS if name in report.columns}


def incomplete_days(dates: list[str]) -> dict[str, str]:
    """The first and last ``EDGE_DAYS`` of the report's dates (sorted), each with why it is incomplete."""
    ends = {"start": dates[:EDGE_DAYS], "end": dates[-EDGE_DAYS:]}
    return {day: EDGE_REASONS[end] for end, days in ends.items() for day in days}


def _credit_by_model(by_model: pl.DataFrame | None, dates: list[str]) -> dict[str, list] | None:
    """Each model's credit per channel and date of the report's ``dates``, when two models or more credit them:
    the models and channels named once, and for each model and channel its credit on each of ``dates`` in
    order (``None`` where it credits none): about 11 bytes a model, channel and date on the page."""
    if by_model is None:
        return None
    credit = (
        by_model.filter(pl.col("date").is_in(dates))
        .group_by("model", "channel_name", "date")
        .agg(pl.col("ihc").sum())
    )
    models, channels = (credit[name].unique().sort().to_list() for name in ("model", "channel_name"))
    if len(models) < 2:
        return None
    grid = pl.DataFrame({"model": models}).join(pl.DataFrame({"channel_name": channels}), how="cross")
    grid = grid.join(pl.DataFrame({"date": dates, "day": list(range(len(dates)))}), how="cross")
    values = (
        grid.join(credit, on=["model", "channel_name", "date"], how="left")
        .sort("model", "channel_name", "day")["ihc"]
        .round(9)
        .to_list()
    )
    rows = [values[start : start + len(dates)] for start in range(0, len(values), len(dates))]
    per_model = [rows[start : start + len(channels)] for start in range(0, len(rows), len(channels))]
    return {"models": models, "channels": channels, "credit": per_model}


def model_label(model: str) -> str:
    """A model's name as a reader knows it: ``ihc`` is "IHC", ``ihc-api`` "IHC-API", ``last-touch`` as it is."""
    return "-".join(MODEL_WORDS.get(word, word) for word in model.split("-"))


def plain_range(time_range: str) -> str:
    """A run's conversion range ``[start, end)`` in words ("All dates", "from 2023-09-01"); midnight
    bounds as dates. Anything else ("not recorded") is shown as it is."""
    match = re.fullmatch(r"\[(.+), (.+)\)", time_range)
    if match is None:
        return time_range
    start, end = (_bound_text(bound) for bound in match.groups())
    if start is None and end is None:
        return "All dates"
    if end is None:
        return f"from {start}"
    return f"before {end}" if start is None else f"from {start} to before {end}"


def _bound_text(bound: str) -> str | None:
    return None if bound in OPEN_BOUNDS else bound.removesuffix(" 00:00:00")


def _run_html(run: DashboardContext, report: pl.DataFrame) -> str:
    """The header: the whole report's dates (every run's rows), then the run that made the page, whose range
    may be one day of them, and its whole id (a scheduler's run key is longer than a CLI run's)."""
    dates = f"{report['date'].min()} to {report['date'].max()}" if report.height else "none"
    items = {
        "Report dates": dates,
        "Run's conversions": plain_range(run.time_range),
        "Model": model_label(run.model),
        "Conversion type": run.conv_type or "all",
        "Run": run.run_id or UNDEFINED,
        "Generated": run.generated_at or UNDEFINED,
    }
    return "".join(
        f'<span data-param="{key}">{key}: <b>{html.escape(value)}</b></span>' for key, value in items.items()
    )
