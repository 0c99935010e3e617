"""The HTML dashboard, opened in headless Chromium: no errors, no network, every figure, table and chart equal
to plain SQL over ``channel_reporting``, for all dates and for the dates the page's filter selects.

Chromium is Debian's (``scripts/install-chromium.sh``), driven by playwright without downloading a browser.
Without it these tests are skipped, saying why; ATTRIBUTION_REQUIRE_CHROMIUM=1 makes that a failure instead.
A screenshot of each page opened is kept under pytest's temporary directory, ``dashboard-*/``.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import Browser, Page, Request, sync_playwright

from attribution import load_settings, run
from attribution.reporting.channel_report import read_channel_report
from attribution.reporting.dashboard import DashboardContext, latest_run_context, write_dashboard
from attribution.reporting.files import write_csv
from attribution.reporting.metrics import with_ratios
from attribution.reporting.model_comparison import stored_credit_by_date
from attribution.sample_data.generate import PAID_CHANNELS, generate_database
from attribution.warehouse.engine import connect
from tests.cases import PAID
from tests.commands import attribution_in_process

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MODELS = ("last-touch", "linear", "ihc")  # the last one's report is the page's
LABELS = {"last-touch", "linear", "ihc (default)"}
"""The models as the comparison names them: with the conversion type of those that learn one per type."""
CHARTS = ("chart-share", "chart-trend", "chart-ratios", "chart-models")
CONTEXT = DashboardContext("[2023-08-29 00:00:00, +inf)", "ihc", "purchase", "0123456789abcdef", "2023-09-08")
DEMO_ROWS = 160
"""The report rows of the default demo (`attribution generate`'s defaults): 16 channels over 10 days."""
PAGE_LIMIT = 1_000_000
FILTERED = ("2023-08-31", "2023-09-04")
"""Dates the filter tests select: inside the demo's history, away from both of its ends."""


@dataclass
class Opened:
    """A dashboard loaded in a page, with everything that went wrong while it loaded."""

    page: Page
    problems: list[str]
    screenshot: Path


@dataclass
class Demo:
    db: str
    dashboard: Path
    report: pl.DataFrame


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: run scripts/install-chromium.sh"
        if os.environ.get("ATTRIBUTION_REQUIRE_CHROMIUM"):
            pytest.fail(f"{reason} (ATTRIBUTION_REQUIRE_CHROMIUM is set)")
        pytest.skip(f"{reason}, or set ATTRIBUTION_REQUIRE_CHROMIUM=1 to fail instead")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


def open_dashboard(browser: Browser, path: Path) -> Opened:
    """Load the file with every network request refused and recorded, and screenshot it beside the file."""
    page = browser.new_page(viewport={"width": 1280, "height": 2000}, accept_downloads=True)
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.on("request", lambda request: _record_network(request, problems))
    page.route("http*://**", lambda route: route.abort())
    page.goto(path.as_uri())
    page.wait_for_selector("#report[data-ready]", state="attached", timeout=10_000)
    screenshot = path.with_suffix(".png")
    page.screenshot(path=screenshot, full_page=True)
    return Opened(page, problems, screenshot)


def _record_network(request: Request, problems: list[str]) -> None:
    if not request.url.startswith(("file:", "data:", "blob:", "about:")):
        problems.append(f"network: {request.url}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """A small challenge-like database run with several models, each keeping its credit; the dashboard compares
    them per date from that stored credit."""
    folder = tmp_path_factory.mktemp("dashboard-demo")
    db = str(generate_database(folder / "demo.db", sessions=20_000, conversions=400).path)
    for model in MODELS:
        run(load_settings(db=db, out=str(folder), model=model))
    engine = connect(db)
    with engine.connect() as conn:
        report, by_model = read_channel_report(conn), stored_credit_by_date(conn)
    engine.dispose()
    context = replace(CONTEXT, by_model=by_model)
    return Demo(db, write_dashboard(report, folder / "dashboard.html", run=context), report)


@pytest.fixture(scope="module")
def opened(browser: Browser, demo: Demo) -> Opened:
    return open_dashboard(browser, demo.dashboard)


@pytest.fixture
def filtered(opened: Opened) -> Iterator[Page]:
    """The demo page with the date filter set to ``FILTERED``, set back to all dates afterwards."""
    page = opened.page
    page.fill("#date-from", FILTERED[0])
    page.fill("#date-to", FILTERED[1])
    yield page
    page.click("#date-all")


# The reference: channel_reporting read with plain SQL, ratios computed here.

ALL_DATES = ("0000-00-00", "9999-99-99")


def ratio(numerator: float, denominator: float, spend: float) -> float | None:
    """CPO and ROAS as the issue defines them: undefined without spend or without a denominator."""
    return numerator / denominator if spend > 0 and denominator > 0 else None


def query(db: str, sql: str, dates: tuple[str, str]) -> list[tuple]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, dates).fetchall()


def sql_rows(db: str, dates: tuple[str, str] = ALL_DATES) -> list[tuple]:
    """Every report row of the dates, with CPO and ROAS."""
    rows = query(
        db,
        "SELECT channel_name, date, cost, ihc, ihc_revenue FROM channel_reporting"
        " WHERE date BETWEEN ? AND ? ORDER BY date, channel_name",
        dates,
    )
    return [(*row, ratio(row[2], row[3], row[2]), ratio(row[4], row[2], row[2])) for row in rows]


def sql_channels(db: str, dates: tuple[str, str] = ALL_DATES) -> dict[str, dict[str, float | None]]:
    """Per channel over the dates: sums, shares of spend and credit, CPO and ROAS."""
    rows = query(
        db,
        "SELECT channel_name, SUM(cost), SUM(ihc), SUM(ihc_revenue),"
        " SUM(cost) / (SELECT SUM(cost) FROM channel_reporting WHERE date BETWEEN ?1 AND ?2),"
        " SUM(ihc) / (SELECT SUM(ihc) FROM channel_reporting WHERE date BETWEEN ?1 AND ?2)"
        " FROM channel_reporting WHERE date BETWEEN ?1 AND ?2 GROUP BY channel_name",
        dates,
    )
    return {
        channel: {
            "cost": cost,
            "ihc": ihc,
            "ihc_revenue": revenue,
            "cost_share": cost_share,
            "ihc_share": ihc_share,
            "CPO": ratio(cost, ihc, cost),
            "ROAS": ratio(revenue, cost, cost),
        }
        for channel, cost, ihc, revenue, cost_share, ihc_share in rows
    }


PAID_SUMS = """
SELECT SUM(cost), SUM(ihc), SUM(ihc_revenue) FROM channel_reporting WHERE date BETWEEN ?1 AND ?2
AND channel_name IN (SELECT channel_name FROM channel_reporting WHERE date BETWEEN ?1 AND ?2
                     GROUP BY channel_name HAVING SUM(cost) > 0)
"""
ALL_SUMS = "SELECT SUM(cost), SUM(ihc), SUM(ihc_revenue) FROM channel_reporting WHERE date BETWEEN ? AND ?"


def sql_headline(db: str, dates: tuple[str, str] = ALL_DATES) -> dict[str, float | None]:
    """Paid figures over the channels with spend in the dates, and blended ones over every channel."""
    (spend, paid_orders, paid_revenue), *_ = query(db, PAID_SUMS, dates)
    (_, orders, revenue), *_ = query(db, ALL_SUMS, dates)
    return {
        "spend": spend,
        "paid_revenue": paid_revenue,
        "paid_orders": paid_orders,
        "paid_roas": ratio(paid_revenue, spend, spend),
        "paid_cpo": ratio(spend, paid_orders, spend),
        "revenue": revenue,
        "orders": orders,
        "blended_roas": ratio(revenue, spend, spend),
    }


def sql_daily(db: str, dates: tuple[str, str] = ALL_DATES) -> dict[tuple[str, str], float]:
    """Spend and attributed revenue per date, summed over channels."""
    rows = query(
        db,
        "SELECT date, SUM(cost), SUM(ihc_revenue) FROM channel_reporting"
        " WHERE date BETWEEN ? AND ? GROUP BY date",
        dates,
    )
    return {
        (series, day): value for day, *values in rows for series, value in zip(SERIES, values, strict=True)
    }


SERIES = ("cost", "ihc_revenue")


def sql_models(db: str, dates: tuple[str, str] = ALL_DATES) -> dict[tuple[str, str], float]:
    """Each stored model's credit of each channel's sessions of the dates (those of the report), by (the model
    as the page names it, channel)."""
    rows = query(
        db,
        "SELECT model, conv_type_id, channel_name, SUM(ihc) FROM attribution_customer_journey"
        " WHERE event_date BETWEEN ?1 AND ?2 AND event_date IN (SELECT date FROM channel_reporting)"
        " GROUP BY model, conv_type_id, channel_name",
        dates,
    )
    return {
        (f"{model} ({conv})" if conv else model, channel): credit for model, conv, channel, credit in rows
    }


# What the page shows.


def shown_matches(text: str, expected: float | None) -> bool:
    """Whether a figure as the page shows it (``€1,234.57``, ``306.1``, ``12.5%``, ``—``) is ``expected``
    rounded to the digits shown: half a unit of the last digit off at most, plus float noise."""
    if expected is None or text == "—":
        return expected is None and text == "—"
    number = text.replace("€", "").replace(",", "").removesuffix("%")
    scale = 100 if text.endswith("%") else 1
    decimals = len(number.partition(".")[2])
    return abs(float(number) - expected * scale) <= 0.5 * 10**-decimals + 1e-9


def mismatches(shown: dict, expected: dict) -> dict:
    """The expected keys whose shown text is not the expected value or text (empty: all equal)."""
    return {
        key: (shown.get(key), value)
        for key, value in expected.items()
        if key not in shown
        or (shown[key] != value if isinstance(value, str) else not shown_matches(shown[key], value))
    }


def shown_headline(page: Page) -> dict[str, str]:
    pairs = page.eval_on_selector_all(
        "[data-figure]", "els => els.map(e => [e.dataset.figure, e.querySelector('.value').textContent])"
    )
    return dict(pairs)


def shown_table(page: Page, table: str) -> list[dict[str, str]]:
    """A table's rows as {column key: cell text}, in the order shown."""
    return page.eval_on_selector_all(
        f"#{table} tbody tr",
        """rows => rows.map(r => Object.fromEntries(
             Array.from(r.cells, c => [c.dataset.column, c.textContent])))""",
    )


def sort_values(page: Page, table: str, column: str) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table} tbody td[data-column='{column}']", "cells => cells.map(c => c.dataset.sort)"
    )


