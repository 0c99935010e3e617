"""The report files a run publishes into a folder are one set that matches the committed tables: a CLI run
SIGKILLed at every point of its export, a database connection cut during it, and a failed retry of the DAG's
export task leave, once the next command has run, the previous set or the new one, never a mix and never a
staging folder or a temporary file; a destination the files cannot go to is refused before any work."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from attribution import cli, load_settings, run
from attribution.errors import StorageRefusedError
from attribution.pipeline import scheduled
from attribution.reporting import file_set
from attribution.reporting.dashboard import model_label
from attribution.reporting.file_set import recover
from attribution.reporting.files import FILE_NAMES, export_all
from attribution.warehouse.engine import connect
from attribution.warehouse.tables import attribution_runs
from tests.builders import write_case
from tests.cases import PAID
from tests.commands import attribution
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
    assert f"Model: <b>{model_label(model)}</b>" in page and f"Run: <b>{run_id}</b>" in page


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
    name = f"paused-{tmp_path.name}"  # only the paused run's connections are cut, not another suite's
    paused = markov_run(f"{postgres_url}&application_name={name}", out, f"after:*{CSV}", tmp_path / "run.log")
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        cut = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name AND state LIKE 'idle in transaction%'"
            ),
            {"name": name},
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
    scheduled.prepare_run(settings)
    plan = scheduled.stage_journeys(settings, "dag/run-2")
    for batch in plan.batch_ids:
        scheduled.attribute_batch(settings, "dag/run-2", batch)
    scheduled.finish_run(settings, "dag/run-2")
    code = (
        "from attribution import load_settings; from attribution.pipeline import scheduled; "
        f"scheduled.export_files(load_settings(db={db!r}, out={str(out)!r}, formats={FORMATS!r}, "
        "model='markov'), 'dag/run-2')"
    )
    exporting = Paused.start(f"after:{PARQUET}", out, "-c", code, log=tmp_path / "export.log")
    assert exporting.stopped, (tmp_path / "export.log").read_text()
    exporting.kill()
    scheduled.export_files(settings, "dag/run-2")
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
        waiting = subprocess.Popen(
            [sys.executable, "-m", "attribution", *args], stderr=subprocess.PIPE, text=True
        )
        said = waiting.stderr.readline()  # once it waits for the lock, it says so
        assert said.startswith(f"Waiting up to 30 s for another publisher's lock on {out}"), said
        assert waiting.poll() is None
        assert read_tables(db) == before
        assert {name: (out / name).read_bytes() for name in NAMES} == files
    finally:
        os.close(holder)
    assert waiting.wait(timeout=120) == 0
    assert committed_run(db)[0] == "markov"
    assert_one_set_of_the_committed_tables(db, out, tmp_path)


def plant_journal(out: Path, files: list[str], **journal: object) -> Path:
    """A staging folder in ``out`` as a publisher makes it (private), whose journal names ``files``, each
    planted with the text ``planted``."""
    staging = out / ".attribution-staging-planted"
    staging.mkdir(mode=0o700)
    for name in files:
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_text("planted")
    (staging / ".attribution-publish.json").write_text(
        json.dumps({"awaits_commit": None, "files": files, **journal})
    )
    return staging


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (links not followed), by relative path, with its bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def test_a_planted_journal_naming_paths_outside_the_set_moves_nothing_outside_out(copy, tmp_path):
    db, out = copy
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    (elsewhere / ".bashrc").write_text("the user's own")
    (out / "lnk").symlink_to(elsewhere)
    (out / "up.txt").write_text("planted")
    plant_journal(out, ["lnk/.bashrc", CSV])
    journal = out / ".attribution-staging-planted" / ".attribution-publish.json"
    journal.write_text(json.dumps({"awaits_commit": None, "files": ["lnk/.bashrc", "../up.txt", CSV]}))
    beside_out = sorted(path.name for path in tmp_path.iterdir())
    done = attribution("report", "--db", db, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert files_under(elsewhere) == {".bashrc": b"the user's own"}
    assert sorted(path.name for path in tmp_path.iterdir()) == beside_out  # nothing written one level up
    assert (out / "up.txt").read_text() == "planted"
    set_aside = [line for line in done.stderr.splitlines() if "Set aside" in line]
    assert len(set_aside) == 1 and "lnk/.bashrc" in set_aside[0], done.stderr
    assert (out / CSV).read_text() != "planted"


def test_recover_finishes_only_plain_report_names_from_private_staging_folders_of_its_own(tmp_path, caplog):
    out, elsewhere = tmp_path / "reports", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (elsewhere / CSV).write_text("someone else's")
    (elsewhere / ".attribution-publish.json").write_text(json.dumps({"awaits_commit": None, "files": [CSV]}))
    (out / ".attribution-staging-link").symlink_to(elsewhere)  # a staging "folder" that is a link
    open_staging = plant_journal(out, [CSV])
    open_staging.chmod(0o777)  # others could have written into it
    nested = out / ".attribution-staging-nested"
    nested.mkdir(mode=0o700)
    (nested / "sub").mkdir()
    (nested / "sub" / CSV).write_text("planted")
    (nested / ".attribution-publish.json").write_text(
        json.dumps({"awaits_commit": None, "files": [f"sub/{CSV}"]})
    )
    before = files_under(tmp_path)
    with caplog.at_level(logging.WARNING):
        recover(out, lambda _run: True)
    assert files_under(elsewhere) == {
        name[len("elsewhere/") :]: data for name, data in before.items() if name.startswith("elsewhere/")
    }
    assert not (out / CSV).exists()
    assert (out / ".attribution-staging-link").is_symlink() and open_staging.is_dir()
    assert not nested.exists()
    refused = [record.getMessage() for record in caplog.records]
    assert len(refused) == 3 and all("\n" not in line for line in refused), refused
    assert any("is a symbolic link" in line for line in refused)
    assert any("writable by others" in line for line in refused)
    assert any(f"sub/{CSV}" in line for line in refused)


def test_recover_refuses_a_report_file_that_is_a_symbolic_link(tmp_path):
    out, elsewhere = tmp_path / "reports", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (elsewhere / "target").write_text("someone else's")
    (out / CSV).symlink_to(elsewhere / "target")
    plant_journal(out, [CSV])
    with pytest.raises(StorageRefusedError, match=f"{out / CSV} is a symbolic link"):
        recover(out, lambda _run: True)
    assert (elsewhere / "target").read_text() == "someone else's" and (out / CSV).is_symlink()


def test_an_out_folder_writable_by_others_is_refused_in_one_line(copy, capsys, monkeypatch):
    db, out = copy
    before = read_tables(db)
    out.chmod(0o777)
    assert error_lines(capsys, monkeypatch, "report", "--db", db, "--out", str(out)) == [
        f"Error: Cannot write the report files to {out}: {out} is writable by others"
    ]
    assert read_tables(db) == before


def test_a_corrupt_journal_is_set_aside_in_one_line_and_later_runs_proceed(copy, tmp_path):
    db, out = copy
    staging = plant_journal(out, [CSV])
    (staging / ".attribution-publish.json").write_text('{"awaits_commit": ')
    first = attribution("report", "--db", db, "--out", str(out))
    assert first.returncode == 0, first.stderr
    lines = first.stderr.strip().splitlines()
    assert len(lines) == 1 and "Set aside" in lines[0] and "journal" in lines[0], first.stderr
    assert not staging.exists() and len(list(out.glob(".attribution-set-aside-*"))) == 1
    again = attribution("report", "--db", db, "--out", str(out))
    assert again.returncode == 0 and "Set aside" not in again.stderr, again.stderr
    assert (out / CSV).read_text() != "planted"


def test_a_run_held_up_by_the_folder_lock_stops_in_one_line_and_closes_its_run_record(
    copy, capsys, monkeypatch
):
    db, out = copy
    before = {name: (out / name).read_bytes() for name in NAMES}
    monkeypatch.setattr(file_set, "LOCK_WAIT_SECONDS", 0.5)
    holder = os.open(out, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    letting_go = threading.Timer(30, fcntl.flock, (holder, fcntl.LOCK_UN))  # a run that waits for ever ends
    letting_go.start()
    try:
        lines = error_lines(capsys, monkeypatch, "run", "--db", db, "--out", str(out), "--model", "markov")
    finally:
        letting_go.cancel()
        os.close(holder)
    assert (
        lines[-1]
        == f"Error: Cannot write the report files to {out}: another publisher held its lock for 0.5 s"
    )
    engine = connect(db)
    with engine.connect() as conn:
        statuses = (
            conn.execute(select(attribution_runs.c.status).where(attribution_runs.c.model == "markov"))
            .scalars()
            .all()
        )
    engine.dispose()
    assert statuses == ["failed"]
    assert {name: (out / name).read_bytes() for name in NAMES} == before


def _with_umask(mask: int) -> Callable[[], None]:
    return lambda: os.umask(mask)


@pytest.mark.parametrize(("umask", "mode"), [(0o077, 0o600), (0o022, 0o644), (0o002, 0o664)])
def test_report_files_take_their_mode_from_the_umask(copy, umask, mode):
    db, out = copy
    done = subprocess.run(
        [sys.executable, "-m", "attribution", "report", "--db", db, "--out", str(out), *_formats()],
        capture_output=True, text=True, preexec_fn=_with_umask(umask), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert {name: stat.S_IMODE((out / name).stat().st_mode) for name in NAMES} == dict.fromkeys(NAMES, mode)


def _file_size_limit(size: int) -> Callable[[], None]:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


@pytest.mark.parametrize("formats", [["--format", "parquet"], ["--html"]], ids=["parquet", "html"])
def test_a_file_too_large_for_the_out_folder_is_one_line_and_leaves_the_previous_files(copy, formats):
    db, out = copy
    files = {name: (out / name).read_bytes() for name in NAMES}
    done = subprocess.run(
        [sys.executable, "-m", "attribution", "report", "--db", db, "--out", str(out), *formats],
        capture_output=True, text=True, preexec_fn=_file_size_limit(512), check=False,
    )  # fmt: skip
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"Error: Cannot write the report files to {out}: ") and line.endswith(
        "File too large"
    )
    assert {name: (out / name).read_bytes() for name in NAMES} == files
    assert sorted(path.name for path in out.iterdir()) == NAMES
