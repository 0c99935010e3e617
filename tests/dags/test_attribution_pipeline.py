"""The DAG file: it imports cleanly, reads nothing while parsed, and is wired as the pipeline's steps."""

from __future__ import annotations

import runpy
import sys

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
