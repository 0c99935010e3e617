"""The report files a run publishes into a folder are one set that matches the committed tables: a CLI run
SIGKILLed at every point of its export, a database connection cut during it, and a failed retry of the DAG's
export task leave, once the next command has run, the previous set or the new one, never a mix and never a
staging folder or a temporary file; a destination the files cannot go to is refused before any work."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from attribution import cli, load_settings, run
from attribution.pipeline import staged
from attribution.reporting.files import FILE_NAMES, export_all
from attribution.warehouse.engine import connect
from attribution.warehouse.tables import attribution_runs
from tests.builders import write_case
from tests.cases import PAID
from tests.oracle import read_tables
from tests.pausing import Paused

FORMATS = ("csv", "parquet", "html")
NAMES = sorted(FILE_NAMES[name] for name in FORMATS)
CSV, PARQUET, HTML = (FILE_NAMES[name] for name in FORMATS)
BEFORE_COMMIT = {  # pause point (tests.pausing): what the killed run has done there
    "after:.attribution-staging-*/channel_reporting.csv": "one file rendered",
    "after:.attribution-staging-*/.attribution-publish.json": "every file rendered, the journal written",
}
AFTER_COMMIT = {
    f"before:{CSV}": "committed, no file in place",
    f"after:{CSV}": "the CSV in place",
    f"after:{PARQUET}": "the CSV and the Parquet in place",
    f"after:{HTML}": "every file in place, the staging folder left",
}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A SQLite warehouse after an IHC run, and the folder holding that run's files."""
    folder = tmp_path_factory.mktemp("published")
    db, out = folder / "paid.db", folder / "reports"
    write_case(str(db), PAID)
    run(load_settings(db=str(db), out=str(out), formats=FORMATS))
    return db, out


@pytest.fixture
def copy(published: tuple[Path, Path], tmp_path: Path) -> tuple[str, Path]:
    """A copy of ``published`` for one test."""
    db, out = published
    shutil.copy(db, tmp_path / db.name)
    shutil.copytree(out, tmp_path / out.name)
    return str(tmp_path / db.name), tmp_path / out.name


def markov_run(db: str, out: Path, point: str, log: Path) -> Paused:
    """``attribution run --model markov`` over the warehouse, stopped at ``point``."""
    args = ("run", "--db", db, "--out", str(out), "--model", "markov", *_formats())
    paused = Paused.start(point, out, *args, log=log)
    assert paused.stopped, f"the run ended without reaching {point}: {log.read_text()}"
    return paused


def _formats() -> list[str]:
    return [flag for name in FORMATS for flag in ("--format", name)]


def committed_run(db: str) -> tuple[str, str]:
    """(model, run id) of the run whose tables are committed: the markov run if it succeeded (there is at
    most one), else the IHC run."""
    engine = connect(db)
    with engine.connect() as conn:
        runs = conn.execute(
            select(attribution_runs.c["model", "run_id"]).where(attribution_runs.c.status == "succeeded")
        ).all()
    engine.dispose()
    return max(tuple(row) for row in runs)  # "markov" sorts after "ihc"


def assert_one_set_of_the_committed_tables(
    db: str, out: Path, tmp_path: Path, last_run: tuple[str, str] | None = None
) -> None:
    """The folder holds exactly the report files, the CSV and Parquet equal to what the committed tables
    give, and the dashboard describes ``last_run`` (model, run id; by default ``committed_run``)."""
    assert sorted(path.name for path in out.iterdir()) == NAMES
    expected = tmp_path / f"expected-{len(list(tmp_path.iterdir()))}"
    engine = connect(db)
    with engine.connect() as conn:
        export_all(conn, expected, ("csv", "parquet"))
    engine.dispose()
    for name in (CSV, PARQUET):
        assert (out / name).read_bytes() == (expected / name).read_bytes(), name
    model, run_id = last_run or committed_run(db)
    page = (out / HTML).read_text()
    assert f"Model: <b>{model}</b>" in page and f"Run: <b>{run_id}</b>" in page


