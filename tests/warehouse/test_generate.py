"""attribution.generate: the tables, the ids, determinism, refusals and the shape of the journeys."""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, closing
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite as sqlite_dialect

from attribution.errors import ConfigError
from attribution.sample_data.generate import CHANNELS, PAID_CHANNELS, GenerateSummary, generate_database
from attribution.sample_data.options import LAYOUTS, Layout
from attribution.warehouse.tables import INPUT_TABLES

SMALL = {"sessions": 5_000, "conversions": 100, "chunk_sessions": 2_000}
KEYS = [("session_sources", "session_id"), ("session_costs", "session_id"), ("conversions", "conv_id")]

# The journeys as the challenge defines them: the user's sessions strictly before the conversion.
JOURNEYS = """
    SELECT c.conv_id, c.user_id, s.session_id, s.channel_name
    FROM conversions AS c
    JOIN session_sources AS s
      ON s.user_id = c.user_id
     AND s.event_date || ' ' || s.event_time < c.conv_date || ' ' || c.conv_time
"""
LENGTHS = f"SELECT count(*) AS n FROM ({JOURNEYS}) GROUP BY conv_id"
PAID = ", ".join(f"'{name}'" for name in sorted(PAID_CHANNELS))


@pytest.fixture(scope="module")
def generated(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GenerateSummary, sqlite3.Connection]]:
    """One file shaped like the real one (50 sessions per conversion), in two chunks."""
    path = tmp_path_factory.mktemp("generated") / "challenge.db"
    summary = generate_database(path, sessions=50_000, conversions=1_000, chunk_sessions=25_000)
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        db.execute(f"CREATE TEMP TABLE journeys AS {JOURNEYS}")
        yield summary, db


def scalar(db: sqlite3.Connection, sql: str) -> float:
    return db.execute(sql).fetchone()[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_channels_are_the_sixteen_of_the_challenge_file_in_order() -> None:
    challenge = """Direct Traffic, Performance Max, Newsletter & Email, Paid Search Brand, Organic Traffic,
        FB & IG Ads, Affiliate & Partnerships, Referral, Untracked Conversions, Paid Search Non Brand,
        Social Organic, Microsoft Ads, TikTok Ads, Lead Generation, Pinterest Ads, YouTube Ads"""
    assert tuple(name.strip() for name in challenge.split(",")) == CHANNELS
    paid = {
        "Performance Max",
        "Paid Search Brand",
        "FB & IG Ads",
        "Affiliate & Partnerships",
        "Paid Search Non Brand",
        "Microsoft Ads",
        "TikTok Ads",
        "Lead Generation",
        "Pinterest Ads",
        "YouTube Ads",
    }
    assert paid == PAID_CHANNELS


def test_tables_and_column_types_match_the_warehouse_definitions(generated) -> None:
    _, db = generated
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {table.name for table in INPUT_TABLES}
    for table in INPUT_TABLES:
        expected = [
            (c.name, c.type.compile(dialect=sqlite_dialect.dialect()), not c.nullable, int(c.primary_key))
            for c in table.columns
        ]
        found = [
            (name, kind, bool(notnull), pk)
            for _, name, kind, notnull, _, pk in db.execute(f"PRAGMA table_info({table.name})")
        ]
        assert found == expected


def test_summary_counts_what_the_file_holds(generated) -> None:
    summary, db = generated
    assert (summary.sessions, summary.conversions, summary.days) == (50_000, 1_000, 10)
    assert scalar(db, "SELECT count(*) FROM session_sources") == summary.sessions
    assert scalar(db, "SELECT count(*) FROM session_costs") == summary.sessions
    assert scalar(db, "SELECT count(*) FROM conversions") == summary.conversions
    users = "SELECT user_id FROM session_sources UNION SELECT user_id FROM conversions"
    assert scalar(db, f"SELECT count(*) FROM ({users})") == summary.users == 50_000 // 3


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("session_sources", "session_id"),
        ("session_sources", "user_id"),
        ("conversions", "conv_id"),
    ],
)
def test_ids_are_64_lowercase_hex_digits(generated, table: str, column: str) -> None:
    _, db = generated
    bad = f"SELECT count(*) FROM {table} WHERE length({column}) != 64 OR {column} GLOB '*[^0-9a-f]*'"
    assert scalar(db, bad) == 0


def test_ids_are_unique_across_chunks_and_tables(generated) -> None:
    _, db = generated
    ids = "SELECT session_id AS id FROM session_sources UNION ALL SELECT conv_id FROM conversions"
    assert scalar(db, f"SELECT count(DISTINCT id) FROM ({ids})") == 51_000
    assert scalar(db, "SELECT count(*) FROM session_costs JOIN session_sources USING (session_id)") == 50_000


