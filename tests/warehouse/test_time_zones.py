"""Naive timestamps moved between zones: SQLite's search of a zone's transitions reads every local time as
PostgreSQL's ``AT TIME ZONE`` does (a repeated hour, a skipped one), and gives back local time as Python's
``zoneinfo`` does."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from attribution.warehouse import time_zones
from attribution.warehouse.dialects import PROFILES

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo"]
"""An hour of DST in the north and in the south (Lord Howe's is half an hour), none at all (Kolkata), and
DST that ended in 2019 (São Paulo)."""
FORMAT = "%Y-%m-%d %H:%M:%S"


def local_times_around_transitions(zone: str) -> list[str]:
    """Every 10 minutes from 3 hours before to 3 hours after each of the zone's changes in 2018 to 2024, as
    local text, and a grid through those years."""
    found = set()
    for moment, before, _after in time_zones.transitions(zone):
        if 2018 <= moment.year <= 2024:
            local = moment + timedelta(seconds=before)
            found |= {(local + timedelta(minutes=10 * i)).strftime(FORMAT) for i in range(-18, 19)}
    start = datetime(2018, 1, 1)
    found |= {(start + timedelta(hours=37 * i)).strftime(FORMAT) for i in range(1500)}
    return sorted(found)


def _sqlite(sql: str, values: list[str]) -> dict[str, str]:
    with closing(sqlite3.connect(":memory:")) as con:
        con.execute("CREATE TABLE v (t TEXT)")
        con.executemany("INSERT INTO v VALUES (?)", [(value,) for value in values])
        return dict(con.execute(f"SELECT t, {sql} FROM v"))


@pytest.mark.parametrize("zone", ZONES)
def test_sqlite_reads_local_times_as_postgresql_does(zone, postgres_url):
    values = local_times_around_transitions(zone)
    sqlite = _sqlite(PROFILES["sqlite"].moved("t", zone, "UTC"), values)
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE v (t TEXT)"))
        conn.execute(text("INSERT INTO v VALUES (:t)"), [{"t": value} for value in values])
        moved = PROFILES["postgresql"].moved("t", zone, "UTC")
        postgresql = dict(conn.execute(text(f"SELECT t, {moved} FROM v")).all())
    engine.dispose()
    assert sqlite == postgresql


@pytest.mark.parametrize("zone", ZONES)
def test_sqlite_gives_utc_times_back_in_local_time_as_zoneinfo_does(zone):
    values = local_times_around_transitions(zone)  # read here as UTC instants
    got = _sqlite(PROFILES["sqlite"].moved("t", "UTC", zone), values)
    tz = ZoneInfo(zone)
    expected = {
        value: datetime.fromisoformat(value).replace(tzinfo=UTC).astimezone(tz).strftime(FORMAT)
        for value in values
    }
    assert got == expected


def test_a_zone_without_transitions_is_one_shift():
    assert PROFILES["sqlite"].moved("t", "Asia/Kolkata", "UTC") == "datetime(t, '-19800 seconds')"
