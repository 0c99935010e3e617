"""The source mapping: a generated warehouse renamed, retyped and moved into another schema, read through a
mapping file, gives the tables and the CSV of the original; time zones and offsets are read as the mapping
says; a bad mapping is one line naming its key.

Before: the pipeline read only the challenge's names in the default schema (hand-written views were the only
way), and refused timestamps with offsets.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from attribution import load_settings, run
from attribution.errors import BadRowsError, ConfigError, SchemaError
from attribution.sample_data.generate import generate_database
from attribution.timerange import TimeRange
from attribution.warehouse.engine import connect
from attribution.warehouse.freshness import newest_session
from attribution.warehouse.source_mapping import load_source_mapping
from attribution.warehouse.sources import sources_of
from tests.builders import Case, Session
from tests.commands import attribution
from tests.conftest import POSTGRES_URL
from tests.oracle import read_tables
from tests.retyped import (
    Form,
    Rows,
    challenge_form,
    in_zone,
    read_rows,
    renamed,
    retyped,
    single_timestamp,
    to_decimal,
    with_offset,
    write_form,
)

DAY = ("2023-08-31", "2023-09-01")
TABLES = {"session_sources": "Web Sessions", "conversions": "Orders", "session_costs": "AdSpend"}
COLUMNS = {
    "session_id": "SessionKey",
    "user_id": "VisitorID",
    "channel_name": "Channel",
    "holder_engagement": "IsHolder",
    "closer_engagement": "IsCloser",
    "impression_interaction": "WasImpression",
    "event_timestamp": "Started At",
    "conv_id": "OrderID",
    "conv_timestamp": "Ordered At",
    "revenue": "Revenue",
    "cost": "Spend",
}
"""The user's own names: mixed case, a space, one name for the same column of two tables (``VisitorID``)."""


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Rows:
    path = tmp_path_factory.mktemp("mapped") / "generated.db"
    generate_database(path, sessions=1_500, conversions=80, days=4, seed=9)
    return read_rows(path)


