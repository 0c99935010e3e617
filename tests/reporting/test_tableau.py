"""Publishing the Hyper extract to Tableau: against a fake of the REST endpoints tableauserverclient calls, over
real HTTP (``tests/tableau_server.py``); never a real server.

Chunked upload is forced with a small file by TSC's own setting ``TSC_FILESIZE_LIMIT_MB=0`` (files of that many
MB or more go in chunks; 64 by default) and by patching ``BYTES_PER_MB`` in TSC's file-upload module to 1024,
so ``TSC_CHUNK_SIZE_MB=16`` makes chunks of 16 KiB: an extract of about 130 KB then goes in eight chunks.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import uuid
from pathlib import Path
from unittest.mock import patch

import fsspec
import polars as pl
import pytest

from attribution import cli, load_settings
from attribution.errors import (
    TableauRefusedError,
    TableauSignInError,
    TableauUnreachableError,
    TerminalError,
    TransientError,
)
from attribution.pipeline.steps import publish_to_tableau
from attribution.reporting.files import export_hyper
from attribution.reporting.metrics import with_ratios
from attribution.reporting.tableau import EXTRACT_NAME, TableauTarget, publish_extract
from tests.servers import nowhere
from tests.tableau_server import SITE, TOKEN_NAME, TOKEN_SECRET, FakeTableau

PROJECT = "Attribution"  # on the fake's last page of projects
PROJECT_ID = "p-attribution"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report folder holding a Hyper extract of 2,000 report rows (about 130 KB)."""
    folder = tmp_path_factory.mktemp("tableau-reports")
    rows = [(f"Channel {i % 7}", f"2023-09-{1 + i % 28:02d}", float(i), i / 3, i * 1.5) for i in range(2000)]
    schema = {"channel_name": pl.String, "date": pl.String} | dict.fromkeys(
        ("cost", "ihc", "ihc_revenue"), pl.Float64
    )
    frame = with_ratios(pl.DataFrame(rows, schema=schema, orient="row"))
    export_hyper(
        frame.with_columns(model=pl.lit("ihc"), conv_type_id=pl.lit("default")), folder / EXTRACT_NAME
    )
    return folder


@pytest.fixture
def tableau(monkeypatch: pytest.MonkeyPatch) -> FakeTableau:
    """The fake server, and the settings of a publish to it in the environment, as a user sets them."""
    with FakeTableau() as fake:
        for name, value in {
            "URL": fake.url,
            "SITE": SITE,
            "PROJECT": PROJECT,
            "TOKEN_NAME": TOKEN_NAME,
            "TOKEN_SECRET": TOKEN_SECRET,
            "TIMEOUT": "5",
        }.items():
            monkeypatch.setenv(f"ATTRIBUTION_TABLEAU_{name}", value)
        yield fake


