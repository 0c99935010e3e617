"""Every statement a run sends, planned as the run sends it on a fresh generated file (no pipeline index
yet): none scans a whole table inside a loop, for any model, range, bad-row policy or runner, on SQLite and
on PostgreSQL without ``--create-indexes``.

Before the fix, Markov and Shapley read their null paths before the first run built the user index (the
page of users joined the sessions by a full scan per user: 868 s for 60,000 sessions), and on PostgreSQL
the skip filters' row estimate of 1 made the journey join rescan ``session_sources`` per conversion.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from attribution import load_settings, run
from attribution.pipeline import scheduled
from attribution.pipeline.settings import Settings
from attribution.sample_data.generate import generate_database
from attribution.warehouse.copy_db import copy_inputs
from attribution.warehouse.engine import connect
from tests.pipeline.test_source_mapping import mapping_toml, users_form
from tests.pipeline.test_typed_inputs import FORMS, SERVER_FORMS
from tests.plans import (
    recorded_conditions,
    recorded_filters,
    recorded_full_scans,
    recorded_plans,
    recorded_reads,
    unserved,
)
from tests.retyped import challenge_form, read_rows, renumbered, write_form

DAY = ("2023-09-04", "2023-09-05")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated file as `attribution generate` makes it: arrival layout, no pipeline index."""
    path = tmp_path_factory.mktemp("plans") / "generated.db"
    generate_database(path, sessions=3_000, conversions=150, days=5, seed=11)
    return path


def fresh_copy(generated: Path, tmp_path: Path) -> str:
    copy = tmp_path / "fresh.db"
    copy.write_bytes(generated.read_bytes())
    return str(copy)


def assert_no_loop_scans(recorded) -> None:
    assert recorded.statements, "no statement was planned"
    shown = "\n\n".join(f"{loops}\n{statement.strip()[:400]}" for statement, loops in recorded.loops)
    assert not recorded.loops, f"full scans inside a loop:\n{shown}"


@pytest.mark.parametrize("model", ["linear", "markov", "shapley", "ihc"])
@pytest.mark.parametrize("bounds", [(None, None), DAY], ids=["open", "day"])
@pytest.mark.parametrize("policy", ["error", "skip"])
def test_a_first_run_on_sqlite_never_scans_inside_a_loop(generated, tmp_path, model, bounds, policy):
    db = fresh_copy(generated, tmp_path)
    start, end = bounds
    options = {"start": start, "end": end, "on_bad_rows": policy, "formats": ("csv",)}
    with recorded_plans() as recorded:
        run(load_settings(db=db, out=str(tmp_path / "out"), model=model, lookback_days=30, **options))
    assert_no_loop_scans(recorded)


def test_the_schedulers_steps_on_a_fresh_file_never_scan_inside_a_loop(generated, tmp_path):
    settings = load_settings(db=fresh_copy(generated, tmp_path), out=str(tmp_path / "out"), model="markov")
    with recorded_plans() as recorded:
        scheduled.prepare_run(settings)
        plan = scheduled.stage_journeys(settings, "plans/1")
        for batch in plan.batch_ids:
            scheduled.attribute_batch(settings, "plans/1", batch)
        scheduled.finish_run(settings, "plans/1")
    assert_no_loop_scans(recorded)


@pytest.mark.parametrize("model", ["linear", "markov"])
@pytest.mark.parametrize("bounds", [(None, None), DAY], ids=["open", "day"])
def test_postgresql_without_the_indexes_never_scans_inside_a_loop(
    generated, postgres_url, tmp_path, model, bounds
):
    copy_inputs(str(generated), postgres_url)  # analysed, as copy-db leaves a warehouse
    start, end = bounds
    settings = load_settings(
        db=postgres_url, out=str(tmp_path / "out"), model=model, on_bad_rows="skip", start=start, end=end
    )
    with recorded_plans() as recorded:
        run(settings.replaced(formats=("csv",)))
    assert_no_loop_scans(recorded)


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_a_daily_run_with_a_restatement_window_never_scans_inside_a_loop(
    generated, postgres_url, tmp_path, policy
):
    """The window's inputs are fingerprinted by one grouped query (``reporting.report_inputs``), on SQLite as
    a first run leaves the file and on PostgreSQL without the indexes."""
    copy_inputs(str(generated), postgres_url)
    options = {"start": DAY[0], "end": DAY[1], "on_bad_rows": policy, "restate_days": 3, "formats": ("csv",)}
    for db in (fresh_copy(generated, tmp_path), postgres_url):
        with recorded_plans() as recorded:
            run(load_settings(db=db, out=str(tmp_path / "out"), model="linear", lookback_days=30, **options))
        assert_no_loop_scans(recorded)
        assert any("parts AS" in statement for statement in recorded.statements)


