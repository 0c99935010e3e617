"""The command line: a run end to end, and one clear line with a non-zero exit for every user error."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import tempfile
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from attribution.app.local_ihc import local_ihc_server
from attribution.errors import ConfigError
from attribution.models import MODEL_NAMES
from tests.builders import Case, Conversion, Session, write_case
from tests.cases import PAID
from tests.commands import attribution, attribution_in_process


def test_run_prints_a_summary_and_writes_the_csv(make_sqlite, tmp_path):
    result = attribution(
        "run", "--db", make_sqlite(PAID), "--out", str(tmp_path / "out"), "--model", "linear"
    )
    assert result.returncode == 0, result.stderr
    assert "journeys attributed" in result.stdout and "conversions without sessions" in result.stdout
    assert (tmp_path / "out" / "channel_reporting.csv").read_text().startswith("channel_name,date,cost,ihc")


def test_report_exports_the_stored_report(make_sqlite, tmp_path):
    db = make_sqlite(PAID)
    assert attribution("run", "--db", db, "--out", str(tmp_path / "a")).returncode == 0
    result = attribution("report", "--db", db, "--out", str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a/channel_reporting.csv").read_bytes() == (
        tmp_path / "b/channel_reporting.csv"
    ).read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2023-13-01"], "Bad start '2023-13-01'"),
        (["--start", "2023-09-05", "--end", "2023-09-01"], "is not before end"),
        (["--model", "lst-touch"], "Did you mean 'last-touch'?"),
        (["--lookback-days", "0"], "Bad setting lookback_days"),
        (["--lookback-days", "3000000"], "Bad setting lookback_days: Input should be less than or equal to"),
        (["--max-retries", "100000"], "Bad setting max_retries"),
        (["--concurrency", "100000"], "Bad setting concurrency"),
        (["--rate-limit", "inf"], "Bad setting rate_limit"),
        (["--half-life-hours", "1e308"], "Bad setting half_life_hours"),
    ],
)
def test_bad_options_end_with_one_line_and_exit_1(make_sqlite, tmp_path, args, message):
    result = attribution("run", "--db", make_sqlite(PAID), "--out", str(tmp_path), *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_lookback_sqlite_cannot_compute_is_refused_before_it_wipes_the_credit(make_sqlite, tmp_path):
    """Issue 21 item 12: on SQLite `datetime(ts, '-3000000 days')` is NULL, so every conversion came out
    without sessions: exit 0, the credit table emptied, the run recorded as succeeded."""
    db = make_sqlite(PAID)
    assert attribution("run", "--db", db, "--out", str(tmp_path), "--model", "linear").returncode == 0
    result = attribution(
        "run", "--db", db, "--out", str(tmp_path), "--model", "linear", "--lookback-days", "3000000"
    )
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "lookback_days" in result.stderr
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM attribution_customer_journey").fetchone()[0] > 0
        assert conn.execute("SELECT status FROM attribution_runs").fetchall() == [("succeeded",)]


def test_run_never_creates_a_missing_database(tmp_path):
    result = attribution("run", "--db", str(tmp_path / "missing.db"), "--out", str(tmp_path))
    assert result.returncode == 1
    assert "Database file not found" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize("command", ["run", "check", "report"])
@pytest.mark.parametrize("kind", ["text file", "folder"])
def test_a_db_that_is_not_a_database_is_named_in_one_line(tmp_path, command, kind):
    path = tmp_path / "README.md"
    path.mkdir() if kind == "folder" else path.write_text("# not a database\n")
    options = ("--out", str(tmp_path / "out")) if command != "check" else ()
    result = attribution(command, "--db", str(path), *options)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"Error: Not a SQLite database: {path}" + (
        " is a folder" if kind == "folder" else " (its first bytes are not SQLite's header)"
    )


def test_a_missing_table_is_named_in_one_line(tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).execute("CREATE TABLE unrelated (x INTEGER)").connection.close()
    result = attribution("run", "--db", str(path), "--out", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: Input table 'session_sources' is missing from sqlite:///" + str(
        path
    )


def test_debug_shows_the_traceback(tmp_path):
    result = attribution("--debug", "run", "--db", str(tmp_path / "missing.db"))
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.parametrize("debug", [[], ["--debug"]])
@pytest.mark.parametrize("command", ["run", "copy-db"])
def test_a_database_password_with_an_unencoded_at_is_refused_in_one_line_that_shows_none_of_it(
    tmp_path, command, debug
):
    url = "postgresql+psycopg://analyst:Kq7@Zx9-w@127.0.0.1:5432/warehouse"
    given = ["--db", url, "--out", str(tmp_path)] if command == "run" else ["--from", url, "--to", "x.db"]
    result = attribution(*debug, command, *given)
    assert result.returncode == 1
    assert not any(part in result.stdout + result.stderr for part in ("Kq7", "Zx9-w")), result.stderr
    if not debug:
        assert result.stderr.count("\n") == 1 and "%40" in result.stderr, result.stderr


def test_run_with_the_local_ihc_server_credits_every_journey(make_sqlite, tmp_path):
    db = make_sqlite(PAID)
    result = attribution(
        "run", "--db", db, "--out", str(tmp_path / "out"), "--model", "ihc-api", "--local-ihc"
    )
    assert result.returncode == 0, result.stderr
    with closing(sqlite3.connect(db)) as conn:
        runs = conn.execute("SELECT status, model FROM attribution_runs").fetchall()
        credited, total = conn.execute(
            "SELECT count(DISTINCT conv_id), sum(ihc) FROM attribution_customer_journey"
        ).fetchone()
    assert runs == [("succeeded", "ihc-api")]
    assert credited == 4 and total == pytest.approx(4.0)  # every journey of PAID with a session
    assert (tmp_path / "out" / "channel_reporting.csv").read_text().startswith("channel_name,date")


def test_the_local_ihc_log_is_private_and_a_planted_link_is_not_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "attribution-local-ihc.log").symlink_to(victim)  # the old, predictable path
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with local_ihc_server(print) as (url, _key):  # print: told nothing, the run succeeds
        assert url.startswith("http://")
    assert victim.read_text() == "keep me"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["attribution-local-ihc.log", "victim.txt"]


def test_a_failed_local_ihc_run_says_where_the_server_log_is(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    told: list[Path] = []
    with pytest.raises(ConfigError), local_ihc_server(told.append):
        raise ConfigError("the run failed")
    (log,) = told
    assert log.parent.parent == tmp_path and stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    assert "Started server process" in log.read_text()


def test_an_api_key_read_with_its_line_break_is_one_line_that_never_shows_it(
    make_sqlite, tmp_path, monkeypatch
):
    monkeypatch.setenv("IHC_API_KEY", "from-a-file-3b7d\r\n")
    result = attribution(
        "run", "--db", make_sqlite(PAID), "--out", str(tmp_path), "--model", "ihc-api",
        "--ihc-url", "http://127.0.0.1:9", "--max-retries", "0",
    )  # fmt: skip
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "ihc_api_key" in result.stderr and "whitespace or a control character" in result.stderr
    assert "from-a-file" not in result.stderr + result.stdout


def test_a_non_ascii_api_key_is_one_line_that_shows_no_character_of_it(make_sqlite, tmp_path, monkeypatch):
    """Issue 21 item 11: a 105-line UnicodeEncodeError traceback, and the run record kept a character of the
    key and its position."""
    db = make_sqlite(PAID)
    monkeypatch.setenv("IHC_API_KEY", "k\u00e9y-3b7d")
    result = attribution(
        "run", "--db", db, "--out", str(tmp_path), "--model", "ihc-api", "--ihc-url", "http://127.0.0.1:9",
    )  # fmt: skip
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "ihc_api_key" in result.stderr and "printable ASCII" in result.stderr
    assert not any(part in result.stderr for part in ("\u00e9", "3b7d", "position"))
    with closing(sqlite3.connect(db)) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "attribution_runs" not in tables  # refused before any work


HEAVY = {"polars", "sqlalchemy", "httpx", "scipy", "plotly", "pydantic", "numpy", "rich"}
"""What `attribution --help` and the CLI's import never load: each command imports what it needs."""
HELP = "from attribution.cli import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"


