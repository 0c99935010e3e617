"""A CLI run beside a DAG run (``dag.test()``) on one SQLite file, started together: over and over with
local models, both end well (or the CLI run waits and reports the lock) and the tables equal one of the two
serial orders; with the IHC API, the service is sent each journey once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing

import pytest

from attribution.ihc_api.local import LocalServer
from tests.builders import write_case
from tests.cases import PAID
from tests.commands import CommandProcess, assert_ended_well
from tests.dags.conftest import DAYS, run_dag, use_ihc_server, use_warehouse
from tests.ihc_api.conftest import server_stats
from tests.oracle import read_tables, serial_tables
from tests.servers import API_KEY

RANGE = {"start": "2023-09-01", "end": "2023-09-06"}
CLI_MODEL, DAG_MODEL = "last-touch", "first-touch"
REPEATS = 20
STAGGER = 0.15
"""Seconds between the CLI run's starts over the repeats (0 to 2.85 s after the DAG run's): the CLI run
lands in each of the DAG's tasks in turn, from preparing the warehouse to storing the credit."""


def test_a_cli_run_beside_a_dag_run_ends_as_one_of_the_serial_orders(pipeline_dag, tmp_path, monkeypatch):
    references = []
    for order in ((CLI_MODEL, DAG_MODEL), (DAG_MODEL, CLI_MODEL)):
        write_case(db := str(tmp_path / f"{'-then-'.join(order)}.db"), PAID)
        references.append(serial_tables(db, tmp_path, order, RANGE["start"], RANGE["end"]))
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_FORMATS", "csv")
    barrier = CommandProcess.barrier(2)
    cli = CommandProcess(barrier)
    try:
        for attempt in range(REPEATS):
            shared = tmp_path / f"shared-{attempt}.db"
            write_case(db := str(shared), PAID)
            use_warehouse(monkeypatch, shared)
            args = ("--db", db, "--model", CLI_MODEL, "--out", str(tmp_path / "cli"), "--format", "csv")
            cli.start("run", *args, "--start", RANGE["start"], "--end", RANGE["end"], delay=STAGGER * attempt)
            barrier.wait()
            dag_run = run_dag(pipeline_dag, **RANGE, model=DAG_MODEL)
            assert dag_run.state == "success", f"attempt {attempt}"
            assert_ended_well([cli.result()])
            assert read_tables(db) in references, f"attempt {attempt}: the tables are a mix of both runs"
    finally:
        cli.close()


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A server of its own (its journey count is this module's alone), 300 ms per request."""
    log = tmp_path_factory.mktemp("slow-server") / "server.log"
    with LocalServer.launch(log, "--latency-ms", "300", api_key=API_KEY) as server:
        yield server


def test_a_dag_run_beside_a_cli_ihc_api_run_sends_each_journey_once(
    pipeline_dag, warehouse, slow_server, tmp_path, monkeypatch
):
    db = warehouse()
    use_ihc_server(monkeypatch, slow_server)
    monkeypatch.setenv("AIRFLOW_VAR_ATTRIBUTION_FORMATS", "csv")
    monkeypatch.setenv("IHC_API_KEY", API_KEY)  # the CLI run's process inherits it
    whole = {"start": DAYS[0], "end": DAYS[-1]}
    barrier = CommandProcess.barrier(2)
    cli = CommandProcess(barrier)
    before = server_stats(slow_server)["journeys"]
    try:
        # four journeys a request, one request at a time: the CLI run is still sending as the DAG run stages
        cli.start(
            *("run", "--db", str(db), "--model", "ihc-api", "--ihc-url", slow_server.url),
            *("--start", whole["start"], "--end", whole["end"], "--out", str(tmp_path / "cli")),
            *("--format", "csv", "--max-journeys", "4", "--concurrency", "1"),
        )
        barrier.wait()
        dag_run = run_dag(pipeline_dag, **whole, model="ihc-api", batch_journeys=60)
        code, errors = cli.result()
    finally:
        cli.close()
    assert (dag_run.state, code) == ("success", 0), errors
    with closing(sqlite3.connect(db)) as con:
        credited = con.execute("SELECT COUNT(DISTINCT conv_id) FROM attribution_customer_journey").fetchone()[
            0
        ]
        statuses = sorted(status for (status,) in con.execute("SELECT status FROM attribution_runs"))
    assert credited == 291 and statuses == ["succeeded", "succeeded"]
    assert server_stats(slow_server)["journeys"] - before == credited
