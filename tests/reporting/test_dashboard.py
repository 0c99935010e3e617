"""The HTML dashboard, opened in headless Chromium: no errors, no network, charts drawn, figures that equal
the ``channel_reporting`` table.

Chromium is Debian's (``scripts/install-chromium.sh``), driven by playwright without downloading a browser.
Without it these tests are skipped, saying why; ATTRIBUTION_REQUIRE_CHROMIUM=1 makes that a failure instead.
A screenshot of each page opened is kept under pytest's temporary directory, ``dashboard-*/``.
"""

from __future__ import annotations

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
from attribution.reporting.metrics import with_ratios
from attribution.warehouse.engine import connect
from attribution.warehouse.generate import PAID_CHANNELS, generate_database
from tests.cases import PAID

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
CHARTS = {"chart-share": 2, "chart-trend": 2, "chart-ratios": 2, "chart-models": len(MODELS)}
CONTEXT = DashboardContext("[2023-08-29 00:00:00, +inf)", "ihc", "purchase", "0123456789abcdef", "2023-09-08")


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
    page = browser.new_page(viewport={"width": 1280, "height": 2000})
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.on("request", lambda request: _record_network(request, problems))
    page.route("http*://**", lambda route: route.abort())
    page.goto(path.as_uri())
    page.wait_for_function(
        "[...document.querySelectorAll('.plotly-graph-div')].every(d => d.querySelector('.main-svg'))"
    )
    screenshot = path.with_suffix(".png")
    page.screenshot(path=screenshot)
    return Opened(page, problems, screenshot)


def _record_network(request: Request, problems: list[str]) -> None:
    if not request.url.startswith(("file:", "data:", "blob:", "about:")):
        problems.append(f"network: {request.url}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """A small challenge-like database run with several models; the dashboard compares them."""
    folder = tmp_path_factory.mktemp("dashboard-demo")
    db = str(generate_database(folder / "demo.db", sessions=20_000, conversions=400).path)
    by_model = [credit_by_channel(db, model, folder) for model in MODELS]
    engine = connect(db)
    with engine.connect() as conn:
        report = read_channel_report(conn)
    engine.dispose()
    context = replace(CONTEXT, by_model=pl.concat(by_model))
    return Demo(db, write_dashboard(report, folder / "dashboard.html", run=context), report)


def credit_by_channel(db: str, model: str, out: Path) -> pl.DataFrame:
    """Run one model and total its credit per channel: the frame ``compare_models`` gives."""
    run(load_settings(db=db, out=str(out), model=model))
    engine = connect(db)
    with engine.connect() as conn:
        totals = read_channel_report(conn).group_by("channel_name").agg(pl.col("ihc", "ihc_revenue").sum())
    engine.dispose()
    return totals.select("channel_name", model=pl.lit(model), ihc="ihc", ihc_revenue="ihc_revenue")


@pytest.fixture(scope="module")
def opened(browser: Browser, demo: Demo) -> Opened:
    return open_dashboard(browser, demo.dashboard)


def stored_rows(db: str) -> list[tuple]:
    """``channel_reporting`` read with SQL alone, ratios computed here: the reference the page must match."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT channel_name, date, cost, ihc, ihc_revenue FROM channel_reporting ORDER BY date, channel_name"
        ).fetchall()
    return [
        (
            channel,
            day,
            cost,
            ihc,
            revenue,
            cost / ihc if ihc > 0 else None,
            revenue / cost if cost > 0 else None,
        )
        for channel, day, cost, ihc, revenue in rows
    ]


def shown_number(text: str) -> float | None:
    """A figure as the page shows it: ``€1,234.57`` or a dash for undefined."""
    return None if text == "—" else float(text.replace("€", "").replace(",", ""))


def shown_headline(page: Page) -> dict[str, float | None]:
    pairs = page.eval_on_selector_all(
        "[data-figure]", "els => els.map(e => [e.dataset.figure, e.querySelector('.value').textContent])"
    )
    return {key: shown_number(text) for key, text in pairs}


def shown_column(page: Page, index: int) -> list[str]:
    return page.eval_on_selector_all(
        "#report tbody tr", f"rows => rows.map(r => r.cells[{index}].dataset.sort)"
    )


def approx_or_none(value: float | None) -> object:
    """A stored number as the page shows it, to two decimals: half a cent off at most (a stored 0.725 is the
    binary 0.72499..., shown as 0.72), plus float noise."""
    return None if value is None else pytest.approx(value, abs=0.005 + 1e-9)


def test_the_page_opens_offline_without_errors_and_keeps_a_screenshot(opened):
    assert opened.problems == []
    assert opened.screenshot.stat().st_size > 20_000


