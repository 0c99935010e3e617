"""Two ``--model ihc-api`` runs at once on one warehouse (a SQLite file, PostgreSQL), against one slow
server: two CLI runs, or a CLI run beside a scheduler's batches (``pipeline.scheduled``). The service is sent
each journey once, and the runs end with the tables of one run; the claims that make it so count only while
their run lives (``store.claims``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from attribution import load_settings, run
from attribution.ihc_api.local import LocalServer
from attribution.pipeline import scheduled
from attribution.sample_data.generate import generate_database
from attribution.warehouse.copy_db import copy_inputs
from attribution.warehouse.engine import connect
from attribution.warehouse.schema import create_output_tables
from attribution.warehouse.tables import attribution_ihc_claims, attribution_runs
from tests.commands import CommandProcess
from tests.ihc_api.conftest import server_stats
from tests.oracle import assert_same_tables, read_tables
from tests.servers import API_KEY

RUNS = 2


@pytest.fixture(scope="module")
def source_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("claims-db") / "source.db"
    generate_database(path, sessions=10_000, conversions=150, days=5, seed=23)
    return path


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """A server of its own (its request count is this module's alone), 300 ms per request."""
    log = tmp_path_factory.mktemp("claims-server") / "server.log"
    with LocalServer.launch(log, "--latency-ms", "300", api_key=API_KEY) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_db(request: pytest.FixtureRequest, source_db: Path, tmp_path: Path) -> str:
    """The source's inputs in the warehouse both runs use."""
    if request.param == "sqlite":
        copy = tmp_path / "shared.db"
        shutil.copy(source_db, copy)
        return str(copy)
    url = request.getfixturevalue("postgres_url")
    copy_inputs(str(source_db), url)
    return url


def api_run(process: CommandProcess, db: str, server: LocalServer, out: Path) -> None:
    process.start(
        *("run", "--db", db, "--model", "ihc-api", "--ihc-url", server.url, "--out", str(out)),
        *("--format", "csv", "--max-journeys", "10", "--concurrency", "2"),
    )


def api_settings(db: str, server: LocalServer, out: Path):
    """The settings of ``api_run``."""
    flags = {"formats": ("csv",), "max_journeys": 10, "concurrency": 2}
    return load_settings(
        db=db, out=str(out), model="ihc-api", ihc_url=server.url, ihc_api_key=API_KEY, **flags
    )


def one_run(db: str, server: LocalServer, out: Path, count: str = "requests") -> int:
    """The requests (or journeys) of the same run alone."""
    before = server_stats(server)[count]
    run(api_settings(db, server, out))
    return server_stats(server)[count] - before


def test_two_api_runs_at_once_send_each_journey_once_and_end_as_one_run(
    shared_db, source_db, slow_server, tmp_path, monkeypatch
):
    alone = str(tmp_path / "alone.db")
    shutil.copy(source_db, alone)
    requests = one_run(alone, slow_server, tmp_path / "alone")
    monkeypatch.setenv("IHC_API_KEY", API_KEY)  # the runs' processes inherit it
    barrier = CommandProcess.barrier(RUNS)
    runs = [CommandProcess(barrier) for _ in range(RUNS)]
    before = server_stats(slow_server)["requests"]
    try:
        for index, process in enumerate(runs):
            api_run(process, shared_db, slow_server, tmp_path / f"run{index}")
        results = [process.result() for process in runs]
    finally:
        for process in runs:
            process.close()
    assert [code for code, _ in results] == [0, 0], results
    assert server_stats(slow_server)["requests"] - before == requests
    assert_same_tables(shared_db, alone)


def test_a_scheduled_runs_batches_beside_a_cli_run_send_each_journey_once_and_end_as_one_run(
    shared_db, source_db, slow_server, tmp_path, monkeypatch
):
    alone = str(tmp_path / "alone.db")
    shutil.copy(source_db, alone)
    journeys = one_run(alone, slow_server, tmp_path / "alone", count="journeys")
    monkeypatch.setenv("IHC_API_KEY", API_KEY)
    settings = api_settings(shared_db, slow_server, tmp_path / "scheduled")
    scheduled.prepare_run(settings)
    plan = scheduled.stage_journeys(settings, "dag/beside", batch_journeys=20)
    barrier = CommandProcess.barrier(2)
    cli = CommandProcess(barrier)
    before = server_stats(slow_server)["journeys"]
    try:
        api_run(cli, shared_db, slow_server, tmp_path / "cli")
        barrier.wait()
        with ThreadPoolExecutor(max_workers=4) as tasks:  # as the DAG maps them
            list(
                tasks.map(
                    lambda batch: scheduled.attribute_batch(settings, "dag/beside", batch), plan.batch_ids
                )
            )
        code, errors = cli.result()  # both runs read their journeys before either stored any credit
    finally:
        cli.close()
    summary = scheduled.finish_run(settings, "dag/beside")
    assert code == 0, errors
    assert server_stats(slow_server)["journeys"] - before == journeys
    assert (summary.status, summary.attributed + summary.left_to_other_runs) == ("succeeded", plan.journeys)
    assert_same_tables(shared_db, alone)


def test_only_the_claims_of_a_live_run_are_skipped_the_rest_expire(source_db, ihc_server, tmp_path):
    reference = str(tmp_path / "reference.db")
    shutil.copy(source_db, reference)
    api_settings = {
        "model": "ihc-api",
        "ihc_url": ihc_server.url,
        "ihc_api_key": API_KEY,
        "formats": ("csv",),
    }
    run(load_settings(db=reference, out=str(tmp_path / "reference"), **api_settings))
    live, *expired = sorted({conv for conv, _, _ in read_tables(reference)[0]})[:4]
    db = str(tmp_path / "claimed.db")
    shutil.copy(source_db, db)
    plant_claims(db, live, expired)
    summary = run(load_settings(db=db, out=str(tmp_path / "claimed"), **api_settings))
    assert (summary.left_to_other_runs, summary.unattributed, summary.status) == (1, 0, "succeeded")
    assert any("1 journeys were left to another IHC API run" in note for note in summary.notes)
    credited = {conv for conv, _, _ in read_tables(db)[0]}
    assert live not in credited and set(expired) <= credited
    assert credited | {live} == {conv for conv, _, _ in read_tables(reference)[0]}
    engine = connect(db)
    with engine.connect() as conn:
        left = conn.execute(select(attribution_ihc_claims.c.conv_id, attribution_ihc_claims.c.run_id)).all()
    engine.dispose()
    assert left == [(live, "live")]  # the run's own claims released with its commit, the expired ones gone


def plant_claims(db: str, live: str, expired: list[str]) -> None:
    """Claims on four conversions: one by a live run (this process), the others by a run killed on this host,
    a finished run and a run on another host silent for two hours."""
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    now = datetime.now(UTC)
    engine = connect(db)
    create_output_tables(engine)
    owners = {
        "live": ("running", socket.gethostname(), os.getpid(), now),
        "killed": ("running", socket.gethostname(), int(ended.stdout), now),
        "finished": ("succeeded", socket.gethostname(), os.getpid(), now),
        "silent": ("running", "another-host", None, now - timedelta(hours=2)),
    }
    with engine.begin() as conn:
        for (run_id, (status, host, pid, at)), conv_id in zip(owners.items(), [live, *expired], strict=True):
            stamp = at.strftime("%Y-%m-%d %H:%M:%S")
            conn.execute(
                insert(attribution_runs).values(
                    run_id=run_id, started_at=stamp, status=status, model="ihc-api", host=host, pid=pid
                )
            )
            conn.execute(
                insert(attribution_ihc_claims).values(
                    conv_id=conv_id, model="ihc-api", conv_type_id="default", run_id=run_id, claimed_at=stamp
                )
            )
    engine.dispose()