def chart_marks(page: Page, chart: str) -> dict[tuple[str, str], str]:
    """A chart's marks (bars, points) as {(series, key): value}; an undefined value is ``—``."""
    marks = page.eval_on_selector_all(
        f"#{chart} [data-series]",
        "els => els.map(e => [e.dataset.series, e.dataset.key, e.dataset.value])",
    )
    return {(series, key): value or "—" for series, key, value in marks}


def totals_mismatches(page: Page, expected: dict[str, dict[str, float | None]]) -> dict:
    """The totals table's channels whose row is not ``expected`` (empty: every row equal, none missing)."""
    shown = {row["channel_name"]: row for row in shown_table(page, "totals")}
    wrong = {channel: mismatches(shown.get(channel, {}), figures) for channel, figures in expected.items()}
    extra = {channel: "not expected" for channel in shown.keys() - expected.keys()}
    return {channel: found for channel, found in wrong.items() if found} | extra


def channel_marks(channels: dict[str, dict[str, float | None]], *series: str) -> dict[tuple[str, str], float]:
    return {(name, channel): figures[name] for channel, figures in channels.items() for name in series}


# The page as a whole.


def test_the_page_opens_offline_without_errors_and_keeps_a_screenshot(opened):
    assert opened.problems == []
    assert opened.screenshot.stat().st_size > 20_000