@pytest.mark.parametrize("code", ["import attribution.cli\n", HELP], ids=["import", "help"])
def test_the_cli_starts_without_its_heavy_libraries(code):
    """Issue 26 item 5: `attribution --help` and a run's start stay fast only while the commands import these
    themselves (Rich's help formatting among them: the help is plain)."""
    report = "import sys\nprint('loaded:', *sorted({name.split('.')[0] for name in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", code + report], capture_output=True, text=True, check=True)
    modules = set(loaded.stdout.split("loaded:")[1].split())
    assert modules & HEAVY == set()


def test_the_model_help_lists_every_model():
    result = attribution("run", "--help")
    assert result.returncode == 0
    assert all(name in result.stdout for name in MODEL_NAMES)


def test_generate_writes_the_layout_asked_for(tmp_path):
    db = tmp_path / "sorted.db"
    result = attribution(
        "generate", "--db", str(db), "--sessions", "2000", "--conversions", "20", "--layout", "sorted"
    )
    assert result.returncode == 0 and "sorted layout" in result.stdout
    with closing(sqlite3.connect(db)) as conn:
        ids = [row[0] for row in conn.execute("SELECT session_id FROM session_sources ORDER BY rowid")]
    assert ids == sorted(ids)


def _with(*, sessions: tuple = (), conversions: tuple = ()) -> Case:
    return replace(PAID, sessions=[*PAID.sessions, *sessions], conversions=[*PAID.conversions, *conversions])


