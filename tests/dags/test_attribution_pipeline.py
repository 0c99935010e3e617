"""The DAG file: it imports cleanly, reads nothing while parsed, and is wired as the pipeline's steps."""

from __future__ import annotations

import json
import runpy
import sys
from types import SimpleNamespace

import pytest

from attribution.models import MODELS
from tests.dags.conftest import DAG_ID, DAGS_FOLDER

DAG_FILE = DAGS_FOLDER / f"{DAG_ID}.py"
TASKS = {
    "prepare_warehouse",
    "stage_journeys",
    "attribute_batch",
    "store_credits",
    "export_report",
    "publish_tableau",
}


def test_the_dag_folder_imports_without_errors(dag_bag):
    assert dag_bag.import_errors == {}
    assert sorted(dag_bag.dag_ids) == [DAG_ID]


def test_the_file_is_named_after_its_dag():
    assert DAG_FILE.is_file()


def test_parsing_reads_no_variable_no_connection_and_imports_no_project_code(airflow_home, monkeypatch):
    from airflow.sdk import BaseHook, Variable

    def refuse(*_args, **_kwargs):
        raise AssertionError("read while the DAG file is parsed")

    monkeypatch.setattr(Variable, "get", refuse)
    monkeypatch.setattr(BaseHook, "get_connection", refuse)
    for name in [n for n in sys.modules if n == "attribution" or n.startswith("attribution.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "attribution", None)  # any import of the package now fails
    namespace = runpy.run_path(str(DAG_FILE))
    assert namespace["attribution_pipeline"] is not None


def test_the_tasks_are_the_pipeline_steps_in_order(pipeline_dag):
    assert set(pipeline_dag.task_ids) == TASKS
    downstream = {task_id: set(pipeline_dag.get_task(task_id).downstream_task_ids) for task_id in TASKS}
    assert downstream == {
        "prepare_warehouse": TASKS - {"prepare_warehouse"},
        "stage_journeys": {"attribute_batch"},
        "attribute_batch": {"store_credits"},
        "store_credits": {"export_report"},
        "export_report": {"publish_tableau"},
        "publish_tableau": set(),
    }


def test_batches_are_mapped_and_every_task_retries(pipeline_dag):
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    assert isinstance(pipeline_dag.get_task("attribute_batch"), MappedOperator)
    assert all(pipeline_dag.get_task(task_id).retries >= 2 for task_id in TASKS)
    assert pipeline_dag.get_task("store_credits").trigger_rule == "none_failed"  # zero batches still report


def test_runs_are_daily_intervals_one_at_a_time_without_catch_up(pipeline_dag):
    from airflow.sdk import CronDataIntervalTimetable

    assert isinstance(pipeline_dag.timetable, CronDataIntervalTimetable)
    assert pipeline_dag.timetable.expression == "0 0 * * *"  # @daily
    assert str(pipeline_dag.timetable.timezone) == "UTC"
    assert pipeline_dag.max_active_runs == 1
    assert pipeline_dag.catchup is False


def test_params_offer_the_range_the_registry_models_the_conversion_type_and_the_input_policies(pipeline_dag):
    params = pipeline_dag.params
    assert set(params.keys()) == {
        *(
            "start",
            "end",
            "model",
            "conv_type_id",
            "on_bad_rows",
            "on_stale",
            "restate_days",
            "batch_journeys",
        )
    }
    assert {params[name] for name in ("start", "end", "model", "conv_type_id", "on_bad_rows")} == {None}
    assert params.get_param("on_bad_rows").schema["enum"] == [None, "error", "skip"]
    assert (params["on_stale"], params["restate_days"]) == ("error", 0)  # docs/airflow.md says why
    offered, registered = set(params.get_param("model").schema["enum"]), {None, *MODELS, "ihc-api"}
    assert offered == registered, f"update MODEL_NAMES in {DAG_FILE.name}: {sorted(registered - {None})}"


@pytest.mark.parametrize(
    ("connection", "url"),
    [
        ({"conn_type": "sqlite", "host": "/data/warehouse.db"}, "sqlite:////data/warehouse.db"),
        (
            {
                "conn_type": "postgres",
                "host": "db",
                "port": 5432,
                "login": "u",
                "password": "p@ss",
                "schema": "w",
            },
            "postgresql+psycopg://u:p%40ss@db:5432/w",
        ),
        (
            {"conn_type": "redshift", "host": "c.example.com", "port": 5439, "login": "u", "schema": "dev"},
            "redshift+redshift_connector://u@c.example.com:5439/dev",
        ),
    ],
)
def test_a_connection_becomes_a_sqlalchemy_url(airflow_home, connection, url):
    from airflow.sdk import Connection

    dag_module = runpy.run_path(str(DAG_FILE))
    assert dag_module["connection_url"](Connection(conn_id="attribution_db", **connection)) == url


def test_a_connection_of_another_type_is_refused_with_the_fix(airflow_home):
    from airflow.sdk import Connection

    from attribution.errors import ConfigError

    connection_url = runpy.run_path(str(DAG_FILE))["connection_url"]
    generic = Connection(conn_id="attribution_db", conn_type="generic", host="/data/warehouse.db")
    with pytest.raises(ConfigError, match="add it by URI"):
        connection_url(generic)


def test_an_http_connection_gives_the_ihc_base_url(airflow_home):
    http_url = runpy.run_path(str(DAG_FILE))["http_url"]

    def connection(host: str, conn_type: str = "generic", port: int | None = None) -> SimpleNamespace:
        return SimpleNamespace(host=host, conn_type=conn_type, schema="", port=port)

    assert http_url(connection("api.example.com")) == "https://api.example.com"
    assert http_url(connection("http://127.0.0.1:8000")) == "http://127.0.0.1:8000"
    assert http_url(connection("127.0.0.1", "http", 8000)) == "http://127.0.0.1:8000"  # from an http:// URI


def test_the_ihc_key_comes_from_the_connection_else_from_the_secret_variable(airflow_home, monkeypatch):
    ihc_api = runpy.run_path(str(DAG_FILE))["_ihc_api"]
    connection = {"conn_type": "http", "host": "https://ihc.example.com", "password": "key-from-connection"}
    monkeypatch.setenv("AIRFLOW_CONN_IHC_API", json.dumps(connection))
    assert ihc_api() == {"ihc_api_key": "key-from-connection", "ihc_url": "https://ihc.example.com"}
    monkeypatch.delenv("AIRFLOW_CONN_IHC_API")
    monkeypatch.setenv("AIRFLOW_VAR_IHC_API_KEY", "key-from-variable")
    assert ihc_api() == {"ihc_api_key": "key-from-variable", "ihc_url": None}


def test_the_database_comes_from_the_connection_else_from_a_variable_else_a_clear_error(
    airflow_home, monkeypatch
):
    from attribution.errors import ConfigError

    database_url = runpy.run_path(str(DAG_FILE))["_database_url"]
    monkeypatch.delenv("ATTRIBUTION_DB", raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_DB_CONN_ID", "warehouse")
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": "/data/w.db"}))
    assert database_url() == "sqlite:////data/w.db"
    monkeypatch.delenv("AIRFLOW_CONN_WAREHOUSE")
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_DB_URL", "postgresql+psycopg://reader@db/warehouse")
    assert database_url() == "postgresql+psycopg://reader@db/warehouse"
    monkeypatch.delenv("AIRFLOW_VAR_ATTRIBUTION_DB_URL")
    with pytest.raises(ConfigError, match="No database: add the connection 'warehouse'"):
        database_url()
