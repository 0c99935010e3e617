"""The DAG's last task publishes the run's Hyper extract to Tableau when the connection ``tableau_default`` is
there, to a fake of Tableau's REST endpoints over real HTTP (``tests/tableau_server.py``), and is skipped
without it (``test_dag_runs.py``'s full run)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing

import pytest

from tests.dags.conftest import reports_of, run_dag, task_states
from tests.tableau_server import SITE, TOKEN_NAME, TOKEN_SECRET, FakeTableau

ONE_DAY = {"start": "2023-09-01", "end": "2023-09-02"}


def use_tableau(monkeypatch: pytest.MonkeyPatch, fake: FakeTableau, **extra: str) -> None:
    """The connection ``tableau_default``: host = the server's URL, login = the token's name, password = its
    secret, extra = site and project."""
    connection = {
        "conn_type": "generic",
        "host": fake.url,
        "login": TOKEN_NAME,
        "password": TOKEN_SECRET,
        "extra": {"site": SITE, "project": "Attribution", **extra},
    }
    monkeypatch.setenv("AIRFLOW_CONN_TABLEAU_DEFAULT", json.dumps(connection))


def test_a_configured_run_publishes_its_extract_and_keeps_the_secret(
    pipeline_dag, warehouse, monkeypatch, airflow_home, capfd
):
    db = warehouse()
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_FORMATS", "csv,hyper")
    with FakeTableau() as fake:
        use_tableau(monkeypatch, fake)
        dag_run = run_dag(pipeline_dag, **ONE_DAY)
    assert dag_run.state == "success"
    assert task_states(dag_run)[("publish_tableau", -1)] == ("success", 1)
    (published,) = fake.publishes
    extract = (reports_of(db) / "channel_reporting.hyper").read_bytes()
    assert hashlib.sha256(published.content).digest() == hashlib.sha256(extract).digest()
    assert (published.datasource, published.project_id, published.query["overwrite"]) == (
        "channel_reporting",
        "p-attribution",
        ["true"],
    )
    captured = capfd.readouterr()
    assert TOKEN_SECRET not in captured.out + captured.err
    for path in [db, *airflow_home.rglob("*")]:  # the run record, the task logs, XComs, the metadata database
        assert not path.is_file() or TOKEN_SECRET.encode() not in path.read_bytes(), path


def test_a_run_without_an_extract_to_publish_fails_the_task_at_once(pipeline_dag, warehouse, monkeypatch):
    db = warehouse()
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_FORMATS", "csv")
    with FakeTableau() as fake:
        use_tableau(monkeypatch, fake)
        dag_run = run_dag(pipeline_dag, **ONE_DAY)
    assert task_states(dag_run)[("publish_tableau", -1)] == ("failed", 1)  # a setting to change: no retry
    assert not fake.requests
    with closing(sqlite3.connect(db)) as conn:  # the run's tables committed: its record keeps succeeded
        assert conn.execute("SELECT status FROM attribution_runs").fetchall() == [("succeeded",)]
