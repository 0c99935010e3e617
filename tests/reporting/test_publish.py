"""Report files to an object store by URL, against moto's S3 server over real HTTP: whole objects equal to a
local run's files, a cut upload that leaves the previous object and the previous report, clear one-line
errors, bounded time when the endpoint is down, and credentials that never show."""

from __future__ import annotations

import json
import logging
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from sqlalchemy import select

from attribution import StorageError, load_settings, run
from attribution.errors import StorageRefusedError, StorageUnavailableError
from attribution.objectstore import open_store
from attribution.reporting.files import DEFAULT_FORMATS, FILE_NAMES, export_all
from attribution.warehouse.engine import connect
from attribution.warehouse.tables import attribution_runs
from tests.builders import write_case
from tests.cases import PAID
from tests.commands import attribution
from tests.oracle import read_tables
from tests.s3 import (
    ACCESS_KEY,
    SECRET_KEY,
    CuttingProxy,
    moto_server,
    objects,
    s3_client,
    use_endpoint,
)

FAST = ("csv", "parquet")
"""Formats for the tests about failures: the dashboard (tested below and on its own) takes a second."""
CSV, PARQUET = FILE_NAMES["csv"], FILE_NAMES["parquet"]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def client(endpoint: str):
    return s3_client(endpoint)