@pytest.mark.parametrize(("chart", "traces"), CHARTS.items())
def test_every_chart_is_drawn(opened, chart, traces):
    box = opened.page.locator(f"#{chart} .main-svg").first.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 200
    assert opened.page.locator(f"#{chart} .trace").count() == traces
    assert opened.page.locator(f"#{chart} .point, #{chart} .js-line").count() > 0


def test_headline_figures_equal_sums_over_the_stored_report(opened, demo):
    rows = stored_rows(demo.db)
    spend, orders, revenue = (sum(row[i] for row in rows) for i in (2, 3, 4))
    assert shown_headline(opened.page) == {
        "spend": approx_or_none(spend),
        "revenue": approx_or_none(revenue),
        "orders": approx_or_none(orders),
        "ROAS": approx_or_none(revenue / spend),
        "CPO": approx_or_none(spend / orders),
    }


def test_every_table_cell_equals_the_stored_report(opened, demo):
    cells = opened.page.eval_on_selector_all(
        "#report tbody tr", "rows => rows.map(r => Array.from(r.cells, c => c.textContent))"
    )
    shown = sorted((day, channel, *map(shown_number, numbers)) for channel, day, *numbers in cells)
    assert [(channel, day, *numbers) for day, channel, *numbers in shown] == [
        (*row[:2], *map(approx_or_none, row[2:])) for row in stored_rows(demo.db)
    ]


def test_undefined_ratios_are_shown_as_a_dash_with_the_reason(opened, demo):
    unpaid = set(demo.report["channel_name"]) - PAID_CHANNELS
    labels = opened.page.locator("#chart-ratios .bartext").all_text_contents()
    assert labels.count("— no spend") == len(unpaid) > 0
    assert "—" in opened.page.locator("#report td.undefined").all_text_contents()


def test_the_run_parameters_are_shown(opened):
    params = dict(
        opened.page.eval_on_selector_all(
            "#run [data-param]", "els => els.map(e => [e.dataset.param, e.querySelector('b').textContent])"
        )
    )
    assert params == {
        "Report dates": "2023-08-29 to 2023-09-07",
        "Run's range": CONTEXT.time_range,
        "Model": "ihc",
        "Conversion type": "purchase",
        "Run": CONTEXT.run_id,
        "Generated": "2023-09-08",
    }


def test_clicking_a_heading_sorts_the_table_with_undefined_values_last(opened):
    roas = opened.page.locator("#report th", has_text="ROAS")
    for clicks, descending in ((1, False), (2, True)):
        roas.click()
        values = shown_column(opened.page, 6)
        defined = [float(v) for v in values if v]
        assert defined == sorted(defined, reverse=descending), f"after {clicks} click(s)"
        assert values[len(defined) :] == [""] * (len(values) - len(defined))


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
    assert (figures["ROAS"] is None, figures["CPO"] is None) == (
        report["cost"].sum() == 0,
        report["ihc"].sum() == 0,
    )
    assert opened.page.locator("#chart-models").count() == 0


def test_compare_models_frame_gives_the_side_by_side_chart(demo, tmp_path):
    comparison = pl.DataFrame(
        {
            "model": ["linear", "shapley"],
            "channel_name": ["Referral"] * 2,
            "credit": [1.0, 2.0],
            "revenue": [9.0, 8.0],
        }
    )
    page = write_dashboard(demo.report, tmp_path / "c.html", run=replace(CONTEXT, by_model=comparison))
    assert 'id="chart-models"' in page.read_text()


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


def test_a_channel_name_with_markup_is_shown_as_text_in_every_chart(browser, tmp_path):
    hostile = '<a href="https://evil.example">x</a>'
    names = [hostile, "<b>Bold</b> & <i>Co</i>", "FB & IG Ads"]
    rows = [(name, "2023-09-01", 10.0, 1.0, 50.0) for name in names]
    report = with_ratios(pl.DataFrame(rows, schema=TABLE_SCHEMA, orient="row"))
    by_model = pl.DataFrame(
        {"channel_name": names * 2, "model": ["linear"] * 3 + ["ihc"] * 3, "ihc": [1.0] * 6}
    )
    page = open_dashboard(
        browser, write_dashboard(report, tmp_path / "markup.html", run=replace(CONTEXT, by_model=by_model))
    ).page
    assert page.locator("a[href*='evil'], [*|href*='evil']").count() == 0
    assert page.locator(".main-svg b, .main-svg i, .main-svg [style*='bold']").count() == 0
    for chart, axis in (("chart-share", "ytick"), ("chart-ratios", "ytick"), ("chart-models", "xtick")):
        shown = page.locator(f"#{chart} .{axis} text").all_text_contents()
        assert sorted(set(shown)) == sorted(names), chart
