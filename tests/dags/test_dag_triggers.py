"""The runs Airflow itself starts: a manual trigger with a logical date as ``airflow dags trigger -l`` makes it,
a backfill over a day a manual run holds, a task that fails for good, a range without conversions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from attribution.app.scheduled_settings import run_day
from tests.dags.conftest import DAG_ID, DAGS_FOLDER, run_dag, task_states
from tests.dags.test_dag_runs import query

DAY = "2023-09-01T00:00:00+00:00", "2023-09-02T00:00:00+00:00"
"""The day a manual run with logical date 2023-09-02 covers: the last whole day before it."""


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def run_range(dag_run: Any) -> tuple[str, str]:
    """The range the DAG's first task resolves for ``dag_run``."""
    return run_day(dag_run)


@pytest.fixture
def metadata(pipeline_dag: Any) -> Iterator[Any]:
    """A session on Airflow's metadata database with the DAG serialised in it and none of its runs: the runs
    of earlier tests hold their logical dates, and a backfill no scheduler runs stays active and blocks the
    next one. The runs and backfills made meanwhile are deleted afterwards."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    DagBundlesManager().sync_bundles_to_db()
    bag = BundleDagBag(dag_folder=str(DAGS_FOLDER), bundle_path=DAGS_FOLDER, bundle_name="dags-folder")
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        forget_runs(session)
        yield session
        session.rollback()
        forget_runs(session)


def forget_runs(session: Any) -> None:
    """Delete the DAG's runs and every backfill from the metadata database."""
    from airflow.models import DagRun
    from airflow.models.backfill import Backfill, BackfillDagRun
    from sqlalchemy import delete

    session.execute(delete(BackfillDagRun))
    session.execute(delete(DagRun).where(DagRun.dag_id == DAG_ID))
    session.execute(delete(Backfill))
    session.commit()


def test_a_manual_run_triggered_with_a_logical_date_covers_the_day_before_it(metadata):
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.utils.types import DagRunTriggeredByType

    # what `airflow dags trigger attribution_pipeline -l 2023-09-02T00:00:00+00:00` does
    dag_run = trigger_dag(
        DAG_ID, triggered_by=DagRunTriggeredByType.CLI, logical_date=moment("2023-09-02"), session=metadata
    )
    assert dag_run.run_type == "manual" and dag_run.logical_date == moment("2023-09-02")
    assert run_range(dag_run) == DAY


def test_a_backfill_reprocessing_a_day_a_manual_run_held_covers_that_day(pipeline_dag, warehouse, metadata):
    from airflow.models import DagRun
    from airflow.models.backfill import ReprocessBehavior, _create_backfill
    from sqlalchemy import select

    warehouse()
    assert run_dag(pipeline_dag, "2023-09-02", model="linear").state == "success"  # covers 2023-09-01
    dates = {"from_date": moment("2023-08-31"), "to_date": moment("2023-09-02")}
    options = {"dag_id": DAG_ID, "max_active_runs": 1, "reverse": False, "dag_run_conf": None}
    backfill = _create_backfill(
        **options, **dates, triggering_user_name=None, reprocess_behavior=ReprocessBehavior.COMPLETED
    )
    runs = metadata.scalars(select(DagRun).where(DagRun.backfill_id == backfill.id)).all()
    assert {run.run_type for run in runs} == {"backfill"}
    assert sorted(run_range(run) for run in runs) == [
        ("2023-08-31T00:00:00+00:00", "2023-09-01T00:00:00+00:00"),
        ("2023-09-01T00:00:00+00:00", "2023-09-02T00:00:00+00:00"),
        ("2023-09-02T00:00:00+00:00", "2023-09-03T00:00:00+00:00"),  # the manual run's, cleared and rerun
    ]


def test_a_task_that_fails_for_good_records_the_failure_on_the_run_record(
    pipeline_dag, warehouse, ihc_servers, monkeypatch
):
    db = warehouse()
    refused = {"conn_type": "http", "host": ihc_servers["clean"].url, "password": "not-the-key"}
    monkeypatch.setenv("AIRFLOW_CONN_IHC_API", json.dumps(refused))
    dag_run = run_dag(pipeline_dag, model="ihc-api")
    assert dag_run.state == "failed"
    assert task_states(dag_run)[("attribute_batch", 0)] == ("failed", 1)  # refused key: no retry
    [(status, summary)] = query(db, "SELECT status, summary FROM attribution_runs")
    assert status == "failed"
    error = json.loads(summary)["error"]
    assert error.startswith("AuthenticationError: ") and "\n" not in error and "not-the-key" not in error


def test_a_range_without_conversions_says_so_in_the_log_and_the_summary(pipeline_dag, warehouse, capfd):
    db = warehouse()
    assert run_dag(pipeline_dag, "2024-01-10").state == "success"
    [(status, summary)] = query(db, "SELECT status, summary FROM attribution_runs")
    note = (
        "No conversions in [2024-01-09 00:00:00, 2024-01-10 00:00:00): the warehouse's conversions are dated "
        "2023-08-29 to 2023-09-02"
    )
    assert status == "succeeded" and json.loads(summary)["notes"] == [note]
    assert note in capfd.readouterr().out