@pytest.fixture
def other_schema(backend: Callable[[], str], request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A schema other than the connection's default on PostgreSQL (dropped after the test); ``None`` on
    SQLite, whose file has one."""
    if request.node.callspec.params["backend"] == "sqlite":
        yield None
        return
    name = f"Marketing {uuid.uuid4().hex[:8]}"
    yield name
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    admin.dispose()


def mapping_toml(schema: str | None, keys: dict[str, dict[str, object]]) -> str:
    """A mapping file naming ``TABLES`` and ``COLUMNS`` (in ``schema``), with more ``keys`` per input."""
    lines = []
    for name, table in TABLES.items():
        lines.append(f"[{name}]")
        if schema:
            lines.append(f'schema = "{schema}"')
        lines.append(f'table = "{table}"')
        for key, value in keys.get(name, {}).items():
            lines.append(f"{key} = {value!r}".replace("'", '"').replace("True", "true"))
        lines += [f'{key} = "{column}"' for key, column in COLUMNS.items() if key in KEYS[name]]
    return "\n".join(lines) + "\n"


KEYS = {
    "session_sources": {
        "session_id",
        "user_id",
        "channel_name",
        "event_timestamp",
        "holder_engagement",
        "closer_engagement",
        "impression_interaction",
    },
    "conversions": {"conv_id", "user_id", "conv_timestamp", "revenue"},
    "session_costs": {"session_id", "cost"},
}


def users_form(
    schema: str | None, timestamps: str, value: Callable[[str], object], **more: tuple[str, Callable]
) -> Form:
    """The challenge form renamed to the user's names (in ``schema``), flags as booleans, money as
    decimals, and one timestamp column per input (SQL type ``timestamps``, made by ``value``); ``more``
    columns retyped as ``retyped`` does."""
    form = retyped(
        challenge_form(),
        holder_engagement=("BOOLEAN", bool),
        closer_engagement=("BOOLEAN", bool),
        impression_interaction=("BOOLEAN", bool),
        revenue=("NUMERIC", to_decimal),
        cost=("NUMERIC", to_decimal),
        **more,
    )
    return renamed(single_timestamp(form, timestamps, value), TABLES, COLUMNS, schema)


def tables_and_csv(db: str, tmp_path: Path, name: str, **options: object) -> list:
    """The tables and CSV after a run over every date, then after a run over one day with a restatement
    window of a day before it (its inputs' fingerprints read through the mapping too)."""
    out, found = tmp_path / name, []
    for start, end, restate_days in ((None, None, 0), (*DAY, 1)):
        window = {"start": start, "end": end, "restate_days": restate_days}
        run(load_settings(db=db, out=str(out), model="linear", formats=("csv",), **window, **options))
        found.append((read_tables(db), (out / "channel_reporting.csv").read_bytes()))
    return found


def original(backend: Callable[[], str], rows: Rows, tmp_path: Path) -> list:
    db = backend()
    write_form(db, rows, challenge_form())
    return tables_and_csv(db, tmp_path, "original")


def mapped(
    backend: Callable[[], str], rows: Rows, tmp_path: Path, form: Form, toml: str, **options: object
) -> list:
    db, path = backend(), tmp_path / "sources.toml"
    write_form(db, rows, form)
    path.write_text(toml)
    return tables_and_csv(db, tmp_path, "mapped", source_mapping=str(path), **options)


def local_text(zone: str) -> Callable[[str], str]:
    """A UTC text timestamp as the naive text timestamp of the same instant in ``zone``."""
    return lambda value: (
        datetime.fromisoformat(value)
        .replace(tzinfo=UTC)
        .astimezone(ZoneInfo(zone))
        .strftime("%Y-%m-%d %H:%M:%S")
    )


def test_a_renamed_retyped_copy_in_another_schema_read_through_a_mapping_is_the_original(
    backend, other_schema, rows, tmp_path
):
    form = users_form(other_schema, "TIMESTAMP", datetime.fromisoformat)
    assert mapped(backend, rows, tmp_path, form, mapping_toml(other_schema, {})) == original(
        backend, rows, tmp_path
    )


def test_text_timestamps_with_offsets_are_read_as_utc(backend, other_schema, rows, tmp_path):
    form = users_form(other_schema, "TEXT", with_offset)
    toml = mapping_toml(
        other_schema, {"session_sources": {"offsets": True}, "conversions": {"offsets": True}}
    )
    assert mapped(backend, rows, tmp_path, form, toml) == original(backend, rows, tmp_path)


@pytest.mark.parametrize(
    ("backend", "kind"),
    # SQLite stores a TIMESTAMP as its text: the TEXT case is its case
    [(name, "TEXT") for name in ("sqlite", "postgresql", "redshift-sql")]
    + [(name, "TIMESTAMP") for name in ("postgresql", "redshift-sql")],
    indirect=["backend"],
)
def test_naive_timestamps_are_read_in_the_mapping_s_time_zone(backend, other_schema, rows, tmp_path, kind):
    form = users_form(other_schema, kind, local_text("America/New_York"))
    toml = 'time_zone = "America/New_York"\n' + mapping_toml(other_schema, {})
    assert mapped(backend, rows, tmp_path, form, toml) == original(backend, rows, tmp_path)


def test_a_report_time_zone_dates_the_report_and_reads_the_range_in_that_zone(backend, rows, tmp_path):
    """Stored in UTC, reported in Kolkata's dates: the report of a copy whose text holds Kolkata's local
    times (without a mapping), a day run's naive bounds read in Kolkata too."""
    zone = "Asia/Kolkata"
    local_copy = backend()
    write_form(local_copy, in_zone(rows, zone), challenge_form())
    reference = tables_and_csv(local_copy, tmp_path, "local")
    db, path = backend(), tmp_path / "sources.toml"
    write_form(db, rows, challenge_form())
    path.write_text(f'report_time_zone = "{zone}"\n')
    assert tables_and_csv(db, tmp_path, "reported", source_mapping=str(path)) == reference


def test_range_bounds_with_an_offset_are_read_in_the_report_time_zone():
    bounds = TimeRange.parse("2023-09-01T00:00:00+00:00", "2023-09-02", "Asia/Kolkata")
    assert (bounds.start, bounds.end) == (datetime(2023, 9, 1, 5, 30), datetime(2023, 9, 2))


# -- a bad mapping, one line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[session_sources]\nevnt_date = 'x'\n",
            r"session_sources\.evnt_date: Extra inputs are not permitted",
        ),
        ("time_zone = 'Mars/Olympus'\n", r"time_zone: unknown time zone 'Mars/Olympus'"),
        ("[conversions]\ntable = ''\n", r"conversions\.table: String should have at least 1 character"),
        (
            "[conversions]\nconv_timestamp = 'a'\nconv_date = 'b'\n",
            r"conversions\.conv_timestamp: give it or",
        ),
        ("[session_costs\n", r"not TOML"),
        ("[session_costs]\noffsets = 'maybe'\n", r"session_costs\.offsets: Input should be a valid boolean"),
    ],
)
def test_a_bad_mapping_is_one_line_naming_its_key(tmp_path, toml, message):
    path = tmp_path / "sources.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=rf"^Bad source mapping {path}: .*{message}") as refused:
        load_settings(db=str(tmp_path / "x.db"), source_mapping=str(path))
    assert "\n" not in str(refused.value)


