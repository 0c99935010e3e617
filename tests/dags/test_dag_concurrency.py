"""A CLI run beside a DAG run (``dag.test()``) on one SQLite file, started together over and over: both end
well (or the CLI run waits and reports the lock), and the tables equal one of the two serial orders."""

from __future__ import annotations

from tests.builders import write_case
from tests.cases import PAID
from tests.commands import CommandProcess, assert_ended_well
from tests.dags.conftest import run_dag, use_warehouse
from tests.oracle import read_tables, serial_tables

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