@pytest.mark.parametrize("bounds", [(None, None), DAY], ids=["open", "day"])
def test_sqlite_typed_inputs_under_other_names_never_scan_inside_a_loop(generated, tmp_path, bounds):
    """Integer ids, BOOLEAN flags, NUMERIC money and one text timestamp under the user's own names, read
    through a source mapping. Before: ids read as text were compared as casts, which SQLite matches to no
    index on the right of a LEFT JOIN, so every conversion's sessions and every session's cost were scans."""
    db = str(tmp_path / "users.db")
    ids = dict.fromkeys(("session_id", "user_id", "conv_id"), ("INTEGER", int))
    write_form(db, renumbered(read_rows(generated)), users_form(None, "TEXT", str, **ids))
    (tmp_path / "sources.toml").write_text(mapping_toml(None, {}))
    start, end = bounds
    settings = load_settings(
        db=db,
        out=str(tmp_path / "out"),
        model="markov",
        on_bad_rows="skip",
        start=start,
        end=end,
        formats=("csv",),
        source_mapping=str(tmp_path / "sources.toml"),
    )
    with recorded_plans() as recorded:
        run(settings)
    assert_no_loop_scans(recorded)


@pytest.mark.parametrize("indexes", [False, True], ids=["without-indexes", "with-indexes"])
@pytest.mark.parametrize("bounds", [(None, None), DAY], ids=["open", "day"])
def test_postgresql_typed_inputs_in_another_schema_never_scan_inside_a_loop(
    generated, postgres_url, tmp_path, indexes, bounds, request
):
    """One timestamp column, BOOLEAN flags, NUMERIC money and BIGINT ids under the user's own names, read
    through a source mapping, analysed as a loaded warehouse is."""
    schema = f"plans_{tmp_path.name[-12:].lower()}"
    request.addfinalizer(lambda: _drop_schema(postgres_url, schema))
    ids = dict.fromkeys(("session_id", "user_id", "conv_id"), ("BIGINT", int))
    form = users_form(schema, "TIMESTAMP", datetime.fromisoformat, **ids)
    write_form(postgres_url, renumbered(read_rows(generated)), form)
    _analysed(postgres_url)
    (tmp_path / "sources.toml").write_text(mapping_toml(schema, {}))
    start, end = bounds
    settings = load_settings(
        db=postgres_url,
        out=str(tmp_path / "out"),
        model="markov",
        on_bad_rows="skip",
        start=start,
        end=end,
        create_indexes=indexes,
        formats=("csv",),
        source_mapping=str(tmp_path / "sources.toml"),
    )
    with recorded_plans() as recorded:
        run(settings)
    assert_no_loop_scans(recorded)


FROM_A_TIME = re.compile(r"conv_time\)? >= ")
"""A statement that selects conversions from a time on (the range's start), in text SQL or SQLAlchemy's."""
TYPED_TIMES = {
    "sqlite": ["date-and-time-columns", "one-timestamp-column"],
    "postgresql": ["date-and-time-columns", "one-timestamp-column", "timestamps-with-time-zone"],
}


@pytest.mark.parametrize("policy", ["error", "skip"])
@pytest.mark.parametrize(
    ("backend", "form"),
    [(backend, form) for backend, forms in TYPED_TIMES.items() for form in forms],
    indirect=["backend"],
)
def test_a_bounded_run_selects_typed_conversions_by_an_index_range(
    generated, backend, tmp_path, form, policy
):
    """Every statement that selects the range's conversions compares their stored DATE or TIMESTAMP column
    with typed bounds, which the time index serves. Before: the journey query, the credit a run replaces
    and the skipped rows compared the text made of the column, a function no index serves (SQLite read the
    whole index, PostgreSQL the whole table)."""
    db = _typed_copy(generated, backend(), form)
    settings = load_settings(
        db=db,
        out=str(tmp_path / "out"),
        model="markov",
        on_bad_rows=policy,
        start=DAY[0],
        end=DAY[1],
        create_indexes=True,
        formats=("csv",),
    )
    with recorded_reads("conversions", "ix_attribution_conversions_by_time", FROM_A_TIME) as reads:
        run(settings)
    assert reads, "no statement selected the range's conversions"
    assert not unserved(reads), f"conversions selected by a filter no index serves:\n{unserved(reads)}"


def _typed_copy(generated: str, db: str, form: str) -> str:
    """``db`` holding the generated rows in a typed ``form``, its statistics gathered; the database."""
    write_form(db, read_rows(generated), {**FORMS, **SERVER_FORMS}[form](challenge_form()))
    return _analysed(db)


def _analysed(db: str) -> str:
    """``db`` with its statistics gathered, as a loaded warehouse has them (PostgreSQL plans by them; SQLite
    has none to gather here); the database."""
    analyse = connect(db)
    if analyse.dialect.name == "postgresql":
        with analyse.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    analyse.dispose()
    return db