def test_dates_times_and_revenue_are_challenge_texts_and_numbers(generated) -> None:
    _, db = generated
    assert db.execute("SELECT min(event_date), max(event_date) FROM session_sources").fetchone() == (
        "2023-08-29",
        "2023-09-07",
    )
    assert scalar(
        db, "SELECT min(conv_date) >= '2023-08-29' AND max(conv_date) <= '2023-09-07' FROM conversions"
    )
    stamp = "[0-2][0-9]:[0-5][0-9]:[0-5][0-9]"
    assert scalar(db, f"SELECT count(*) FROM session_sources WHERE event_time NOT GLOB '{stamp}'") == 0
    assert scalar(db, f"SELECT count(*) FROM conversions WHERE conv_time NOT GLOB '{stamp}'") == 0
    assert (
        scalar(db, "SELECT count(*) FROM conversions WHERE revenue <= 0 OR revenue != round(revenue, 2)") == 0
    )


def test_every_channel_appears_and_impressions_are_a_display_minority(generated) -> None:
    _, db = generated
    assert scalar(db, "SELECT count(DISTINCT channel_name) FROM session_sources") == 16
    assert 0.05 < scalar(db, "SELECT avg(impression_interaction) FROM session_sources") < 0.15
    on_social = "SELECT avg(impression_interaction) FROM session_sources WHERE channel_name IN "
    assert scalar(db, on_social + "('FB & IG Ads', 'TikTok Ads', 'YouTube Ads')") > 0.3
    assert scalar(db, on_social + "('Direct Traffic', 'Paid Search Brand')") == 0
    flags = "holder_engagement IN (0, 1) AND closer_engagement IN (0, 1) AND impression_interaction IN (0, 1)"
    assert scalar(db, f"SELECT count(*) FROM session_sources WHERE NOT ({flags})") == 0


def test_unpaid_sessions_cost_zero_or_null_and_most_paid_ones_cost_something(generated) -> None:
    _, db = generated
    costs = "FROM session_sources JOIN session_costs USING (session_id) WHERE channel_name"
    assert scalar(db, f"SELECT count(*) {costs} NOT IN ({PAID}) AND cost != 0") == 0
    assert scalar(db, f"SELECT avg(cost IS NULL) {costs} NOT IN ({PAID})") == pytest.approx(0.5, abs=0.05)
    assert scalar(db, f"SELECT count(*) {costs} IN ({PAID}) AND cost IS NULL") == 0
    assert 0.9 < scalar(db, f"SELECT avg(cost > 0) {costs} IN ({PAID})") < 1


def test_some_conversions_have_no_earlier_session(generated) -> None:
    _, db = generated
    lonely = scalar(
        db, "SELECT count(*) FROM conversions WHERE conv_id NOT IN (SELECT conv_id FROM journeys)"
    )
    assert 10 <= lonely <= 60


def test_some_sessions_belong_to_two_journeys_of_a_user_converting_twice(generated) -> None:
    _, db = generated
    shared = "SELECT session_id, user_id FROM journeys GROUP BY session_id HAVING count(*) = 2"
    repeat_buyers = "SELECT user_id FROM conversions GROUP BY user_id HAVING count(*) = 2"
    assert scalar(db, f"SELECT count(*) FROM ({shared})") >= 5
    assert scalar(db, f"SELECT count(*) FROM ({shared}) WHERE user_id NOT IN ({repeat_buyers})") == 0
    assert scalar(db, "SELECT max(n) FROM (SELECT count(*) AS n FROM journeys GROUP BY session_id)") == 2


def test_some_sessions_sit_at_exactly_a_conversion_timestamp(generated) -> None:
    _, db = generated
    same_moment = """
        SELECT count(*) FROM session_sources AS s JOIN conversions AS c
        ON s.user_id = c.user_id AND s.event_date = c.conv_date AND s.event_time = c.conv_time
    """
    assert scalar(db, same_moment) >= 10


def test_journeys_are_mostly_short_with_a_long_tail(generated) -> None:
    _, db = generated
    lengths = "SELECT count(*) AS n FROM journeys GROUP BY conv_id"  # the temporary table: faster
    longest, mean, single = db.execute(f"SELECT max(n), avg(n), avg(n = 1) FROM ({lengths})").fetchone()
    assert 10 < longest <= 40
    assert 1.5 < mean < 2.5
    assert single >= 0.4


def test_most_sessions_belong_to_no_journey(generated) -> None:
    _, db = generated
    in_journeys = scalar(db, "SELECT count(DISTINCT session_id) FROM journeys")
    assert in_journeys / 50_000 < 0.1


@pytest.mark.parametrize("layout", LAYOUTS)
def test_same_arguments_give_a_byte_identical_file(tmp_path: Path, layout: Layout) -> None:
    first, second = (
        generate_database(tmp_path / "a.db", layout=layout, **SMALL),
        generate_database(tmp_path / "b.db", layout=layout, **SMALL),
    )
    assert first.layout == layout and sha256(first.path) == sha256(second.path)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, sqlite3.Connection]]:
    """The same arguments in each layout (three chunks, so that the order holds across chunks)."""
    folder = tmp_path_factory.mktemp("layouts")
    with ExitStack() as stack:
        yield {layout: stack.enter_context(generated_in(folder, layout)) for layout in LAYOUTS}


