"""The pipeline with ``--model ihc-api`` against the project's server over real HTTP: faults, resume,
quota, a killed run, a server gone mid-run, a refused key."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from attribution import load_settings, run
from attribution.errors import AuthenticationError
from attribution.ihc_api.local import LocalServer
from tests.oracle import assert_close, assert_same_tables, read_tables
from tests.servers import API_KEY, ConnectionCounter, nowhere


def api_run(db: str, server, out: Path, **options):
    given = {"ihc_api_key": API_KEY, "max_journeys": 20, **options}
    return run(load_settings(db=db, out=str(out), model="ihc-api", ihc_url=server.url, **given))


def wait_for_credited_conversions(db: str, process: subprocess.Popen, timeout: float = 90) -> int:
    """Poll the database until the running pipeline has committed some credit; return how many conversions."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with closing(sqlite3.connect(db, timeout=30)) as con:
            tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "attribution_customer_journey" in tables:
                count = con.execute(
                    "SELECT COUNT(DISTINCT conv_id) FROM attribution_customer_journey"
                ).fetchone()[0]
                if count:
                    return count
        time.sleep(0.1)
    raise AssertionError("the pipeline committed no credit in time")


def test_a_run_through_the_server_credits_every_journey_once(db, ihc_server, tmp_path):
    summary = api_run(db, ihc_server, tmp_path)
    credits, report = read_tables(db)
    assert summary.unattributed == 0 and summary.requests >= summary.journeys / 20
    assert len({conv for conv, _, _ in credits}) == summary.journeys
    assert sum(r[3] for r in report) == pytest.approx(summary.journeys)


def test_with_5xx_429_and_dropped_connections_every_journey_ends_attributed_exactly_once(
    db, source_db, ihc_server, fault_servers, tmp_path
):
    clean = str(tmp_path / "clean.db")
    shutil.copy(source_db, clean)
    api_run(clean, ihc_server, tmp_path / "clean")
    summary = api_run(db, fault_servers["combined"], tmp_path / "faulty", max_retries=10)
    assert summary.unattributed == 0
    assert_same_tables(db, clean)


def test_a_rerun_sends_only_unattributed_journeys_and_force_sends_all(db, ihc_server, tmp_path):
    first = api_run(db, ihc_server, tmp_path)
    tables = read_tables(db)
    again = api_run(db, ihc_server, tmp_path)
    assert (again.requests, again.journeys) == (0, 0)
    forced = api_run(db, ihc_server, tmp_path, force=True)
    assert forced.requests == first.requests and forced.journeys == first.journeys
    assert read_tables(db) == tables


def test_the_request_quota_stops_cleanly_and_a_rerun_finishes_the_work(db, source_db, ihc_server, tmp_path):
    stopped = api_run(db, ihc_server, tmp_path, max_requests=3)
    assert stopped.stopped_early and stopped.requests == 3 and stopped.unattributed > 0
    assert any("request quota reached" in note for note in stopped.notes)
    finished = api_run(db, ihc_server, tmp_path)
    assert finished.unattributed == 0
    clean = str(tmp_path / "clean.db")
    shutil.copy(source_db, clean)
    api_run(clean, ihc_server, tmp_path / "clean")
    assert_same_tables(db, clean)