def test_the_default_demo_page_is_at_most_one_megabyte(demo):
    assert demo.report.height == DEMO_ROWS
    assert demo.dashboard.stat().st_size <= PAGE_LIMIT


@pytest.mark.parametrize("chart", CHARTS)
def test_every_chart_is_drawn(opened, chart):
    box = opened.page.locator(f"#{chart}").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 200
    assert opened.page.locator(f"#{chart} [data-series]").count() > 0


def test_the_run_parameters_are_shown_in_plain_words(opened):
    params = dict(
        opened.page.eval_on_selector_all(
            "#run [data-param]", "els => els.map(e => [e.dataset.param, e.querySelector('b').textContent])"
        )
    )
    assert params == {
        "Report dates": "2023-08-29 to 2023-09-07",
        "Run's conversions": "from 2023-08-29",
        "Model": "IHC",
        "Conversion type": "purchase",
        "Run": CONTEXT.run_id,
        "Generated": "2023-09-08",
    }


def test_an_open_range_reads_all_dates(demo, tmp_path):
    context = replace(CONTEXT, time_range="[-inf, +inf)")
    text = write_dashboard(demo.report, tmp_path / "open.html", run=context).read_text()
    assert "All dates" in text and "inf" not in text


def test_credit_columns_name_the_model_in_plain_words(opened):
    headings = opened.page.locator("#report th").all_text_contents()
    assert "Orders credited by IHC" in headings and "Revenue credited by IHC" in headings
    assert not any("(ihc)" in heading for heading in headings)