def generated_in(folder: Path, layout: Layout) -> closing[sqlite3.Connection]:
    path = generate_database(folder / f"{layout}.db", layout=layout, **SMALL).path
    return closing(sqlite3.connect(path))


def rows_in_rowid_order(db: sqlite3.Connection, table: str, columns: str) -> list[tuple]:
    return db.execute(f"SELECT {columns} FROM {table} ORDER BY rowid").fetchall()


@pytest.mark.parametrize(("table", "key"), KEYS)
def test_both_layouts_hold_the_same_rows(layouts, table: str, key: str) -> None:
    arrival, ordered = (
        db.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall() for db in layouts.values()
    )
    assert arrival == ordered and len(arrival) > 0


@pytest.mark.parametrize(("table", "key"), KEYS)
def test_the_sorted_layout_stores_rows_in_key_order(layouts, table: str, key: str) -> None:
    stored = rows_in_rowid_order(layouts["sorted"], table, key)
    assert stored == sorted(stored)


@pytest.mark.parametrize(
    ("table", "order"),
    [
        ("session_sources", "user_id, event_date, event_time, session_id"),
        ("conversions", "user_id, conv_date, conv_time, conv_id"),
    ],
)
def test_the_arrival_layout_stores_rows_by_user_and_time(layouts, table: str, order: str) -> None:
    db = layouts["arrival"]
    stored = rows_in_rowid_order(db, table, order)
    assert stored == db.execute(f"SELECT {order} FROM {table} ORDER BY {order}").fetchall()
    keys = [row[-1] for row in stored]
    assert keys != sorted(keys)  # random ids: key order is not row order


def test_the_arrival_layout_stores_costs_with_their_sessions(layouts) -> None:
    db = layouts["arrival"]
    assert rows_in_rowid_order(db, "session_costs", "session_id") == rows_in_rowid_order(
        db, "session_sources", "session_id"
    )


def test_refuses_an_unknown_layout_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="layout must be one of arrival, sorted"):
        generate_database(tmp_path / "challenge.db", layout="random", **SMALL)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_another_seed_gives_another_file(tmp_path: Path) -> None:
    first = generate_database(tmp_path / "a.db", **SMALL)
    second = generate_database(tmp_path / "b.db", seed=7, **SMALL)
    assert sha256(first.path) != sha256(second.path)


def test_refuses_to_overwrite_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "challenge.db"
    path.write_bytes(b"precious")
    with pytest.raises(ConfigError, match="already exists"):
        generate_database(path, **SMALL)
    assert path.read_bytes() == b"precious"


@pytest.mark.parametrize(
    "sizes",
    [
        {"sessions": 0},
        {"conversions": -1},
        {"days": 0},
        {"sessions": 10, "conversions": 11},
        {"users": 10},
        {"users": 10_000},
        {"seed": -1},
        {"chunk_sessions": 0},
    ],
)
def test_refuses_nonsensical_sizes_in_one_line(tmp_path: Path, sizes: dict[str, int]) -> None:
    with pytest.raises(ConfigError) as refused:
        generate_database(tmp_path / "challenge.db", **{**SMALL, **sizes})
    assert "\n" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_a_failure_leaves_no_file_behind(tmp_path: Path) -> None:
    def fail(_: int) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        generate_database(tmp_path / "challenge.db", on_progress=fail, **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_progress_reports_the_sessions_written_after_each_chunk(tmp_path: Path) -> None:
    written: list[int] = []
    generate_database(tmp_path / "challenge.db", on_progress=written.append, **SMALL)
    assert written == [1_666, 3_333, 5_000]


@settings(max_examples=15, deadline=None)
@given(
    sessions=st.integers(1, 3_000),
    conversion_share=st.floats(0, 1),
    days=st.integers(1, 40),
    chunk_sessions=st.integers(300, 3_000),
    start=st.dates(date(2000, 1, 1), date(2100, 1, 1)),
)
def test_any_sensible_request_gives_exactly_the_requested_rows(
    sessions: int, conversion_share: float, days: int, chunk_sessions: int, start: date
) -> None:
    conversions = int(sessions * conversion_share)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "challenge.db"
        generate_database(
            path,
            sessions=sessions,
            conversions=conversions,
            days=days,
            chunk_sessions=chunk_sessions,
            start_date=start,
        )
        with closing(sqlite3.connect(path)) as db:
            assert scalar(db, "SELECT count(DISTINCT session_id) FROM session_sources") == sessions
            assert scalar(db, "SELECT count(DISTINCT conv_id) FROM conversions") == conversions
            assert scalar(db, "SELECT count(*) FROM session_costs") == sessions
            first, last = db.execute(
                "SELECT min(event_date), max(event_date) FROM session_sources"
            ).fetchone()
            assert start.isoformat() <= first <= last <= (start + timedelta(days - 1)).isoformat()
            assert scalar(db, f"SELECT coalesce(max(n), 1) FROM ({LENGTHS})") <= 40