BAD_INPUTS = {
    "offset": (_with(sessions=(Session("t1", "u1", "2023-09-02 09:30:00-05:00"),)), "bad-session-time", "t1"),
    "fraction": (_with(sessions=(Session("t2", "u1", "2023-09-02 09:30:00.25"),)), "bad-session-time", "t2"),
    "T": (
        _with(conversions=(Conversion("c9", "u1", "2023-09-05T09:00:00 09:00:00"),)),
        "bad-conversion-timestamp",
        "c9",
    ),
    "impossible date": (
        _with(sessions=(Session("d1x", "u1", "2023-02-30 10:00:00"),)),
        "bad-session-date",
        "d1x",
    ),
    "slashed date": (
        _with(sessions=(Session("d2x", "u1", "2023/09/02 10:00:00"),)),
        "bad-session-date",
        "d2x",
    ),
    "text revenue": (
        _with(conversions=(Conversion("c9", "u1", "2023-09-05 09:00:00", "ten"),)),
        "non-numeric-revenue",
        "c9",
    ),
    "engagement yes": (
        _with(sessions=(Session("f1", "u1", "2023-09-02 11:00:00", closer="yes"),)),
        "bad-engagement-flag",
        "f1",
    ),
    "engagement 300": (
        _with(sessions=(Session("f2", "u1", "2023-09-02 11:00:00", holder=300),)),
        "bad-engagement-flag",
        "f2",
    ),
    "text cost": (
        _with(sessions=(Session("x1", "u9", "2023-09-02 11:00:00", cost="n/a"),)),
        "non-numeric-cost",
        "x1",
    ),
    "infinite revenue": (
        _with(conversions=(Conversion("c9", "u1", "2023-09-05 09:00:00", float("inf")),)),
        "revenue-out-of-range",
        "c9",
    ),
    "cost 1e13": (
        _with(sessions=(Session("x1", "u9", "2023-09-02 11:00:00", cost=1e13),)),
        "cost-out-of-range",
        "x1",
    ),
    "NULL channel": (
        _with(sessions=(Session("n1", "u9", "2023-09-02 11:00:00", channel=None),)),
        "missing-session-key",
        "n1",
    ),
}


