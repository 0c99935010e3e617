"""A real Airflow for the DAG tests: a throw-away AIRFLOW_HOME whose metadata database is migrated once per
session, the DAG folder parsed once, a generated warehouse per test, and the project's IHC server.

Why Airflow is imported inside fixtures only: it reads its configuration when first imported, so the
environment below must be in place before that; the other test folders never import it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from attribution.ihc_api.local import LocalServer
from attribution.sample_data.generate import generate_database
from tests.servers import API_KEY

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"
DAG_ID = "attribution_pipeline"
DAYS = ("2023-08-29", "2023-08-30", "2023-08-31", "2023-09-01", "2023-09-02", "2023-09-03")
"""The generated warehouse's conversion dates, and the day after them."""


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point Airflow at a fresh home (no examples, the repository's DAG folder) and migrate its database."""
    if "airflow" in sys.modules:
        pytest.fail("Airflow was imported before its test environment was set; import it inside fixtures")
    home = tmp_path_factory.mktemp("airflow-home")
    environment = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, timeout=300
        )
        print(f"\nairflow db migrate: {time.perf_counter() - began:.1f} s")
        yield home


@pytest.fixture(scope="session")
def dag_bag(airflow_home: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


@pytest.fixture(scope="session")
def pipeline_dag(dag_bag: Any) -> Any:
    assert not dag_bag.import_errors, dag_bag.import_errors
    return dag_bag.dags[DAG_ID]


@pytest.fixture(scope="session")
def source_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 conversions over five days (2023-08-29 to 2023-09-02), 20,000 sessions."""
    path = tmp_path_factory.mktemp("dag-db") / "source.db"
    generate_database(path, sessions=20_000, conversions=300, days=5, seed=11)
    return path


@pytest.fixture
def warehouse(source_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """A factory: a fresh copy of the generated warehouse, made the one the DAG's connection points at."""

    def make(name: str = "warehouse") -> Path:
        path = tmp_path / f"{name}.db"
        shutil.copy(source_db, path)
        use_warehouse(monkeypatch, path)
        return path

    return make


def use_warehouse(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Point the connection ``attribution_db`` at ``path`` and the report files beside it."""
    connection = {"conn_type": "sqlite", "host": str(path)}
    monkeypatch.setenv("AIRFLOW_CONN_ATTRIBUTION_DB", json.dumps(connection))
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_OUT", str(reports_of(path)))


def reports_of(path: Path) -> Path:
    return path.parent / f"{path.stem}-reports"


def run_dag(dag: Any, day: str | None = "2023-09-02", **conf: object) -> Any:
    """``dag.test()`` for the run with logical date ``day`` (a manual run: it covers the day before; without
    a logical date, the day before today).

    Why the params are restored: in one process Airflow 3.3 writes a run's conf into the DAG's own ``Param``
    objects, so the next in-process run would inherit them (workers, which parse the file per task, do not).
    Why ``on_stale`` warns unless given: the hand-made warehouses end hours before the days these runs cover,
    which a schedule's default (``error``) refuses; ``test_a_stale_day_fails_the_scheduled_run`` runs it.
    """
    conf = {"on_stale": "warn", **conf}
    logical_date = None if day is None else datetime.fromisoformat(day).replace(tzinfo=UTC)
    owners = [dag.params, *(task.params for task in dag.tasks)]
    defaults = [(param, param.value) for params in owners for param in map(params.get_param, params)]
    try:
        return dag.test(logical_date=logical_date, run_conf=conf or None)
    finally:
        for param, value in defaults:
            param.value = value


def task_states(dag_run: Any) -> dict[tuple[str, int], tuple[str, int]]:
    """(task id, map index) -> (state, try number) of every task instance of the run."""
    return {(ti.task_id, ti.map_index): (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}


def use_ihc_server(monkeypatch: pytest.MonkeyPatch, server: LocalServer) -> None:
    """The connection ``ihc_api``: the server's URL as host, the key as password."""
    connection = {"conn_type": "http", "host": server.url, "password": API_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_IHC_API", json.dumps(connection))
    monkeypatch.delenv("IHC_API_KEY", raising=False)