# The headline.


def test_headline_figures_equal_sql_over_paid_channels_and_all_channels(opened, demo):
    assert mismatches(shown_headline(opened.page), sql_headline(demo.db)) == {}


def test_blended_roas_is_named_so_and_every_card_states_its_formula(opened):
    cards = opened.page.eval_on_selector_all(
        "[data-figure]",
        "els => els.map(e => [e.dataset.figure, e.querySelector('.label').textContent,"
        " e.querySelector('.formula').textContent])",
    )
    labels = {key: label for key, label, _formula in cards}
    assert "blended" in labels["blended_roas"].lower() and "paid" in labels["paid_roas"].lower()
    assert all(len(formula) > 10 for _key, _label, formula in cards)


def test_fractional_orders_are_shown_without_trailing_decimals(opened, demo):
    orders = shown_headline(opened.page)["orders"]
    assert orders == f"{round(demo.report['ihc'].sum()):,}"  # the demo's orders are whole: every one credited


# Tables.


def test_every_report_row_equals_the_stored_report(opened, demo):
    shown = shown_table(opened.page, "report")
    keys = ("channel_name", "date", "cost", "ihc", "ihc_revenue", "CPO", "ROAS")
    expected = [dict(zip(keys, row, strict=True)) for row in sql_rows(demo.db)]
    shown.sort(key=lambda row: (row["date"], row["channel_name"]))
    assert [row["channel_name"] for row in shown] == [row["channel_name"] for row in expected]
    assert [mismatches(s, e) for s, e in zip(shown, expected, strict=True)] == [{}] * len(expected)


def test_the_totals_table_equals_sql_per_channel(opened, demo):
    assert totals_mismatches(opened.page, sql_channels(demo.db)) == {}


def test_a_channel_without_spend_has_no_cpo_and_no_roas(opened, demo):
    unpaid = set(demo.report["channel_name"]) - PAID_CHANNELS
    totals = {row["channel_name"]: row for row in shown_table(opened.page, "totals")}
    assert unpaid and all(totals[channel]["CPO"] == totals[channel]["ROAS"] == "—" for channel in unpaid)
    marks = chart_marks(opened.page, "chart-ratios")
    assert {marks["CPO", channel] for channel in unpaid} == {"—"}
    labels = opened.page.locator("#chart-ratios text.undefined").all_text_contents()
    assert labels.count("— no spend") == 2 * len(unpaid)