@pytest.mark.parametrize("defect", sorted(BAD_INPUTS))
def test_bad_input_rows_end_with_one_line_naming_the_check_and_the_rows(make_sqlite, tmp_path, defect):
    """Issue item 8: each used to end in a traceback (Polars, the export, connectorx, the report insert)."""
    case, check, row = BAD_INPUTS[defect]
    db = make_sqlite(case, keyed=False)
    code, stderr = attribution_in_process("run", "--db", db, "--out", str(tmp_path), "--model", "ihc")
    assert code == 1, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert f"({check}): {row}" in stderr


def test_skipped_rows_are_printed(make_sqlite, tmp_path):
    db = make_sqlite(BAD_INPUTS["offset"][0], keyed=False)
    result = attribution("run", "--db", db, "--out", str(tmp_path), "--on-bad-rows", "skip")
    assert result.returncode == 0, result.stderr
    assert "sessions skipped" in result.stdout and "conversions skipped" in result.stdout


def _check_report(db: str) -> subprocess.CompletedProcess:
    return attribution("check", "--db", db)


def test_check_reports_every_failing_check_over_the_whole_database(make_sqlite, postgres_url):
    case = _with(
        sessions=(
            Session("t1", "u1", "2023-09-02 9:30:00"),
            Session("a1", "u1", "2023-09-01 10:00:00"),
            Session("x2", "u9", "2023-09-02 11:00:00", cost=float("-inf")),
        ),
        conversions=(Conversion("c9", "u1", "2023-09-05 09:00:00", None),),
    )
    write_case(postgres_url, case, keyed=False)
    for db in (make_sqlite(case, keyed=False), postgres_url):
        result = _check_report(db)
        assert result.returncode == 1, result.stderr
        lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
        for expected in (
            "bad-session-time session_sources 1 t1",
            "duplicate-session-id session_sources 1 a1",
            "duplicate-cost-session-id session_costs 1 a1",
            "missing-conversion-value conversions 1 c9",
            "bad-engagement-flag session_sources 0",
            "cost-out-of-range session_costs 1 x2",
            "revenue-out-of-range conversions 0",
        ):
            assert any(expected in line for line in lines), (expected, result.stdout)


def test_check_passes_a_clean_database(make_sqlite, postgres_url):
    write_case(postgres_url, PAID, keyed=False)
    for db in (make_sqlite(PAID), postgres_url):
        result = _check_report(db)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "every check passed" in result.stdout


@pytest.mark.parametrize(
    "args", [("run", "--no-such-flag"), ("no-such-command",), ("run", "--lookback-days", "many")]
)
def test_usage_errors_exit_2_as_the_readme_says(args):
    result = attribution(*args)
    assert result.returncode == 2 and "Usage:" in result.stderr
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "| 2 | a usage error" in readme


def test_an_output_table_made_by_someone_else_is_named_in_one_line_and_nothing_is_written(
    make_sqlite, tmp_path
):
    db = make_sqlite(PAID)
    with closing(sqlite3.connect(db)) as con, con:
        con.execute("CREATE TABLE channel_reporting (region TEXT, visits INTEGER)")
    result = attribution("run", "--db", db, "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: Output table 'channel_reporting' exists without the column(s) channel_name, date, cost, ihc, "
        "ihc_revenue: it was not made by this pipeline; rename or drop it, or use another database"
    ]
    with closing(sqlite3.connect(db)) as con:
        assert con.execute("SELECT COUNT(*) FROM channel_reporting").fetchone() == (0,)
        assert [row[1] for row in con.execute("PRAGMA table_info(channel_reporting)")] == ["region", "visits"]


