"""Whole DAG runs with ``dag.test()`` on generated SQLite warehouses, checked against the CLI pipeline:
local and remote models, a faulty IHC server, ranges from params and Variables, daily runs against one
longer run, reruns, and bad params refused before any work."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from attribution import load_settings, run
from attribution.warehouse.copy_db import copy_inputs
from attribution.warehouse.tables import WORK_TABLES
from tests.dags.conftest import DAYS, reports_of, run_dag, task_states, use_ihc_server, use_warehouse
from tests.oracle import assert_close, assert_same_tables, read_tables
from tests.servers import API_KEY

WHOLE_RANGE = {"start": DAYS[0], "end": DAYS[-1]}
INPUT_TABLES = ["conversions", "session_costs", "session_sources"]


def pipeline_twin(source: Path, tmp_path: Path, **options) -> Path:
    """The same warehouse after one CLI pipeline run with ``options``: the reference a DAG run must equal."""
    twin = tmp_path / "twin.db"
    shutil.copy(source, twin)
    run(load_settings(db=str(twin), out=str(reports_of(twin)), **options))
    return twin


def query(db: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(db)) as con:
        return con.execute(sql).fetchall()


def tables_of(db: Path) -> list[str]:
    return sorted(name for (name,) in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'"))


def test_a_full_run_gives_the_pipeline_tables_and_files(pipeline_dag, warehouse, source_db, tmp_path):
    db = warehouse()
    dag_run = run_dag(pipeline_dag, **WHOLE_RANGE, batch_journeys=50)
    assert dag_run.state == "success"
    states = task_states(dag_run)
    assert {state for (task_id, _), (state, _) in states.items() if task_id != "publish_tableau"} == {
        "success"
    }
    assert states[("publish_tableau", -1)][0] == "skipped"  # no Tableau connection: not configured
    assert sum(task_id == "attribute_batch" for task_id, _ in states) == 6  # 291 journeys, 50 a batch
    twin = pipeline_twin(source_db, tmp_path, **WHOLE_RANGE)
    assert read_tables(str(db)) == read_tables(str(twin))
    reports = reports_of(db)
    assert (reports / "channel_reporting.csv").read_bytes() == (
        reports_of(twin) / "channel_reporting.csv"
    ).read_bytes()
    assert {path.name for path in reports.iterdir()} >= {"channel_reporting.parquet", "dashboard.html"}
    assert query(db, "SELECT status, model, range_start, range_end FROM attribution_runs") == [
        ("succeeded", "ihc", "2023-08-29 00:00:00", "2023-09-03 00:00:00")
    ]
    for table in WORK_TABLES:
        assert query(db, f"SELECT COUNT(*) FROM {table.name}") == [(0,)]


def test_a_full_run_on_postgresql_gives_the_cli_tables_and_csv(
    pipeline_dag, source_db, postgres_url, tmp_path, monkeypatch
):
    copy_inputs(str(source_db), postgres_url)
    monkeypatch.delenv("AIRFLOW_CONN_ATTRIBUTION_DB", raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_DB_URL", postgres_url)
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_OUT", str(tmp_path / "dag-reports"))
    dag_run = run_dag(pipeline_dag, **WHOLE_RANGE, batch_journeys=100)
    assert dag_run.state == "success"
    twin = pipeline_twin(source_db, tmp_path, **WHOLE_RANGE)
    (credits, report), (twin_credits, twin_report) = read_tables(postgres_url), read_tables(str(twin))
    assert_close(credits, twin_credits)
    assert_close(report, twin_report)
    csv = "channel_reporting.csv"
    assert (tmp_path / "dag-reports" / csv).read_bytes() == (reports_of(twin) / csv).read_bytes()


def test_running_the_same_range_again_gives_identical_tables_and_csv(pipeline_dag, warehouse):
    db = warehouse()
    assert run_dag(pipeline_dag, **WHOLE_RANGE, model="linear").state == "success"
    tables, csv = read_tables(str(db)), (reports_of(db) / "channel_reporting.csv").read_bytes()
    assert run_dag(pipeline_dag, **WHOLE_RANGE, model="linear", batch_journeys=7).state == "success"
    assert read_tables(str(db)) == tables
    assert (reports_of(db) / "channel_reporting.csv").read_bytes() == csv


def test_a_run_through_a_faulty_ihc_server_ends_complete_and_keeps_the_key_secret(
    pipeline_dag, warehouse, source_db, ihc_servers, airflow_home, monkeypatch, tmp_path, capfd
):
    db = warehouse()
    use_ihc_server(monkeypatch, ihc_servers["faulty"])
    options = {"max_journeys": 20, "max_retries": 10}
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_OPTIONS", json.dumps(options))
    dag_run = run_dag(pipeline_dag, **WHOLE_RANGE, model="ihc-api", batch_journeys=60)
    assert dag_run.state == "success"
    assert sum(task_id == "attribute_batch" for task_id, _ in task_states(dag_run)) == 5
    assert query(db, "SELECT status FROM attribution_runs") == [("succeeded",)]
    assert query(db, "SELECT COUNT(*) FROM attribution_failures") == [(0,)]
    assert query(db, "SELECT COUNT(DISTINCT conv_id) FROM attribution_customer_journey") == [(291,)]
    twin = pipeline_twin(
        source_db, tmp_path, **WHOLE_RANGE, model="ihc-api", ihc_url=ihc_servers["clean"].url,
        ihc_api_key=API_KEY, **options,
    )  # fmt: skip
    assert_same_tables(str(db), str(twin))
    captured = capfd.readouterr()
    assert API_KEY not in captured.out + captured.err
    for path in [db, *airflow_home.rglob("*")]:
        assert not path.is_file() or API_KEY.encode() not in path.read_bytes(), path


def test_params_override_the_data_interval_model_and_conversion_type(
    pipeline_dag, warehouse, source_db, tmp_path
):
    db = warehouse()
    override = {"start": "2023-08-30", "end": "2023-08-31 12:00:00", "conv_type_id": "checkout"}
    assert run_dag(pipeline_dag, "2023-09-02", **override, model="linear").state == "success"
    assert query(db, "SELECT model, range_start, range_end FROM attribution_runs") == [
        ("linear", "2023-08-30 00:00:00", "2023-08-31 12:00:00")
    ]
    twin = pipeline_twin(source_db, tmp_path, start=override["start"], end=override["end"], model="linear")
    assert read_tables(str(db)) == read_tables(str(twin))


def test_variables_set_a_manual_runs_range_model_and_formats_and_params_win(
    pipeline_dag, warehouse, monkeypatch
):
    db = warehouse()
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_START", "2023-08-29")
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_END", "2023-08-31")
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_MODEL", "last-touch")
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_FORMATS", "csv")
    assert run_dag(pipeline_dag, end="2023-08-30").state == "success"
    assert query(db, "SELECT model, range_start, range_end FROM attribution_runs") == [
        ("last-touch", "2023-08-29 00:00:00", "2023-08-30 00:00:00")
    ]
    assert [path.name for path in reports_of(db).iterdir()] == ["channel_reporting.csv"]


def test_the_source_mapping_variable_points_every_task_at_the_users_own_names(
    pipeline_dag, warehouse, source_db, tmp_path, monkeypatch
):
    db = warehouse()
    with closing(sqlite3.connect(db)) as con, con:
        con.execute('ALTER TABLE session_sources RENAME TO "Web Sessions"')
        con.execute('ALTER TABLE "Web Sessions" RENAME COLUMN channel_name TO "Channel"')
    mapping = '[session_sources]\ntable = "Web Sessions"\nchannel_name = "Channel"\n'
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_SOURCE_MAPPING", mapping)
    assert run_dag(pipeline_dag, **WHOLE_RANGE, batch_journeys=100).state == "success"
    twin = pipeline_twin(source_db, tmp_path, **WHOLE_RANGE)
    assert read_tables(str(db)) == read_tables(str(twin))


def test_two_daily_runs_equal_one_two_day_run(pipeline_dag, warehouse, monkeypatch):
    daily, longer = warehouse("daily"), warehouse("two-days")
    use_warehouse(monkeypatch, daily)
    for logical_date in (DAYS[1], DAYS[2]):  # manual runs cover the day before: 08-29, then 08-30
        assert run_dag(pipeline_dag, logical_date).state == "success"
    assert query(daily, "SELECT range_start, range_end FROM attribution_runs ORDER BY range_start") == [
        ("2023-08-29 00:00:00", "2023-08-30 00:00:00"),
        ("2023-08-30 00:00:00", "2023-08-31 00:00:00"),
    ]
    use_warehouse(monkeypatch, longer)
    assert run_dag(pipeline_dag, start=DAYS[0], end=DAYS[2]).state == "success"
    (daily_credits, daily_report), (longer_credits, longer_report) = (
        read_tables(str(daily)),
        read_tables(str(longer)),
    )
    assert daily_credits and daily_report
    assert_close(daily_credits, longer_credits)
    assert_close(daily_report, longer_report)
    assert (reports_of(daily) / "channel_reporting.csv").read_bytes() == (
        reports_of(longer) / "channel_reporting.csv"
    ).read_bytes()


def test_a_run_without_logical_date_covers_yesterday_and_an_empty_day_still_reports(pipeline_dag, warehouse):
    db = warehouse()
    dag_run = run_dag(pipeline_dag, None)
    assert dag_run.state == "success"
    states = task_states(dag_run)
    assert ("attribute_batch", 0) not in states  # no conversions yesterday: no batch
    assert states[("store_credits", -1)][0] == states[("export_report", -1)][0] == "success"
    today = datetime.now(UTC).date()
    assert query(db, "SELECT status, range_start, range_end FROM attribution_runs") == [
        ("succeeded", f"{today - timedelta(days=1)} 00:00:00", f"{today} 00:00:00")
    ]


@pytest.mark.parametrize(
    "conf",
    [
        {"start": "yesterday"},
        {"end": "2023-09-01; DROP TABLE conversions"},
        {"model": "lst-touch"},
        {"batch_journeys": 0},
    ],
    ids=["start", "end", "model", "batch_journeys"],
)
def test_bad_params_are_refused_before_the_run_starts(pipeline_dag, warehouse, conf):
    from airflow.sdk.exceptions import ParamValidationError

    db = warehouse()
    with pytest.raises(ParamValidationError):
        run_dag(pipeline_dag, **conf)
    assert tables_of(db) == INPUT_TABLES


@pytest.mark.parametrize("conf", [{"start": "2023-09-02", "end": "2023-09-01"}, {"start": "2023-02-30"}])
def test_an_impossible_range_fails_the_first_task_at_once_before_any_work(pipeline_dag, warehouse, conf):
    db = warehouse()
    dag_run = run_dag(pipeline_dag, **conf)
    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert states[("prepare_warehouse", -1)] == ("failed", 1)  # no retry: a bad setting stays bad
    assert states[("stage_journeys", -1)][0] == "upstream_failed"
    assert tables_of(db) == INPUT_TABLES


def test_an_out_folder_that_is_a_file_fails_the_first_task_at_once_before_any_work(
    pipeline_dag, warehouse, monkeypatch, tmp_path
):
    db = warehouse()
    (tmp_path / "reports").write_text("not a folder")
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_OUT", str(tmp_path / "reports"))
    dag_run = run_dag(pipeline_dag)
    assert dag_run.state == "failed"
    assert task_states(dag_run)[("prepare_warehouse", -1)] == ("failed", 1)
    assert tables_of(db) == INPUT_TABLES


@pytest.mark.parametrize(
    "options",
    [{"Db": "sqlite:////tmp/evil.db"}, {"IHC_API_KEY": "k3y-abc"}, {"Storage_Options": {"key": "k3y-abc"}}],
    ids=["Db", "IHC_API_KEY", "Storage_Options"],
)
def test_the_options_variable_can_set_no_connection_or_secret_in_any_spelling(
    pipeline_dag, warehouse, monkeypatch, tmp_path, capfd, caplog, options
):
    """Issue 21 item 3: ``Db`` made the run use another database, and the task logged the key it returned."""
    db, evil = warehouse(), tmp_path / "evil.db"
    shutil.copy(db, evil)
    options = {name: str(evil) if name == "Db" else value for name, value in options.items()}
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_OPTIONS", json.dumps({**options, "Lookback_Days": 30}))
    dag_run = run_dag(pipeline_dag, model="linear")
    assert dag_run.state == "failed"
    assert task_states(dag_run)[("prepare_warehouse", -1)] == ("failed", 1)
    assert tables_of(db) == tables_of(evil) == INPUT_TABLES
    captured = capfd.readouterr()
    shown = captured.out + captured.err + caplog.text
    assert "must not hold" in shown and "k3y-abc" not in shown


def test_a_database_url_with_an_unencoded_at_fails_the_run_at_once_and_its_log_shows_none_of_the_password(
    pipeline_dag, monkeypatch, tmp_path, capfd, caplog, airflow_home
):
    monkeypatch.delenv("AIRFLOW_CONN_ATTRIBUTION_DB", raising=False)
    url = "postgresql+psycopg://analyst:Kq7@Zx9-w@127.0.0.1:5432/warehouse"
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_DB_URL", url)
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_OUT", str(tmp_path / "reports"))
    dag_run = run_dag(pipeline_dag, model="linear")
    assert dag_run.state == "failed"
    assert task_states(dag_run)[("prepare_warehouse", -1)] == ("failed", 1)  # refused, not retried
    captured = capfd.readouterr()
    shown = captured.out + captured.err + caplog.text
    assert "holds more than one '@'" in shown and "Zx9-w" not in shown
    for path in airflow_home.rglob("*"):
        assert not path.is_file() or b"Zx9-w" not in path.read_bytes(), path


def test_the_options_variable_is_read_without_case(pipeline_dag, warehouse, monkeypatch):
    db = warehouse()
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_OPTIONS", json.dumps({"Chunk_Conversions": 0}))
    dag_run = run_dag(pipeline_dag, model="linear")
    assert dag_run.state == "failed" and tables_of(db) == INPUT_TABLES  # read, checked and refused
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_OPTIONS", json.dumps({"Chunk_Conversions": 7}))
    assert run_dag(pipeline_dag, model="linear").state == "success"
    assert query(db, "SELECT status FROM attribution_runs") == [("succeeded",)]


def test_a_stale_day_fails_the_scheduled_run_and_writes_nothing(pipeline_dag, warehouse):
    db = warehouse()
    dag_run = run_dag(pipeline_dag, "2024-01-10", on_stale="error")  # the param's default (tested above)
    assert dag_run.state == "failed"
    assert task_states(dag_run)[("prepare_warehouse", -1)][0] == "failed"
    tables = {name for (name,) in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not tables & {"channel_reporting", "attribution_customer_journey", "attribution_runs"}
