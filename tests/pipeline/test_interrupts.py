"""Signals: SIGINT and SIGTERM stop a run in one line with the shell's code (130, 143), its transaction rolled
back and its record closed as ``interrupted``; a run killed outright takes its cost-scan child with it.

Before the fix a signal ended a run silently (exit 130/143, no line), its record stayed ``running``, and after
``kill -9`` the ``sqlite_scan`` child went on reading the file.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import psutil
import pytest

from attribution.ihc_api.local import LocalServer
from tests.servers import API_KEY

SCAN_MODULE = "attribution.reporting.sqlite_scan"


def start_run(db: str, out: Path, *options: str, env: dict | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "attribution", "run", "--db", db, "--out", str(out), *options]
    return subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition, timeout: float = 120) -> None:
    """Poll ``condition`` until it holds (a bounded wait for a state, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{condition.__doc__ or 'condition'} did not happen")
        time.sleep(0.05)


def scan_children(process: subprocess.Popen) -> list[psutil.Process]:
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [child for child in children if SCAN_MODULE in " ".join(_cmdline(child))]


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def opened(process: subprocess.Popen, path: str) -> bool:
    """the run opened the database"""
    try:
        return any(file.path == path for file in psutil.Process(process.pid).open_files())
    except psutil.Error:
        return False


def statuses(db: str) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(db, timeout=30)) as con:
        return con.execute("SELECT status, summary FROM attribution_runs").fetchall()


PARENT = """
import os, subprocess, sys
from attribution.reporting import sqlite_scan
relations = ["session_sources", "rowid", "session_costs"]
scan = [sys.executable, "-m", sqlite_scan.__name__, sys.argv[1], *relations, "100000", "30"]
subprocess.run(scan, env={**os.environ, sqlite_scan.PARENT_VARIABLE: str(os.getpid())})
"""
"""A process that starts the cost scan as ``channel_report`` does (its arguments: the file, the sessions, the
name of their rowid, the costs, rows per read, seconds to wait for a locked file)."""


def test_a_parent_killed_outright_takes_its_cost_scan_with_it(db):
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # the scan waits for the file, so it is alive when its parent dies
    try:
        parent = subprocess.Popen([sys.executable, "-c", PARENT, db])
        wait_until(lambda: bool(scan_children(parent)))
        (scan,) = scan_children(parent)
        parent.kill()
        parent.wait()
        gone, alive = psutil.wait_procs([scan], timeout=10)  # without the fix it waits out the 30 s lock
        assert scan in gone and not alive, "the cost scan outlived the process that started it"
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_before_the_run_starts_writing_ends_it_in_one_line_with_the_shells_code(
    db, tmp_path, signum, code
):
    before = Path(db).read_bytes()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # the run waits in prepare
    try:
        process = start_run(db, tmp_path / "out")
        wait_until(lambda: opened(process, db))
        process.send_signal(signum)
    finally:
        holder.execute("ROLLBACK")  # the run's reads go on, to the next Python step and the signal
        holder.close()
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code
    assert stderr.strip().splitlines() == [
        f"Interrupted by {signal.Signals(signum).name}: stopped before its next step; nothing half-written is kept"
    ]
    assert Path(db).read_bytes() == before  # nothing was written
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_sigterm_mid_run_closes_the_record_as_interrupted_and_keeps_what_was_answered(db, tmp_path):
    with LocalServer.launch(tmp_path / "slow.log", "--latency-ms", "300", api_key=API_KEY) as slow:
        options = ("--model", "ihc-api", "--ihc-url", slow.url, "--max-journeys", "10", "--concurrency", "1")
        process = start_run(db, tmp_path / "out", *options, env={"IHC_API_KEY": API_KEY})

        def credited() -> bool:
            """some credit committed"""
            with closing(sqlite3.connect(db, timeout=30)) as con:
                tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master")}
                return "attribution_customer_journey" in tables and bool(
                    con.execute("SELECT COUNT(*) FROM attribution_customer_journey").fetchone()[0]
                )

        wait_until(credited)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1].startswith("Interrupted by SIGTERM")
    ((status, summary),) = statuses(db)
    assert status == "interrupted" and "Interrupted by SIGTERM" in summary
    with closing(sqlite3.connect(db)) as con:  # answered requests stay committed, whole journeys
        sums = con.execute("SELECT SUM(ihc) FROM attribution_customer_journey GROUP BY conv_id").fetchall()
    assert sums and all(abs(total - 1) < 1e-9 for (total,) in sums)