@pytest.mark.parametrize("table", ["report", "totals"])
def test_clicking_a_heading_sorts_the_table_with_undefined_values_last(opened, table):
    roas = opened.page.locator(f"#{table} th[data-column='ROAS']")
    for clicks, descending in ((1, False), (2, True)):
        roas.click()
        values = sort_values(opened.page, table, "ROAS")
        defined = [float(v) for v in values if v]
        assert defined == sorted(defined, reverse=descending), f"after {clicks} click(s)"
        assert values[len(defined) :] == [""] * (len(values) - len(defined))


# Charts.


def test_the_charts_equal_sql_over_all_dates(opened, demo):
    channels = sql_channels(demo.db)
    assert (
        mismatches(
            chart_marks(opened.page, "chart-share"), channel_marks(channels, "cost_share", "ihc_share")
        )
        == {}
    )
    assert mismatches(chart_marks(opened.page, "chart-ratios"), channel_marks(channels, "ROAS", "CPO")) == {}
    assert mismatches(chart_marks(opened.page, "chart-trend"), sql_daily(demo.db)) == {}


def test_the_model_chart_shows_each_models_stored_credit(opened, demo):
    marks, expected = chart_marks(opened.page, "chart-models"), sql_models(demo.db)
    assert {series for series, _channel in marks} == LABELS
    assert len(marks) == len(LABELS) * demo.report["channel_name"].n_unique()
    assert marks.keys() == expected.keys() and mismatches(marks, expected) == {}


# The date filter.


def test_the_date_filter_changes_every_figure_table_and_chart_to_sql_over_those_dates(filtered, demo):
    channels = sql_channels(demo.db, FILTERED)
    assert mismatches(shown_headline(filtered), sql_headline(demo.db, FILTERED)) == {}
    shown_rows = shown_table(filtered, "report")
    assert sorted((row["date"], row["channel_name"]) for row in shown_rows) == [
        (day, channel) for channel, day, *_ in sql_rows(demo.db, FILTERED)
    ]
    assert totals_mismatches(filtered, channels) == {}
    assert (
        mismatches(chart_marks(filtered, "chart-share"), channel_marks(channels, "cost_share", "ihc_share"))
        == {}
    )
    assert mismatches(chart_marks(filtered, "chart-ratios"), channel_marks(channels, "ROAS", "CPO")) == {}
    assert mismatches(chart_marks(filtered, "chart-trend"), sql_daily(demo.db, FILTERED)) == {}
    models, expected = chart_marks(filtered, "chart-models"), sql_models(demo.db, FILTERED)
    assert models.keys() == expected.keys() and mismatches(models, expected) == {}
    assert mismatches(models, sql_models(demo.db)) != {}  # other figures than all dates'


def test_the_filter_can_be_set_back_to_all_dates(opened, demo):
    page = opened.page
    page.fill("#date-from", FILTERED[0])
    page.click("#date-all")
    assert (page.input_value("#date-from"), page.input_value("#date-to")) == ("2023-08-29", "2023-09-07")
    assert mismatches(shown_headline(page), sql_headline(demo.db)) == {}


def test_the_downloaded_csv_holds_the_rows_shown(filtered, tmp_path):
    with filtered.expect_download() as download:
        filtered.click("#download")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == f"channel_reporting_{FILTERED[0]}_{FILTERED[1]}.csv"
    header, *rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    shown_columns = ["channel_name", "date", "cost", "ihc", "ihc_revenue", "CPO", "ROAS"]
    assert header == [*shown_columns, "model", "conv_type_id"]  # the file's columns, its label last
    shown = [[row[key] for key in shown_columns] for row in shown_sorts(filtered)]
    assert len(rows) == len(shown) > 0
    assert [row[:2] for row in rows] == [row[:2] for row in shown]
    assert {tuple(row[-2:]) for row in rows} == {("ihc", "default")}
    for written, expected in zip(rows, shown, strict=True):
        assert [float(x) if x else None for x in written[2:-2]] == [
            None if value == "" else pytest.approx(float(value), abs=5e-5 + 1e-9) for value in expected[2:]
        ]