def report(db: str, out: Path) -> None:
    """``attribution report`` (CSV only): the command after a kill that must finish or undo its export."""
    cli.report_command(db=db, out=str(out), formats=None, html=False)


@pytest.mark.parametrize("point", [*BEFORE_COMMIT, *AFTER_COMMIT], ids={**BEFORE_COMMIT, **AFTER_COMMIT}.get)
def test_a_run_killed_at_any_point_leaves_one_set_of_the_committed_tables(copy, tmp_path, point):
    db, out = copy
    before = read_tables(db)
    markov_run(db, out, point, tmp_path / "run.log").kill()
    assert committed_run(db)[0] == ("markov" if point in AFTER_COMMIT else "ihc")
    assert (read_tables(db) == before) is (point in BEFORE_COMMIT)
    report(db, out)
    assert_one_set_of_the_committed_tables(db, out, tmp_path)
    summary = run(load_settings(db=db, out=str(out), formats=FORMATS, model="markov"))
    assert_one_set_of_the_committed_tables(db, out, tmp_path, ("markov", summary.run_id))


def test_a_kill_while_finishing_a_killed_run_s_files_is_finished_by_the_next_command(copy, tmp_path):
    db, out = copy
    markov_run(db, out, f"before:{CSV}", tmp_path / "run.log").kill()
    finishing = Paused.start(f"after:{CSV}", out, "report", "--db", db, "--out", str(out), log=tmp_path / "r")
    assert finishing.stopped, (tmp_path / "r").read_text()
    finishing.kill()
    report(db, out)
    assert committed_run(db)[0] == "markov"
    assert_one_set_of_the_committed_tables(db, out, tmp_path)


def test_a_run_killed_after_its_commit_on_postgresql_is_finished_by_the_next_command(postgres_url, tmp_path):
    write_case(postgres_url, PAID)
    out = tmp_path / "reports"
    run(load_settings(db=postgres_url, out=str(out), formats=FORMATS))
    markov_run(postgres_url, out, f"after:{CSV}", tmp_path / "run.log").kill()
    report(postgres_url, out)
    assert committed_run(postgres_url)[0] == "markov"
    assert_one_set_of_the_committed_tables(postgres_url, out, tmp_path)


def test_a_postgresql_connection_cut_during_the_export_leaves_the_previous_tables_and_files(
    postgres_url, tmp_path
):
    write_case(postgres_url, PAID)
    out = tmp_path / "reports"
    run(load_settings(db=postgres_url, out=str(out), formats=FORMATS))
    before, files = read_tables(postgres_url), {name: (out / name).read_bytes() for name in NAMES}
    paused = markov_run(postgres_url, out, f"after:*{CSV}", tmp_path / "run.log")
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        cut = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND datname = current_database() "
                "AND state LIKE 'idle in transaction%'"
            )
        ).all()
    admin.dispose()
    assert cut, "the paused run held no open transaction"
    assert paused.resume() == 1, (tmp_path / "run.log").read_text()
    assert read_tables(postgres_url) == before
    assert sorted(path.name for path in out.iterdir()) == NAMES
    assert {name: (out / name).read_bytes() for name in NAMES} == files


def test_a_retried_export_task_after_a_kill_publishes_the_committed_set(copy, tmp_path):
    """The DAG's export task runs after its run committed; Airflow retries it after a kill."""
    db, out = copy
    settings = load_settings(db=db, out=str(out), formats=FORMATS, model="markov")
    staged.prepare_run(settings)
    plan = staged.stage_journeys(settings, "dag/run-2")
    for batch in plan.batch_ids:
        staged.attribute_batch(settings, "dag/run-2", batch)
    staged.finish_run(settings, "dag/run-2")
    code = (
        "from attribution import load_settings; from attribution.pipeline import staged; "
        f"staged.export_files(load_settings(db={db!r}, out={str(out)!r}, formats={FORMATS!r}, "
        "model='markov'), 'dag/run-2')"
    )
    exporting = Paused.start(f"after:{PARQUET}", out, "-c", code, log=tmp_path / "export.log")
    assert exporting.stopped, (tmp_path / "export.log").read_text()
    exporting.kill()
    staged.export_files(settings, "dag/run-2")
    assert committed_run(db)[0] == "markov"
    assert_one_set_of_the_committed_tables(db, out, tmp_path)


