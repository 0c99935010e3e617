"""Two CLI runs at once on one SQLite file and on PostgreSQL, as two users start them, 20 times over (a CLI
run beside a DAG run: ``tests/dags/test_dag_concurrency.py``): both end well (or one waits and reports the
lock), and the tables equal one of the two serial orders, never a mix."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from attribution.reporting.channel_report import REPORT_VIEW
from attribution.warehouse.tables import metadata
from tests.builders import write_case
from tests.cases import PAID
from tests.commands import CommandProcess, assert_ended_well
from tests.oracle import read_tables, serial_tables

MODELS = ("last-touch", "first-touch")
RANGE = ("2023-09-01", "2023-09-06")
REPEATS = 20
STAGGER = 0.02
"""Seconds between the second run's starts over the repeats (0 to 0.18 s after the first): the overlap
sweeps the first run's steps, from the creation of the output tables to its commit."""


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A factory of the PAID case in a database without output tables: a new SQLite file each call, or
    PostgreSQL's one test schema emptied and filled again."""
    if request.param == "sqlite":
        counter = iter(range(1_000_000))

        def new_file() -> str:
            db = str(tmp_path / f"shared-{next(counter)}.db")
            write_case(db, PAID)
            return db

        yield new_file
        return
    url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)

    def refilled() -> str:
        with engine.begin() as conn:  # the view over the report first: PostgreSQL keeps a table a view reads
            conn.execute(text(f"DROP VIEW IF EXISTS {REPORT_VIEW}"))
        metadata.drop_all(engine)
        write_case(url, PAID)
        return url

    yield refilled
    engine.dispose()


def test_two_cli_runs_at_once_end_as_one_of_the_serial_orders(fresh, tmp_path):
    references = [serial_tables(fresh(), tmp_path, order, *RANGE) for order in (MODELS, MODELS[::-1])]
    assert references[0] != references[1]
    barrier = CommandProcess.barrier(len(MODELS))
    runs = [CommandProcess(barrier) for _ in MODELS]
    try:
        for attempt in range(REPEATS):
            db = fresh()
            for process, model, delay in zip(runs, MODELS, (0.0, STAGGER * (attempt % 10)), strict=True):
                args = ("--db", db, "--model", model, "--out", str(tmp_path / model), "--format", "csv")
                process.start("run", *args, "--start", RANGE[0], "--end", RANGE[1], delay=delay)
            assert_ended_well([process.result() for process in runs])
            assert read_tables(db) in references, f"attempt {attempt}: the tables are a mix of both runs"
    finally:
        for process in runs:
            process.close()