def test_the_download_of_all_dates_is_the_csv_file(browser, demo, tmp_path):
    page = open_dashboard(browser, demo.dashboard).page
    with page.expect_download() as download:
        page.click("#download")
    download.value.save_as(tmp_path / "shown.csv")
    assert (tmp_path / "shown.csv").read_bytes() == write_csv(demo.report, tmp_path / "file.csv").read_bytes()


def shown_sorts(page: Page) -> list[dict[str, str]]:
    """The full-precision values behind each report row shown, in the order shown."""
    return page.eval_on_selector_all(
        "#report tbody tr",
        "rows => rows.map(r => Object.fromEntries(Array.from(r.cells, c => [c.dataset.column, c.dataset.sort])))",
    )


def test_filtering_sorting_and_downloading_log_no_error_and_send_no_request(browser, demo):
    opened = open_dashboard(browser, demo.dashboard)
    opened.page.fill("#date-to", FILTERED[1])
    opened.page.locator("#totals th[data-column='CPO']").click()
    with opened.page.expect_download():
        opened.page.click("#download")
    opened.page.click("#date-all")
    assert opened.problems == []


def test_the_downloaded_csv_neutralises_formulas(browser, tmp_path):
    report = with_ratios(
        pl.DataFrame([("=HYPERLINK(1)", "2023-09-01", 1.0, 1.0, 2.0)], schema=TABLE_SCHEMA, orient="row")
    )
    page = open_dashboard(browser, write_dashboard(report, tmp_path / "f.html", run=CONTEXT)).page
    with page.expect_download() as download:
        page.click("#download")
    path = tmp_path / "f.csv"
    download.value.save_as(path)
    assert (
        path.read_text(encoding="utf-8").splitlines()[1]
        == "'=HYPERLINK(1),2023-09-01,1.0000,1.0000,2.0000,1.0000,2.0000"
    )


# The history's edges.


def test_the_days_at_the_historys_edges_are_marked_incomplete_with_the_reason(opened, demo):
    dates = sorted(set(demo.report["date"]))
    marked = dict(
        opened.page.eval_on_selector_all(
            "#chart-trend [data-incomplete]", "els => els.map(e => [e.dataset.key, e.dataset.incomplete])"
        )
    )
    assert set(marked) == {*dates[:2], *dates[-2:]}
    assert all("start" in marked[day] for day in dates[:2])
    assert all("not happened yet" in marked[day] for day in dates[-2:])
    rows = opened.page.eval_on_selector_all(
        "#report tbody tr",
        "rows => rows.map(r => [r.querySelector('[data-column=date]').textContent, r.matches('.incomplete')])",
    )
    assert {day for day, incomplete in rows if incomplete} == set(marked)
    assert "incomplete" in opened.page.locator("#edge-note").text_content()


# Reports at the edges of what a page can hold.

TABLE_SCHEMA = {"channel_name": pl.String, "date": pl.String} | dict.fromkeys(
    ("cost", "ihc", "ihc_revenue"), pl.Float64
)
"""``channel_reporting``'s columns, for reports built by hand."""
EDGE_CASES = {
    "no spend, no orders, a hostile channel name": [
        ("<img src=x onerror=alert(1)>", "2023-09-01", 0.0, 0.0, 0.0)
    ],
    "no rows": [],
}


@pytest.mark.parametrize("case", EDGE_CASES)
def test_edge_reports_open_cleanly(browser, tmp_path, case):
    report = with_ratios(pl.DataFrame(EDGE_CASES[case], schema=TABLE_SCHEMA, orient="row"))
    opened = open_dashboard(browser, write_dashboard(report, tmp_path / "edge.html", run=CONTEXT))
    assert opened.problems == []
    assert (
        opened.page.locator("#report tbody td:first-child").all_text_contents()
        == report["channel_name"].to_list()
    )
    figures = shown_headline(opened.page)
    assert {key for key, text in figures.items() if text == "—"} >= {"paid_roas", "paid_cpo", "blended_roas"}
    assert opened.page.locator("#chart-models").count() == 0