def test_a_mapped_table_or_column_that_is_not_there_is_named(make_sqlite, tmp_path):
    db, path = make_sqlite(Case()), tmp_path / "sources.toml"
    path.write_text('[conversions]\ntable = "Orders"\n')
    with pytest.raises(SchemaError, match=r"^Input table 'Orders' is missing from "):
        run(load_settings(db=db, out=str(tmp_path), source_mapping=str(path)))
    path.write_text('[conversions]\nrevenue = "Amount"\n')
    with pytest.raises(
        SchemaError, match=r"^Input table 'conversions' has no column 'Amount' \(expected: .*Amount"
    ):
        run(load_settings(db=db, out=str(tmp_path), source_mapping=str(path)))


def test_the_environment_and_the_flag_name_the_mapping_file(tmp_path, rows, monkeypatch):
    db, path = str(tmp_path / "users.db"), tmp_path / "sources.toml"
    write_form(db, rows, users_form(None, "TEXT", str))
    path.write_text(mapping_toml(None, {}))
    monkeypatch.setenv("ATTRIBUTION_SOURCE_MAPPING", str(path))
    assert load_settings(db=db).warehouse.sources.session_sources.table == "Web Sessions"
    monkeypatch.delenv("ATTRIBUTION_SOURCE_MAPPING")
    checked = attribution("check", "--db", db, "--source-mapping", str(path))
    assert checked.returncode == 0, checked.stderr
    assert "bad-engagement-flag" in checked.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_check_names_each_input_by_the_user_s_table(backend, other_schema, rows, tmp_path):
    """``attribution check``'s table column shows the user's tables, with their schema. Before: the
    challenge's names (``session_sources``), which the user's warehouse does not have."""
    db, path = backend(), tmp_path / "sources.toml"
    write_form(db, rows, users_form(other_schema, "TEXT", str))
    path.write_text(mapping_toml(other_schema, {}))
    checked = attribution("check", "--db", db, "--source-mapping", str(path))
    assert checked.returncode == 0, checked.stderr
    where = f"{other_schema}." if other_schema else ""
    lines = {line.split()[0]: line for line in checked.stdout.splitlines() if line.strip()}
    for check, name in (("duplicate-conv-id", "conversions"), ("bad-engagement-flag", "session_sources")):
        shown = lines[check].removeprefix(check).lstrip()
        assert shown.startswith(f"{where}{TABLES[name]} "), lines[check]