HOSTILE_CHANNELS = (
    "[/]",
    "[link=https://evil.example]Organic Traffic[/link]",
    "\x1b]0;title\x07Owned",
    "\x1b[31mRed",
)
"""Channel names as a warehouse may hold them: Rich markup, a hidden link, terminal escapes (OSC, CSI)."""


def _hostile_channels() -> Case:
    sessions = [
        Session(f"h{i}", "uh", f"2023-09-01 1{i}:00:00", channel, cost=1.0)
        for i, channel in enumerate(HOSTILE_CHANNELS)
    ]
    return Case(sessions, [Conversion("hc", "uh", "2023-09-01 20:00:00")])


@pytest.mark.parametrize(
    "command",
    [
        ["demo"],
        ["report"],
        [
            "compare",
            "--model",
            "last-touch",
            "--model",
            "linear",
            "--start",
            "2023-09-01",
            "--end",
            "2023-09-02",
        ],
    ],
    ids=["demo", "report", "compare"],
)
def test_markup_and_terminal_escapes_from_the_warehouse_print_as_plain_text(
    make_sqlite, tmp_path, monkeypatch, command
):
    """Issue 21 item 4: `[/]` ended report, compare and demo in a MarkupError traceback; a `[link=...]`
    channel became a hidden link; ESC sequences reached the terminal."""
    monkeypatch.setenv("COLUMNS", "250")  # one table row per line
    db = make_sqlite(_hostile_channels())
    if command == ["report"]:
        assert attribution("run", "--db", db, "--out", str(tmp_path / "run")).returncode == 0
    result = attribution(
        *command, "--db", db, *(["--out", str(tmp_path / "out")] if len(command) == 1 else [])
    )
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    for shown in ("[/]", "[link=https://evil.example]Organic Traffic[/link]", "]0;titleOwned", "[31mRed"):
        assert shown in result.stdout, (shown, result.stdout)


@pytest.mark.parametrize("row_id", ["[/red]", "\x1b[31mred\r\nError: forged"])
def test_a_bad_row_id_with_markup_or_control_characters_is_one_plain_line(make_sqlite, tmp_path, row_id):
    """Issue 21 item 4: a bad-row id `[/red]` turned the one-line error into a traceback."""
    twice = [Session(row_id, "u1", "2023-09-01 10:00:00"), Session(row_id, "u1", "2023-09-01 11:00:00")]
    db = make_sqlite(_with(sessions=tuple(twice)), keyed=False)
    result = attribution("run", "--db", db, "--out", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "\x1b" not in result.stderr
    assert "(duplicate-session-id)" in result.stderr and "red" in result.stderr


@pytest.mark.parametrize(
    "command",
    [["compare", "--model", "last-touch", "--model", "markov"], ["train-ihc", "--conv-type-id", "shop"]],
)
def test_compare_and_training_run_the_input_checks_they_depend_on(make_sqlite, command):
    """Issue 21 item 18: a duplicate conv_id gave "Model returned 535 credit rows for 535 journey sessions"."""
    twice = _with(conversions=(Conversion("c5", "u9", "2023-09-05 00:00:00", 40.0),))
    code, stderr = attribution_in_process(*command, "--db", make_sqlite(twice, keyed=False))
    assert code == 1 and len(stderr.strip().splitlines()) == 1, stderr
    assert "(duplicate-conv-id): c5" in stderr


def test_every_settings_flag_is_a_setting_and_every_command_takes_only_declared_ones():
    """A flag a command takes by a setting's name (``flags.takes``) is that setting, named as ``OPTIONS``
    names it, so the flag, its environment variable and the DAG's param are one vocabulary."""
    from attribution.console import flags
    from attribution.pipeline.settings import OPTIONS

    declared = {**flags.SETTING_FLAGS, **flags.TABLEAU_FLAGS}
    assert set(declared) <= set(OPTIONS)
    with pytest.raises(KeyError, match="no_such_setting"):
        flags.takes("db", "no_such_setting")
