"""Credit per model: two models' runs over overlapping ranges keep each its own credit, and the report and its
files are one model's, saying which.

Before the fix one credit table held whatever model ran last over each range: ``linear`` over every
conversion, then ``last-touch`` over a day, left ``last-touch`` credit for that day's conversions beside
``linear`` credit for the others, and a report summing both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import inspect, text

from attribution import load_settings, run
from attribution.reporting.model_comparison import channel_totals, compare_stored_models
from attribution.sample_data.generate import generate_database
from attribution.warehouse.engine import open_engine
from tests.cases import PAID
from tests.commands import attribution_in_process
from tests.servers import API_KEY

DAY = {"start": "2023-09-05", "end": "2023-09-06"}
"""A range holding some of PAID's conversions (c2 and c5): overlaps a run over every conversion."""


def run_pipeline(db: str, out: Path, **options):
    return run(load_settings(db=db, out=str(out), formats=("csv",), **options))


def query(db: str, sql: str, **params) -> list[tuple]:
    with open_engine(db) as engine, engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(text(sql), params))


def credit_of(db: str, model: str) -> list[tuple]:
    """The stored credit of one model: (conversion, session, ihc)."""
    sql = "SELECT conv_id, session_id, ihc FROM attribution_customer_journey WHERE model = :model"
    return query(db, sql, model=model)


def credit_by_channel_date(db: str, model: str) -> dict[tuple[str, str], float]:
    """One model's stored credit per channel and session date, where it is not 0."""
    sums: dict[tuple[str, str], float] = defaultdict(float)
    sql = "SELECT channel_name, event_date, ihc FROM attribution_customer_journey WHERE model = :model"
    for channel, day, ihc in query(db, sql, model=model):
        sums[(channel, day)] += ihc
    return {key: total for key, total in sums.items() if total}


def report_credit(db: str) -> dict[tuple[str, str], float]:
    """The report's credit per channel and date, where it is not 0."""
    rows = query(db, "SELECT channel_name, date, ihc FROM channel_reporting")
    return {(channel, day): ihc for channel, day, ihc in rows if ihc}


def test_two_models_over_overlapping_ranges_keep_each_its_own_credit(make_db, tmp_path):
    both, linear_alone, last_touch_alone = make_db(PAID), make_db(PAID), make_db(PAID)
    run_pipeline(both, tmp_path / "1", model="linear")
    run_pipeline(both, tmp_path / "2", model="last-touch", **DAY)
    run_pipeline(linear_alone, tmp_path / "3", model="linear")
    run_pipeline(last_touch_alone, tmp_path / "4", model="last-touch", **DAY)
    assert credit_of(both, "linear") == credit_of(linear_alone, "linear")
    assert credit_of(both, "last-touch") == credit_of(last_touch_alone, "last-touch")


def test_the_report_counts_the_credit_of_the_run_s_model_alone(make_db, tmp_path):
    db = make_db(PAID)
    run_pipeline(db, tmp_path / "1", model="linear")
    run_pipeline(db, tmp_path / "2", model="last-touch", **DAY)
    assert report_credit(db) == pytest.approx(credit_by_channel_date(db, "last-touch"), abs=1e-12)