def _first_changed(rows: Rows, name: str, **values: object) -> Rows:
    """``rows`` with the first row of input ``name`` changed."""
    changed = [dict(row) for row in rows[name]]
    changed[0].update(values)
    return {**rows, name: changed}


@pytest.mark.parametrize(
    ("defect", "line"),
    [
        (
            lambda rows: {**rows, "session_sources": [rows["session_sources"][0], *rows["session_sources"]]},
            "Web Sessions: 1 SessionKey appears more than once (duplicate-session-id): ",
        ),
        (
            lambda rows: _first_changed(rows, "session_sources", holder_engagement=None),
            "Web Sessions: 1 row has a NULL VisitorID, Started At, IsHolder, IsCloser or WasImpression "
            "(missing-session-value): ",
        ),
        (
            lambda rows: _first_changed(rows, "conversions", conv_time="25:00:00"),
            "Orders: 1 row has a Ordered At that is no timestamp (YYYY-MM-DD HH:MM:SS, no fraction) "
            "(bad-conversion-timestamp): ",
        ),
    ],
    ids=["duplicate", "null", "malformed"],
)
def test_a_bad_row_is_named_by_the_user_s_table_and_columns(
    backend, other_schema, rows, tmp_path, defect, line
):
    """Before: the line named the challenge's table and columns (``session_sources: 1 session_id appears more
    than once``), which the user's warehouse does not have."""
    db, path = backend(), tmp_path / "sources.toml"
    write_form(db, defect(rows), users_form(other_schema, "TEXT", str))
    path.write_text(mapping_toml(other_schema, {}))
    with pytest.raises(BadRowsError) as refused:
        run(load_settings(db=db, out=str(tmp_path), model="linear", source_mapping=str(path)))
    where = f"{other_schema}." if other_schema else ""
    assert str(refused.value).startswith(f"Bad input rows in {where}{line}")


NEWEST_FORMS = {
    "utc-timestamps": (lambda schema: users_form(schema, "TIMESTAMP", datetime.fromisoformat), {}, ""),
    "offsets": (
        lambda schema: users_form(schema, "TEXT", with_offset),
        {"session_sources": {"offsets": True}, "conversions": {"offsets": True}},
        "",
    ),
    "new-york": (
        lambda schema: users_form(schema, "TEXT", local_text("America/New_York")),
        {},
        'time_zone = "America/New_York"\n',
    ),
}


@pytest.mark.parametrize("form", list(NEWEST_FORMS))
def test_the_newest_session_read_through_a_mapping_is_the_original_s(
    backend, other_schema, rows, tmp_path, form
):
    """The freshness check finds the newest session through the largest stored timestamp and the dates it
    can stand for (a day either side where its zone or offset moves it); a stored value that names no day
    is compared as text, as before (a bounded run checks only its own rows)."""
    make, keys, zone = NEWEST_FORMS[form]
    db, path = backend(), tmp_path / "sources.toml"
    write_form(db, rows, make(other_schema))
    path.write_text(zone + mapping_toml(other_schema, keys))
    engine = connect(db, sources=load_source_mapping(str(path)))
    with engine.connect() as conn:
        found = newest_session(conn, sources_of(conn))
    engine.dispose()
    assert found == max(f"{row['event_date']} {row['event_time']}" for row in rows["session_sources"])


def test_a_newest_session_date_that_names_no_day_is_compared_as_text(make_db):
    db = make_db(Case(sessions=[Session("s1", "u1", "2023-09-01 10:00:00", "Organic Traffic")]))
    engine = connect(db)
    with engine.begin() as conn:
        conn.execute(text("UPDATE session_sources SET event_date = 'soon'"))
    with engine.connect() as conn:
        found = newest_session(conn, sources_of(conn))
    engine.dispose()
    assert found == "soon 10:00:00"