def test_a_run_killed_mid_way_and_resumed_equals_a_clean_run(
    db, source_db, fault_servers, ihc_server, tmp_path
):
    command = [
        sys.executable, "-m", "attribution", "run", "--db", db, "--out", str(tmp_path / "killed"),
        "--model", "ihc-api", "--ihc-url", fault_servers["slow"].url, "--max-journeys", "20", "--concurrency", "1",
    ]  # fmt: skip
    env = {**os.environ, "IHC_API_KEY": API_KEY}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = wait_for_credited_conversions(db, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < partial < 300  # killed after some 400 ms requests landed, long before the end
    resumed = api_run(db, ihc_server, tmp_path / "resumed")
    assert resumed.unattributed == 0 and resumed.journeys < 300
    clean = str(tmp_path / "clean.db")
    shutil.copy(source_db, clean)
    api_run(clean, ihc_server, tmp_path / "clean")
    assert_same_tables(db, clean)


def test_a_server_gone_mid_run_stops_the_run_in_seconds_and_a_rerun_sends_only_the_rest(
    db, source_db, ihc_server, tmp_path
):
    clean = str(tmp_path / "clean.db")
    shutil.copy(source_db, clean)
    journeys = api_run(clean, ihc_server, tmp_path / "clean").journeys
    with LocalServer.launch(tmp_path / "doomed.log", "--latency-ms", "400", api_key=API_KEY) as doomed:
        command = [
            sys.executable, "-m", "attribution", "run", "--db", db, "--out", str(tmp_path / "cut"),
            "--model", "ihc-api", "--ihc-url", doomed.url, "--max-journeys", "20", "--concurrency", "2",
        ]  # fmt: skip
        env = {**os.environ, "IHC_API_KEY": API_KEY}
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        wait_for_credited_conversions(db, process)
        doomed.process.kill()  # the service is gone: connections are refused from now on
        try:
            _, stderr = process.communicate(timeout=120)  # before the breaker: minutes of retries
        finally:
            process.kill()
    assert process.returncode == 1, stderr
    error = stderr.strip().splitlines()[-1]  # after the retries' warnings
    assert error.startswith("Error: The IHC API at http://127.0.0.1:") and "is unreachable" in error, stderr
    left = int(re.search(r"(\d+) of \d+ journeys are left without credit", error)[1])
    stored = read_tables(db)[0]
    answered = {conv for conv, _, _ in stored}
    assert 0 < len(answered) < journeys and left == journeys - len(answered)
    assert_close(stored, [row for row in read_tables(clean)[0] if row[0] in answered])  # whole journeys
    resumed = api_run(db, ihc_server, tmp_path / "resumed")
    assert (resumed.journeys, resumed.unattributed) == (left, 0)
    assert_same_tables(db, clean)


def test_with_nothing_listening_the_cli_stops_at_the_flags_connection_failures_in_one_line(
    db, tmp_path, monkeypatch
):
    monkeypatch.setenv("ATTRIBUTION_MAX_CONNECTION_FAILURES", "5")
    assert load_settings().ihc_api.max_connection_failures == 5
    url = nowhere()
    result = subprocess.run(
        [sys.executable, "-m", "attribution", "run", "--db", db, "--out", str(tmp_path), "--model", "ihc-api",
         "--ihc-url", url, "--max-journeys", "20", "--max-connection-failures", "2"],
        env={**os.environ, "IHC_API_KEY": API_KEY}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert f"The IHC API at {url} is unreachable (2 connection failures in a row" in error  # the flag wins
    assert re.search(r"; (\d+) of \1 journeys are left without credit", error), error


def test_a_local_ihc_run_sends_nothing_through_the_environments_proxy(db, tmp_path):
    with ConnectionCounter() as proxy:
        proxies = {name: proxy.url for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy")}
        environment = {
            **{name: value for name, value in os.environ.items() if name.lower() != "no_proxy"},
            **proxies,
        }
        result = subprocess.run(
            [sys.executable, "-m", "attribution", "run", "--db", db, "--out", str(tmp_path), "--model", "ihc-api",
             "--local-ihc", "--max-journeys", "20", "--max-retries", "0"],
            env=environment, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert (result.returncode, proxy.connections) == (0, 0), result.stderr


def test_a_refused_key_stops_at_once_and_the_key_is_shown_nowhere(db, ihc_server, tmp_path):
    secret = "not-the-key-7d1e0c"
    result = subprocess.run(
        [sys.executable, "-m", "attribution", "run", "--db", db, "--model", "ihc-api", "--ihc-url", ihc_server.url],
        env={**os.environ, "IHC_API_KEY": secret}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert "key" in result.stderr.lower() and len(result.stderr.strip().splitlines()) == 1
    assert secret not in result.stdout + result.stderr
    assert secret.encode() not in Path(db).read_bytes()
    with pytest.raises(AuthenticationError) as caught:
        run(
            load_settings(
                db=db, out=str(tmp_path), model="ihc-api", ihc_url=ihc_server.url, ihc_api_key=secret
            )
        )
    assert secret not in str(caught.value) and secret not in repr(caught.value)


def test_the_cli_exit_code_says_journeys_are_left_unattributed(db, ihc_server, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "attribution", "run", "--db", db, "--out", str(tmp_path), "--model", "ihc-api",
         "--ihc-url", ihc_server.url, "--max-journeys", "20", "--max-requests", "2"],
        env={**os.environ, "IHC_API_KEY": API_KEY}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "left unattributed" in result.stderr


def figure(output: str, label: str) -> float:
    """A figure of the CLI's summary table."""
    return float(re.search(rf"{label}\s*│\s*([\d.]+)", output)[1])


def test_a_partly_failed_run_counts_the_journeys_it_attributed_apart_from_those_to_attribute(db, tmp_path):
    flags = ("--error-rate", "0.5", "--seed", "8")  # its own server: the shared one's draws stay as they were
    with LocalServer.launch(tmp_path / "errors.log", *flags, api_key=API_KEY) as server:
        result = subprocess.run(
            [sys.executable, "-m", "attribution", "run", "--db", db, "--out", str(tmp_path), "--model", "ihc-api",
             "--ihc-url", server.url, "--max-journeys", "20", "--max-retries", "0", "--concurrency", "1"],
            env={**os.environ, "IHC_API_KEY": API_KEY}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 3, result.stderr  # about half the requests get a 503 and no retry
    to_attribute, attributed = (figure(result.stdout, label) for label in ("to attribute", "attributed"))
    left = figure(result.stdout, "conversions left unattributed")
    credited = {conv for conv, _, _ in read_tables(db)[0]}
    assert 0 < attributed == len(credited) < to_attribute == attributed + left
    assert figure(result.stdout, "credit total") == pytest.approx(attributed)
    with closing(sqlite3.connect(db)) as con:
        (recorded,) = con.execute("SELECT summary FROM attribution_runs").fetchone()
    assert json.loads(recorded)["attributed"] == attributed


def stored_labels(db: str) -> list[tuple]:
    """Model and conversion type of the stored credit, with its rows."""
    with closing(sqlite3.connect(db)) as con:
        query = (
            "SELECT model, conv_type_id, COUNT(*) FROM attribution_customer_journey GROUP BY 1, 2 ORDER BY 1"
        )
        return con.execute(query).fetchall()


def test_force_with_a_refused_key_keeps_the_stored_credit_and_report(db, ihc_server, tmp_path):
    api_run(db, ihc_server, tmp_path)
    before = read_tables(db)
    with pytest.raises(AuthenticationError):
        api_run(db, ihc_server, tmp_path, force=True, ihc_api_key="not-the-key-2b9e41")
    assert read_tables(db) == before and before[0]


def test_a_resumed_run_sends_what_another_model_credited_and_labels_its_credit(db, ihc_server, tmp_path):
    run(load_settings(db=db, out=str(tmp_path / "first"), model="first-touch"))
    first_touch = stored_labels(db)
    assert [label[:2] for label in first_touch] == [("first-touch", "")]
    summary = api_run(db, ihc_server, tmp_path)
    assert summary.unattributed == 0 and summary.journeys > 0
    assert stored_labels(db) == [*first_touch, ("ihc-api", "default", first_touch[0][2])]  # both kept


def test_the_services_phases_are_stored_beside_ihc(db, ihc_server, tmp_path):
    api_run(db, ihc_server, tmp_path)
    with closing(sqlite3.connect(db)) as con:
        sums = con.execute(
            "SELECT SUM(initializer), SUM(closer), SUM(holder), COUNT(initializer) = COUNT(*) "
            "FROM attribution_customer_journey GROUP BY conv_id"
        ).fetchall()
    assert sums and all(complete for *_, complete in sums)
    assert all(i == pytest.approx(1) and c == pytest.approx(1) for i, c, _, _ in sums)
    assert all(h == pytest.approx(1) or h == pytest.approx(0) for _, _, h, _ in sums)