@pytest.fixture
def chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make TSC send any file in chunks of 16 KiB (see the module's docstring)."""
    from tableauserverclient.server.endpoint import fileuploads_endpoint

    monkeypatch.setenv("TSC_FILESIZE_LIMIT_MB", "0")
    monkeypatch.setenv("TSC_CHUNK_SIZE_MB", "16")
    monkeypatch.setattr(fileuploads_endpoint, "BYTES_PER_MB", 1024)


@pytest.fixture
def every_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record of every library, down to DEBUG (TSC's and urllib3's included)."""
    caplog.set_level(logging.DEBUG)
    return caplog


def publish_command(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``attribution publish-tableau ARGS`` through the CLI's entry point: exit code, stdout, stderr."""
    with patch.object(sys, "argv", ["attribution", "publish-tableau", *args]):
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_extract_reaches_the_named_project_whole_in_chunks_and_overwrites(
    tableau, reports, chunked, capsys, every_log
):
    extract = (reports / EXTRACT_NAME).read_bytes()
    for _ in range(2):  # the second publish replaces the first's data source
        code, out, err = publish_command(capsys, "--out", str(reports))
        assert (code, err) == (0, "")
        assert "project 'Marketing/Attribution': data source 'channel_reporting'" in " ".join(out.split())
    first, second = tableau.publishes
    for published in (first, second):
        assert (published.datasource, published.project_id) == ("channel_reporting", PROJECT_ID)
        assert published.query["overwrite"] == ["true"] and published.query["datasourceType"] == ["hyper"]
        assert published.chunks == len(extract) // (16 << 10) + bool(len(extract) % (16 << 10)) > 1
        assert digest(published.content) == digest(extract)
    assert second.datasource_id == first.datasource_id
    assert ("GET", "/api/2.4/serverInfo") in tableau.requests  # the API version, taken from the server
    assert (
        sum(path.endswith("/projects") for _method, path in tableau.requests) == 2 * 4
    )  # 7 projects, 2 a page
    assert TOKEN_SECRET not in out + err + every_log.text
    assert not any(TOKEN_SECRET in str(record.args) for record in every_log.records)


def test_a_small_extract_goes_whole_in_the_publish_request(tableau, reports):
    published = publish_to_tableau(load_settings(out=str(reports), tableau_datasource="Channel report"))
    (received,) = tableau.publishes
    assert received.chunks == 0 and digest(received.content) == digest((reports / EXTRACT_NAME).read_bytes())
    assert (published.datasource, published.project_id, published.project) == (
        "Channel report",
        PROJECT_ID,
        "Marketing/Attribution",
    )
    assert published.bytes == len(received.content)


def test_an_extract_in_an_object_store_is_published(tableau, reports):
    out = f"memory://tableau-{uuid.uuid4().hex[:8]}/reports"
    store = fsspec.filesystem("memory")
    store.pipe_file(f"{out}/{EXTRACT_NAME}", (reports / EXTRACT_NAME).read_bytes())
    try:
        publish_to_tableau(load_settings(out=out))
    finally:
        store.rm(out.removeprefix("memory://").split("/")[0], recursive=True)
    assert digest(tableau.publishes[0].content) == digest((reports / EXTRACT_NAME).read_bytes())


def test_a_project_is_found_by_its_path_where_names_repeat(tableau, reports):
    target = TableauTarget(tableau.url, SITE, "Finance/Reports", None, TOKEN_NAME, TOKEN_SECRET)
    assert publish_extract(reports / EXTRACT_NAME, target).project_id == "p-finance-reports"
    ambiguous = TableauTarget(tableau.url, SITE, "Reports", None, TOKEN_NAME, TOKEN_SECRET)
    with pytest.raises(TableauRefusedError, match=r"has 2 projects named 'Reports' .*: give its path"):
        publish_extract(reports / EXTRACT_NAME, ambiguous)


def stalled(fake: FakeTableau) -> None:
    fake.stall_seconds = 3  # the settings allow 1


FAILURES = {
    "a wrong token secret": (
        {"ATTRIBUTION_TABLEAU_TOKEN_SECRET": "pat-secret-wrong-0000"},
        None,
        "refused the personal access token 'attribution-ci': 401001 Signin Error: Error signing in",
    ),
    "a wrong site": (
        {"ATTRIBUTION_TABLEAU_SITE": "sales"},
        None,
        "(site 'sales') refused the personal access",
    ),
    "a missing project": (
        {"ATTRIBUTION_TABLEAU_PROJECT": "Attributon"},
        None,
        "has no project named 'Attributon'; its projects include 'Default', 'Finance'",
    ),
    "a server that is down": (
        {"ATTRIBUTION_TABLEAU_URL": nowhere()},
        None,
        "cannot be reached: connection refused",
    ),
    "a server that does not answer in time": (
        {"ATTRIBUTION_TABLEAU_TIMEOUT": "1"},
        stalled,
        "did not answer within 10 s to connect or 1 s to reply",
    ),
    "no extract": ({}, None, "No Hyper extract at {out}/channel_reporting.hyper: write it first"),
    "no project set": (
        {"ATTRIBUTION_TABLEAU_PROJECT": ""},
        None,
        "Publishing to Tableau needs ATTRIBUTION_TABLEAU_PROJECT",
    ),
}


@pytest.mark.parametrize("case", FAILURES)
def test_every_failure_is_one_line_without_the_secret(
    tableau, reports, tmp_path, monkeypatch, capsys, every_log, case
):
    environment, arrange, message = FAILURES[case]
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if arrange:
        arrange(tableau)
    out = tmp_path if case == "no extract" else reports
    code, shown, err = publish_command(capsys, "--out", str(out))
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("Error: ") and message.format(out=out) in err and "Traceback" not in err
    assert TOKEN_SECRET not in shown + err + every_log.text
    assert not tableau.publishes


@pytest.mark.parametrize(
    ("settings", "kind", "marker"),
    [
        ({"token_secret": "pat-secret-wrong-0000"}, TableauSignInError, TerminalError),
        ({"project": "Attributon"}, TableauRefusedError, TerminalError),
        ({"url": nowhere()}, TableauUnreachableError, TransientError),
    ],
)
def test_a_scheduler_retries_a_server_that_is_down_and_nothing_else(tableau, reports, settings, kind, marker):
    given = {"url": tableau.url, "site": SITE, "project": PROJECT, "datasource": None}
    target = TableauTarget(**{**given, "token_name": TOKEN_NAME, "token_secret": TOKEN_SECRET, **settings})
    with pytest.raises(kind) as raised:
        publish_extract(reports / EXTRACT_NAME, target)
    assert isinstance(raised.value, marker)


def test_the_secret_is_no_flag(tableau, reports, capsys):
    code, _out, err = publish_command(capsys, "--out", str(reports), "--tableau-token-secret", TOKEN_SECRET)
    assert code == 2 and "No such option" in err and not tableau.publishes


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:{port}", "Bad tableau_url: it must start with https://"),
        ("https://", "Bad tableau_url 'https://': not a URL of a server"),
        ("http://127.0.0.1:{port}0000", "not a URL of a server"),
        ("https://tableau .example", "not a URL of a server"),
    ],
)
def test_a_url_the_client_cannot_use_is_refused_before_the_secret_is_sent(
    tableau, reports, monkeypatch, capsys, url, message
):
    monkeypatch.setenv("ATTRIBUTION_TABLEAU_URL", url.format(port=tableau.url.rpartition(":")[2]))
    code, _out, err = publish_command(capsys, "--out", str(reports))
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert not tableau.requests