def error_lines(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, *args: str) -> list[str]:
    """What ``attribution ARGS`` prints on stderr, run in this process, given it exits with 1."""
    monkeypatch.setattr("sys.argv", ["attribution", *args])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("command", ["run", "report"])
def test_a_folder_where_a_report_file_goes_is_refused_before_any_work(copy, capsys, monkeypatch, command):
    db, out = copy
    before, files = read_tables(db), {name: (out / name).read_bytes() for name in NAMES}
    (out / HTML).unlink()
    (out / HTML).mkdir()
    assert error_lines(capsys, monkeypatch, command, "--db", db, "--out", str(out), *_formats()) == [
        f"Error: Cannot write the report files to {out}: {out / HTML} is a directory"
    ]
    assert read_tables(db) == before
    assert {name: (out / name).read_bytes() for name in (CSV, PARQUET)} == {
        name: files[name] for name in (CSV, PARQUET)
    }
    assert sorted(path.name for path in out.iterdir()) == NAMES


@pytest.mark.parametrize(
    ("where", "cause"),
    [("file", "is a file, not a directory"), ("file/reports", "is a file, not a directory")],
)
def test_an_out_that_cannot_be_a_folder_is_refused_in_one_line_before_any_work(
    copy, tmp_path, capsys, monkeypatch, where, cause
):
    db, _ = copy
    before = read_tables(db)
    (tmp_path / "file").write_text("not a folder")
    args = ("run", "--db", db, "--out", str(tmp_path / where), "--model", "markov")
    assert error_lines(capsys, monkeypatch, *args) == [
        f"Error: Cannot write the report files to {tmp_path / where}: {tmp_path / 'file'} {cause}"
    ]
    assert read_tables(db) == before
    assert committed_run(db)[0] == "ihc"


# Root writes through any permission: the run goes without the capabilities that let it (as root still).
AS_A_USER = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"] if os.geteuid() == 0 else []


@pytest.mark.parametrize("where", ["locked", "locked/reports"])
def test_an_out_without_write_permission_is_refused_in_one_line_before_any_work(copy, tmp_path, where):
    db, _ = copy
    before = read_tables(db)
    (tmp_path / "locked").mkdir(mode=0o555)
    command = ["run", "--db", db, "--out", str(tmp_path / where)]
    child = subprocess.run(
        [*AS_A_USER, sys.executable, "-m", "attribution", *command],
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == 1
    assert child.stderr.strip().splitlines() == [
        f"Error: Cannot write the report files to {tmp_path / where}: {tmp_path / 'locked'} is not writable"
    ]
    assert read_tables(db) == before


def test_a_run_waits_for_another_publisher_s_lock_on_the_folder_before_its_commit(copy, tmp_path):
    db, out = copy
    before, files = read_tables(db), {name: (out / name).read_bytes() for name in NAMES}
    holder = os.open(out, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        args = ("run", "--db", db, "--out", str(out), "--model", "markov", *_formats())
        waiting = subprocess.Popen([sys.executable, "-m", "attribution", *args], stderr=subprocess.PIPE)
        while f" {waiting.pid} " not in _lock_waiters() and waiting.poll() is None:
            time.sleep(0.05)
        assert waiting.poll() is None, waiting.stderr.read()
        assert read_tables(db) == before
        assert {name: (out / name).read_bytes() for name in NAMES} == files
    finally:
        os.close(holder)
    assert waiting.wait(timeout=120) == 0
    assert committed_run(db)[0] == "markov"
    assert_one_set_of_the_committed_tables(db, out, tmp_path)


def _lock_waiters() -> str:
    """The lines of ``/proc/locks`` that are processes waiting for a lock (``->``)."""
    return "\n".join(line for line in Path("/proc/locks").read_text().splitlines() if "->" in line)