def test_the_files_of_a_model_of_record_equal_those_of_its_run_alone(make_db, tmp_path):
    both, alone = make_db(PAID), make_db(PAID)
    run_pipeline(both, tmp_path / "both", model="linear")
    run_pipeline(both, tmp_path / "both", model="last-touch", report_model="linear", **DAY)
    run_pipeline(alone, tmp_path / "alone", model="linear")
    report = "SELECT * FROM channel_reporting"
    assert query(both, report) == query(alone, report)
    csv = (tmp_path / "both/channel_reporting.csv").read_bytes()
    assert csv == (tmp_path / "alone/channel_reporting.csv").read_bytes()
    assert set(pl.read_csv(tmp_path / "both/channel_reporting.csv")["model"]) == {"linear"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "generated.db"
    generate_database(path, sessions=4_000, conversions=120, days=5, seed=3)
    return path


def test_the_ihc_api_beside_the_local_engine_keeps_both_and_reports_one(generated, ihc_server, tmp_path):
    """The reported defect: ``ihc-api`` over some days after the local ``ihc`` over all of them left a report
    mixing both models' credit."""
    dbs = {name: str(tmp_path / f"{name}.db") for name in ("both", "ihc", "api")}
    for db in dbs.values():
        shutil.copy(generated, db)
    api = {"model": "ihc-api", "ihc_url": ihc_server.url, "ihc_api_key": API_KEY, "max_journeys": 20}
    days = {"start": "2023-08-31", "end": "2023-09-02"}
    run_pipeline(dbs["both"], tmp_path / "1", model="ihc")
    run_pipeline(dbs["both"], tmp_path / "2", **api, **days)
    run_pipeline(dbs["ihc"], tmp_path / "3", model="ihc")
    run_pipeline(dbs["api"], tmp_path / "4", **api, **days)
    assert credit_of(dbs["both"], "ihc") == credit_of(dbs["ihc"], "ihc")
    assert credit_of(dbs["both"], "ihc-api") == credit_of(dbs["api"], "ihc-api")
    reported = report_credit(dbs["both"])
    assert reported == pytest.approx(credit_by_channel_date(dbs["both"], "ihc-api"), abs=1e-9)


def test_the_comparison_is_each_model_s_stored_credit_beside_the_report_s_cost(make_db, tmp_path):
    db = make_db(PAID)
    for model in ("linear", "last-touch"):
        run_pipeline(db, tmp_path, model=model, start="2023-09-01", end="2023-09-06")
    with open_engine(db) as engine, engine.connect() as conn:
        compared = compare_stored_models(conn)
    credit = query(
        db,
        "SELECT a.model, a.channel_name, SUM(a.ihc), SUM(a.ihc * v.revenue) "
        "FROM attribution_customer_journey a JOIN conversions v ON v.conv_id = a.conv_id "
        "WHERE a.event_date IN (SELECT date FROM channel_reporting) GROUP BY a.model, a.channel_name",
    )
    cost = dict(query(db, "SELECT channel_name, SUM(cost) FROM channel_reporting GROUP BY channel_name"))
    rows = {(r["model"], r["channel_name"]): r for r in compared.iter_rows(named=True)}
    assert set(rows) == {(model, channel) for model in ("linear", "last-touch") for channel in cost}
    for model, channel, ihc, revenue in credit:
        row = rows[(model, channel)]
        assert (row["ihc"], row["ihc_revenue"], row["cost"]) == pytest.approx((ihc, revenue, cost[channel]))
        defined = ihc > 0 and cost[channel] > 0  # both ratios need spend (reporting.metrics)
        assert row["CPO"] == (pytest.approx(cost[channel] / ihc) if defined else None)
        assert row["ROAS"] == (pytest.approx(revenue / cost[channel]) if cost[channel] > 0 else None)
    shares = compared.group_by("model").agg(pl.col("credit_share").sum())
    assert shares["credit_share"].to_list() == pytest.approx([1.0, 1.0])


def test_the_channel_totals_are_the_stored_report_s_sums_most_revenue_first(make_db, tmp_path):
    """What `attribution report` and `demo` print: the report's figures summed per channel, as the comparison
    sums them (one rule: ``reporting.model_comparison``)."""
    db = make_db(PAID)
    run_pipeline(db, tmp_path, model="linear")
    with open_engine(db) as engine, engine.connect() as conn:
        totals = channel_totals(conn)
    sums = query(
        db, "SELECT channel_name, SUM(cost), SUM(ihc), SUM(ihc_revenue) FROM channel_reporting GROUP BY 1"
    )
    shown = {
        channel: figures
        for channel, *figures in totals.select("channel_name", "cost", "ihc", "ihc_revenue").rows()
    }
    assert shown.keys() == {channel for channel, *_ in sums}
    for channel, *figures in sums:
        assert shown[channel] == pytest.approx(figures)
    revenue = totals["ihc_revenue"].to_list()
    assert revenue == sorted(revenue, reverse=True) and totals.columns[-2:] == ["CPO", "ROAS"]


def test_the_cli_compares_two_models_and_refuses_fewer_in_one_line(make_sqlite, tmp_path):
    db = make_sqlite(PAID)
    run_pipeline(db, tmp_path, model="linear")
    code, stderr = attribution_in_process("report", "--db", db, "--compare-models")
    assert code == 1 and stderr.strip().splitlines() == [
        "Error: Comparing models needs the stored credit of two models or more; the database holds only "
        "'linear''s: run another model over the same dates first (attribution run --model last-touch)"
    ]
    run_pipeline(db, tmp_path, model="last-touch")
    shown = subprocess.run(
        [sys.executable, "-m", "attribution", "report", "--db", db, "--compare-models"],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, check=True,
    ).stdout  # fmt: skip
    assert "Models side by side" in shown and "last-touch" in shown and "linear" in shown


def test_a_report_model_without_stored_credit_is_refused_in_one_line_before_any_credit(make_sqlite, tmp_path):
    db = make_sqlite(PAID)
    options = ("--format", "csv", "--out", str(tmp_path))
    code, stderr = attribution_in_process("run", "--db", db, "--report-model", "markov", *options)
    assert code == 1 and len(stderr.strip().splitlines()) == 1
    assert "The report model 'markov' has no stored credit in" in stderr
    assert query(db, "SELECT COUNT(*) FROM attribution_customer_journey") == [(0,)]
    assert not (tmp_path / "channel_reporting.csv").exists()


def test_report_switches_the_stored_report_to_another_stored_model(make_sqlite, tmp_path):
    db, alone = make_sqlite(PAID), make_sqlite(PAID)
    run_pipeline(db, tmp_path / "x", model="linear")
    run_pipeline(db, tmp_path / "x", model="last-touch")
    run_pipeline(alone, tmp_path / "alone", model="linear")
    code, stderr = attribution_in_process(
        "report", "--db", db, "--out", str(tmp_path / "x"), "--report-model", "linear"
    )
    assert code == 0, stderr
    assert query(db, "SELECT * FROM channel_reporting") == query(alone, "SELECT * FROM channel_reporting")
    csv = (tmp_path / "x/channel_reporting.csv").read_bytes()
    assert csv == (tmp_path / "alone/channel_reporting.csv").read_bytes()


OLD_CREDIT = (
    "CREATE TABLE attribution_customer_journey (conv_id TEXT NOT NULL, session_id TEXT NOT NULL, "
    "ihc {real} NOT NULL, model TEXT, conv_type_id TEXT, initializer {real}, holder {real}, closer {real}, "
    "event_date TEXT, channel_name TEXT, PRIMARY KEY (conv_id, session_id))"
)
OLD_REPORT = (
    "CREATE TABLE channel_reporting (channel_name TEXT NOT NULL, date TEXT NOT NULL, cost {real} NOT NULL, "
    "ihc {real} NOT NULL, ihc_revenue {real} NOT NULL, PRIMARY KEY (channel_name, date))"
)
"""The output tables as the version before credit per model created them (its ``CreateTable``)."""


def test_a_database_of_the_version_before_upgrades_in_place(make_db, tmp_path):
    """Its credit is re-keyed by label, each row keeping its label (none: the empty one); its mixed report is
    rebuilt to count the next run's model alone."""
    db, alone = make_db(PAID), make_db(PAID)
    real = "REAL" if db.endswith(".db") else "DOUBLE PRECISION"
    old_rows = [  # what the defect left: last-touch's credit of c2, linear's of c1, one row without a label
        ("c2", "a3", 1.0, "last-touch", None, "2023-09-03", "FB & IG Ads"),
        ("c2", "a1", 0.0, "last-touch", None, "2023-09-01", "Paid Search Brand"),
        ("c1", "a1", 0.5, "linear", None, "2023-09-01", "Paid Search Brand"),
        ("c1", "a2", 0.5, None, None, "2023-09-02", "Direct Traffic"),
    ]
    with open_engine(db) as engine, engine.begin() as conn:
        conn.execute(text(OLD_CREDIT.format(real=real)))
        conn.execute(text(OLD_REPORT.format(real=real)))
        conn.execute(
            text(
                "INSERT INTO attribution_customer_journey (conv_id, session_id, ihc, model, conv_type_id, "
                "event_date, channel_name) VALUES (:c, :s, :ihc, :m, :t, :d, :ch)"
            ),
            [dict(zip(("c", "s", "ihc", "m", "t", "d", "ch"), row, strict=True)) for row in old_rows],
        )
        conn.execute(text("INSERT INTO channel_reporting VALUES ('FB & IG Ads', '2023-09-03', 0, 1.5, 150)"))
    run_pipeline(db, tmp_path / "upgraded", model="linear", start="2023-09-05", end="2023-09-06")
    run_pipeline(alone, tmp_path / "alone", model="linear", start="2023-09-05", end="2023-09-06")
    with open_engine(db) as engine:
        key = inspect(engine).get_pk_constraint("attribution_customer_journey")["constrained_columns"]
    assert key == ["conv_id", "session_id", "model", "conv_type_id"]
    kept = "SELECT model, conv_type_id, conv_id, session_id, ihc FROM attribution_customer_journey WHERE model <> 'linear' OR conv_id = 'c1'"
    assert query(db, kept) == sorted(
        [("last-touch", "", "c2", "a3", 1.0), ("last-touch", "", "c2", "a1", 0.0),
         ("linear", "", "c1", "a1", 0.5), ("", "", "c1", "a2", 0.5)]
    )  # fmt: skip
    assert [row for row in credit_of(db, "linear") if row[0] != "c1"] == credit_of(alone, "linear")
    assert report_credit(db) == pytest.approx(credit_by_channel_date(db, "linear"), abs=1e-12)
    assert query(db, "SELECT DISTINCT model FROM channel_reporting") == [("linear",)]