def test_the_comparison_needs_two_models_on_the_reports_dates(demo, tmp_path):
    def page(models: list[str], date: str) -> str:
        frame = pl.DataFrame({"model": models, "channel_name": "Referral", "date": date, "ihc": 1.0})
        return write_dashboard(
            demo.report, tmp_path / "c.html", run=replace(CONTEXT, by_model=frame)
        ).read_text()

    assert 'id="chart-models"' in page(["linear", "shapley"], "2023-09-01")
    assert 'id="chart-models"' not in page(["linear", "linear"], "2023-09-01")
    assert 'id="chart-models"' not in page(["linear", "shapley"], "2031-01-01")  # no date of the report


def test_the_report_commands_dashboard_compares_the_stored_models(make_sqlite, tmp_path):
    db = make_sqlite(PAID)
    for model in ("linear", "last-touch"):
        run(load_settings(db=db, out=str(tmp_path / model), model=model))
    assert attribution_in_process("report", "--db", db, "--out", str(tmp_path / "r"), "--html") == (0, "")
    assert 'id="chart-models"' in (tmp_path / "r" / "dashboard.html").read_text()
    assert (
        'id="chart-models"' not in (tmp_path / "last-touch" / "dashboard.html").read_text()
    )  # a run's: none


def test_the_same_report_and_context_give_the_same_bytes(demo, tmp_path):
    first = write_dashboard(demo.report, tmp_path / "a.html", run=CONTEXT).read_bytes()
    assert write_dashboard(demo.report, tmp_path / "b.html", run=CONTEXT).read_bytes() == first
    assert b"<script src=" not in first and b"<link " not in first


def test_the_report_command_shows_the_last_succeeded_run(make_sqlite, tmp_path):
    db = make_sqlite(PAID)
    summary = run(load_settings(db=db, out=str(tmp_path), model="linear", start="2023-09-01"))
    engine = connect(db)
    with engine.connect() as conn:
        context = latest_run_context(conn)
    engine.dispose()
    assert (context.model, context.time_range, context.run_id) == (
        "linear",
        summary.time_range,
        summary.run_id,
    )


HOSTILE = (
    '</script><img src=x onerror="alert(1)">',
    '<a href="https://evil.example">x</a>',
    "<b>Bold</b> & <i>Co</i>",
    "FB & IG Ads",
)


def test_a_channel_name_with_markup_is_shown_as_text_everywhere(browser, tmp_path):
    rows = [(name, "2023-09-01", 10.0, 1.0, 50.0) for name in HOSTILE]
    report = with_ratios(pl.DataFrame(rows, schema=TABLE_SCHEMA, orient="row"))
    by_model = pl.DataFrame(
        {
            "channel_name": list(HOSTILE) * 2,
            "model": ["linear"] * 4 + ["ihc"] * 4,
            "date": "2023-09-01",
            "ihc": [1.0] * 8,
        }
    )
    opened = open_dashboard(
        browser, write_dashboard(report, tmp_path / "markup.html", run=replace(CONTEXT, by_model=by_model))
    )
    page = opened.page
    assert opened.problems == []
    assert page.locator("img, a[href*='evil'], [*|href*='evil'], td b, td i, svg b, svg i").count() == 0
    for table in ("report", "totals"):
        shown = page.locator(f"#{table} tbody td[data-column='channel_name']").all_text_contents()
        assert sorted(shown) == sorted(HOSTILE), table
    for chart in ("chart-share", "chart-ratios", "chart-models"):
        labels = page.locator(f"#{chart} text.channel").all_text_contents()
        assert sorted(set(labels)) == sorted(HOSTILE), chart