def _daily_settings(db: str, tmp_path) -> Settings:
    """A linear run of ``DAY`` that builds its indexes and only warns of stale inputs."""
    return load_settings(
        db=db,
        out=str(tmp_path / "out"),
        model="linear",
        start=DAY[0],
        end=DAY[1],
        create_indexes=True,
        on_stale="warn",
        formats=("csv",),
    )


NEWEST_SESSION = re.compile(r"^\s*SELECT MAX\(")
"""A statement that finds the newest session (the freshness check's), in any of its forms."""


@pytest.mark.parametrize(
    ("backend", "form"),
    [(backend, form) for backend, forms in TYPED_TIMES.items() for form in forms],
    indirect=["backend"],
)
def test_a_daily_run_finds_the_newest_typed_session_by_the_date_index(generated, backend, tmp_path, form):
    """The freshness check's newest session is read through the date index on the stored DATE or TIMESTAMP
    column: its largest value, then the sessions of the dates that value can stand for. Before: it asked
    the largest date text made of the column, a function no index serves, so a daily run read every
    session twice (1.8 s of a 9 s daily run at a million sessions, against 0.3 s on text columns)."""
    db = _typed_copy(generated, backend(), form)
    settings = _daily_settings(db, tmp_path)
    with recorded_reads("session_sources", "ix_attribution_sessions_by_date", NEWEST_SESSION) as reads:
        run(settings)
    assert reads, "no statement looked for the newest session"
    assert not unserved(reads), f"the newest session found by a read no index serves:\n{unserved(reads)}"


SESSION_CHECKS = re.compile(r"user_id IN \(SELECT v\.user_id")
"""A bounded run's checks of the sessions it reads: its conversions' users' and those of its dates."""


def test_a_bounded_check_turns_a_typed_session_of_another_date_away_by_its_stored_date(
    generated, postgres_url, tmp_path
):
    """The checks of a bounded run's sessions read those of its conversions' users or of its dates: a
    filter every session passes through (no one index serves both). Its date test compares the stored
    DATE alone (exact in the report's zone), so no session's date text is made to be tested. Before: the
    text came first, made for every session of the history (1.05 s against 0.8 s on text columns, for one
    day among a million sessions)."""
    write_form(postgres_url, read_rows(generated), FORMS["date-and-time-columns"](challenge_form()))
    settings = _daily_settings(postgres_url, tmp_path)
    with recorded_filters("session_sources", SESSION_CHECKS) as filters:
        run(settings)
    assert filters, "no session check was planned with a filter"
    for _statement, found in filters:
        assert "(event_date >= " in found and "to_char(" not in found, f"a date text is tested:\n{found}"


@pytest.mark.parametrize("form", ["text", "date-and-time-columns", "one-timestamp-column"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_a_bounded_run_checks_its_sessions_without_reading_every_session(generated, backend, tmp_path, form):
    """A bounded run checks the sessions of its conversions' users and those of its dates, each part read
    by its own index (the user index, the date index), with no whole-table read. Before: one filter, the
    users' sessions OR the dates', which no one index serves: PostgreSQL read every session (9-10 s of a
    daily run at 10 million sessions, text and typed columns alike)."""
    db = backend()
    if form == "text":
        write_form(db, read_rows(generated), challenge_form())
        _analysed(db)
    else:
        _typed_copy(generated, db, form)
    with recorded_full_scans(SESSION_CHECKS) as scans:
        run(_daily_settings(db, tmp_path))
    shown = "\n\n".join(f"{found}\n{' '.join(statement.split())[:400]}" for statement, found in scans)
    assert not scans, f"the session checks read a whole table:\n{shown}"


def _drop_schema(url: str, schema: str) -> None:
    engine = connect(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


JOURNEY_QUERY = re.compile(r"AS conv_ts")
"""The journey query (the one statement that names a conversion's timestamp so)."""
SESSION_TEXT = re.compile(r"to_char\(\(*[^,]*event_")
"""Text made of a session's stored date, time or timestamp, in a plan's condition."""


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize("form", TYPED_TIMES["postgresql"])
@pytest.mark.parametrize("lookback_days", [None, 30])
def test_typed_sessions_are_joined_to_their_conversions_without_making_text_of_them(
    generated, backend, tmp_path, form, lookback_days
):
    """The journey query compares a typed session's stored date and time (or timestamp) with its conversion
    (``Sources.stored_moment``). Before: it compared the text made of them (``to_char``), made for every pair
    the join tried: at 10M sessions a typed first run's journey step took 16.5 s against 5.5 s on text."""
    db = _typed_copy(generated, backend(), form)
    settings = load_settings(db=db, out=str(tmp_path / "out"), model="linear", formats=("csv",))
    with recorded_conditions(JOURNEY_QUERY) as conditions:
        run(settings.replaced(lookback_days=lookback_days))
    assert conditions, "the journey query was not planned"
    made_text = [condition for condition in conditions if SESSION_TEXT.search(condition)]
    assert not made_text, f"the journey query makes text of typed session columns to compare: {made_text}"