@pytest.fixture
def bucket(endpoint: str, client, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new bucket, with fake credentials and the server's endpoint in the environment."""
    use_endpoint(monkeypatch, endpoint)
    name = f"reports-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def reported_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite warehouse whose channel report is built (for the tests of ``export_all`` alone)."""
    folder = tmp_path_factory.mktemp("reported")
    db = str(folder / "paid.db")
    write_case(db, PAID)
    run(load_settings(db=db, out=str(folder / "reports"), formats=("csv",)))
    return db


def export(
    db: str, out: str, formats: tuple[str, ...] = ("csv",), **options: object
) -> dict[str, Path | str]:
    engine = connect(db)
    try:
        with engine.connect() as conn:
            return export_all(conn, out, formats, storage_options=options)
    finally:
        engine.dispose()


def run_records(db: str) -> dict[str, tuple[str, dict]]:
    """run id -> (status, summary) of every recorded run."""
    engine = connect(db)
    with engine.connect() as conn:
        rows = conn.execute(select(attribution_runs.c["run_id", "status", "summary"])).all()
    engine.dispose()
    return {run_id: (status, json.loads(summary)) for run_id, status, summary in rows}


def failures(db: str) -> list[dict]:
    return [summary for status, summary in run_records(db).values() if status == "failed"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_run_to_s3_writes_every_report_object_and_the_csv_of_a_local_run(
    make_sqlite, bucket, client, tmp_path
):
    db = make_sqlite(PAID)
    local = run(load_settings(db=db, out=tmp_path / "local"))
    remote = run(load_settings(db=db, out=f"s3://{bucket}/daily/"))
    stored = objects(client, bucket)
    names = [FILE_NAMES[name] for name in DEFAULT_FORMATS]
    assert sorted(stored) == sorted(f"daily/{name}" for name in names)
    assert stored[f"daily/{CSV}"] == Path(local.report_paths["csv"]).read_bytes()
    assert stored[f"daily/{PARQUET}"] == Path(local.report_paths["parquet"]).read_bytes()
    assert f"Run: <b>{remote.run_id}</b>".encode() in stored["daily/dashboard.html"]
    assert client.head_object(Bucket=bucket, Key="daily/dashboard.html")["ContentType"] == "text/html"
    urls = {name: f"s3://{bucket}/daily/{FILE_NAMES[name]}" for name in DEFAULT_FORMATS}
    assert remote.report_paths == urls
    status, summary = run_records(db)[remote.run_id]
    assert status == "succeeded" and summary["report_paths"] == urls


def test_the_cli_runs_and_reports_to_an_s3_url_and_prints_where_the_files_went(
    make_sqlite, bucket, client, tmp_path, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at 80 columns without a terminal
    db, out = make_sqlite(PAID), f"s3://{bucket}/cli"
    result = attribution("run", "--db", db, "--out", out, "--model", "linear", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert f"csv report: {out}/{CSV}" in result.stdout
    reported = attribution("report", "--db", db, "--out", f"{out}/again", "--format", "parquet")
    assert reported.returncode == 0, reported.stderr
    assert f"parquet report: {out}/again/{PARQUET}" in reported.stdout
    local = export(db, str(tmp_path / "local"))
    assert objects(client, bucket)[f"cli/{CSV}"] == local["csv"].read_bytes()
    assert sorted(objects(client, bucket)) == [f"cli/again/{PARQUET}", f"cli/{CSV}"]
    for output in (result, reported):
        assert SECRET_KEY not in output.stdout + output.stderr


def test_a_missing_bucket_ends_the_cli_in_one_line_naming_the_url(make_sqlite, bucket, tmp_path):
    db = make_sqlite(PAID)
    result = attribution("run", "--db", db, "--out", "s3://no-such-bucket-here/daily", "--format", "csv")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: Cannot upload s3://no-such-bucket-here/daily/{CSV}: no such bucket "
        "(The specified bucket does not exist)"
    )
    assert failures(db) == [
        {"error": f"StorageRefusedError: {result.stderr.strip().removeprefix('Error: ')}"}
    ]
    assert read_tables(db) == ([], [])  # the write steps rolled back


def test_an_upload_cut_mid_body_leaves_the_previous_object_and_the_previous_report(
    make_db, endpoint, bucket, client, monkeypatch
):
    db, out = make_db(PAID), f"s3://{bucket}/cut"
    run(load_settings(db=db, out=out, formats=FAST, model="last-touch"))
    before, tables = objects(client, bucket), read_tables(db)
    with CuttingProxy(endpoint, f"/{bucket}/cut/{PARQUET}").running() as proxy:
        use_endpoint(monkeypatch, proxy.url)
        with pytest.raises(StorageUnavailableError) as failure:
            run(load_settings(db=db, out=out, formats=FAST, model="linear"))
    assert proxy.cuts >= 1
    message = str(failure.value)
    expected = f"Cannot upload {out}/{PARQUET}: upload interrupted, the object keeps its previous version ("
    assert message.startswith(expected) and "\n" not in message
    after = objects(client, bucket)
    assert after.keys() == before.keys()  # nothing partial, nothing under a temporary key
    assert after[f"cut/{PARQUET}"] == before[f"cut/{PARQUET}"]
    assert after[f"cut/{CSV}"] != before[f"cut/{CSV}"]  # each object is whole; the CSV went up before the cut
    assert (
        read_tables(db) == tables
    )  # the export ran inside the write transaction: credit and report rolled back
    assert failures(db) == [{"error": f"StorageUnavailableError: {message}"}]

    use_endpoint(monkeypatch, endpoint)
    run(load_settings(db=db, out=out, formats=FAST, model="linear"))
    assert read_tables(db)[1] != tables[1]  # the failed run would have changed the report
    assert objects(client, bucket)[f"cut/{PARQUET}"] != before[f"cut/{PARQUET}"]


def test_an_unreachable_endpoint_fails_in_one_line(reported_db, monkeypatch):
    use_endpoint(monkeypatch, f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StorageUnavailableError) as failure:
        export(reported_db, "s3://reports-bucket/daily", config_kwargs={"retries": {"total_max_attempts": 1}})
    assert str(failure.value).startswith(
        f"Cannot upload s3://reports-bucket/daily/{CSV}: endpoint unreachable (Could not connect to the endpoint"
    )


def test_the_time_bound_reaches_the_s3_client_and_storage_options_set_it():
    """The bound is the client's configuration (a connect timeout, attempts per object, one retry layer),
    asserted as configured rather than timed: a busy machine stretches any timing."""
    default, _ = open_store("s3://reports-bucket/daily", {})
    assert default.retries == 1  # s3fs's own retries off: botocore's attempts are the only layer
    assert default.config_kwargs == {
        "connect_timeout": 5,
        "retries": {"total_max_attempts": 3, "mode": "standard"},
    }
    options = {"config_kwargs": {"connect_timeout": 2, "retries": {"total_max_attempts": 1}}}
    chosen, _ = open_store("s3://reports-bucket/daily", options)
    assert chosen.config_kwargs == {"connect_timeout": 2, "retries": {"total_max_attempts": 1}}
    assert chosen.connect().meta.config.connect_timeout == 2  # what botocore's client was built with
    assert chosen.s3.meta.config.retries["total_max_attempts"] == 1


def test_credentials_from_storage_options_work_and_never_show(
    make_sqlite, endpoint, bucket, client, monkeypatch, caplog, capfd, tmp_path
):
    use_endpoint(monkeypatch, None, credentials=False)  # only the options know the server and the keys
    options = {"key": ACCESS_KEY, "secret": SECRET_KEY, "endpoint_url": endpoint}
    caplog.set_level(logging.DEBUG)
    db = make_sqlite(PAID)
    settings = load_settings(db=db, out=f"s3://{bucket}/keys", formats=FAST, storage_options=options)
    summary = run(settings)
    assert sorted(objects(client, bucket)) == [f"keys/{CSV}", f"keys/{PARQUET}"]
    with pytest.raises(StorageRefusedError, match="no such bucket") as missing:
        run(load_settings(db=db, out="s3://no-such-bucket-here/x", formats=FAST, storage_options=options))
    shown = [repr(settings), str(settings), settings.model_dump_json(), repr(summary), str(missing.value)]
    for text in [*shown, caplog.text, *capfd.readouterr()]:
        assert SECRET_KEY not in text
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or SECRET_KEY.encode() not in path.read_bytes(), path


def test_without_s3fs_the_error_says_what_to_install(reported_db, monkeypatch):
    monkeypatch.setitem(sys.modules, "s3fs", None)  # what an import finds where the extra is not installed
    loaded = sys.modules["fsspec.registry"]._registry  # the classes fsspec has imported already
    monkeypatch.delitem(loaded, "s3", raising=False)
    with pytest.raises(StorageRefusedError, match=r"^Cannot write to s3://r/x: install \S+\[s3\]"):
        export(reported_db, "s3://r/x")


def test_any_installed_fsspec_protocol_works_memory_for_one(reported_db, tmp_path):
    out = f"memory://attribution-{uuid.uuid4().hex[:8]}/reports"
    paths = export(reported_db, out, FAST)
    assert paths == {"csv": f"{out}/{CSV}", "parquet": f"{out}/{PARQUET}"}
    local = export(reported_db, str(tmp_path), FAST)
    memory = fsspec.filesystem("memory")
    assert memory.cat_file(paths["csv"]) == Path(local["csv"]).read_bytes()
    memory.rm(out.removeprefix("memory://").split("/")[0], recursive=True)


class RefusingFileSystem(MemoryFileSystem):
    """A store whose uploads fail with a given error, for the causes moto cannot produce (access denied)."""

    protocol = "refusing"
    failure: BaseException = OSError("unset")

    def put_file(self, lpath, rpath, **kwargs):
        raise self.failure


@pytest.mark.parametrize(
    ("failure", "kind", "cause"),
    [
        (PermissionError("Access Denied"), StorageRefusedError, "access denied: check the credentials"),
        (ConnectionResetError("reset by peer"), StorageUnavailableError, "upload interrupted"),
        (OSError("quota exceeded"), StorageError, "upload failed"),
    ],
    ids=["access-denied", "interrupted", "other"],
)
def test_each_failure_is_named_in_one_line_without_the_secret(reported_db, monkeypatch, failure, kind, cause):
    fsspec.register_implementation("refusing", RefusingFileSystem, clobber=True)
    failure.args = (*failure.args[:-1], f"{failure.args[-1]} for {SECRET_KEY}")  # a library quoting a secret
    monkeypatch.setattr(RefusingFileSystem, "failure", failure)
    with pytest.raises(kind) as raised:
        export(reported_db, "refusing://bucket/x", secret=SECRET_KEY)
    assert type(raised.value) is kind
    assert str(raised.value).startswith(f"Cannot upload refusing://bucket/x/{CSV}: {cause}")
    assert SECRET_KEY not in str(raised.value) and "***" in str(raised.value)
