"""Copies of one generated warehouse in the forms real warehouses hold it: other types, names and schemas.

A form names, per input, the table (and schema) and each stored column: its name, its SQL type and how its
value is made from the challenge row. The challenge form is the baseline every other copy must match: the
same tables after a run, the same CSV byte for byte.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text

from attribution.warehouse.engine import connect
from attribution.warehouse.tables import INPUT_TABLES

Row = dict[str, object]
Rows = dict[str, list[Row]]


@dataclass(frozen=True)
class StoredColumn:
    """A column as a copy stores it: name, SQL type, and its value from the challenge row."""

    name: str
    type: str
    value: Callable[[Row], object]


@dataclass(frozen=True)
class StoredTable:
    name: str
    columns: tuple[StoredColumn, ...]
    schema: str | None = None


Form = dict[str, StoredTable]
CHALLENGE_TYPES = {"Text": "TEXT", "Integer": "INTEGER", "Float": "DOUBLE PRECISION"}


def _same(key: str) -> Callable[[Row], object]:
    return lambda row: row[key]


def challenge_form() -> Form:
    """The challenge's names and types (money as ``DOUBLE PRECISION``: PostgreSQL's ``REAL`` has 4 bytes)."""
    return {
        table.name: StoredTable(
            table.name,
            tuple(
                StoredColumn(c.name, CHALLENGE_TYPES[type(c.type).__name__], _same(c.name))
                for c in table.columns
            ),
        )
        for table in INPUT_TABLES
    }


def retyped(form: Form, **columns: tuple[str, Callable[[object], object]]) -> Form:
    """``form`` with the named columns (in any input) stored as another SQL type, their values converted."""
    changed = {}
    for name, table in form.items():
        stored = []
        for column in table.columns:
            if column.name in columns:
                kind, convert = columns[column.name]
                original = column.value
                column = replace(
                    column, type=kind, value=lambda row, f=convert, v=original: _convert(f, v(row))
                )
            stored.append(column)
        changed[name] = replace(table, columns=tuple(stored))
    return changed


def _convert(convert: Callable[[object], object], value: object) -> object:
    return None if value is None else convert(value)


def single_timestamp(form: Form, kind: str, value: Callable[[str], object]) -> Form:
    """``form`` with each input's date and time stored as one timestamp column (``event_timestamp``,
    ``conv_timestamp``) of SQL type ``kind``, made by ``value`` from the ``YYYY-MM-DD HH:MM:SS`` text."""
    changed = dict(form)
    for name, (day, clock, single) in {
        "session_sources": ("event_date", "event_time", "event_timestamp"),
        "conversions": ("conv_date", "conv_time", "conv_timestamp"),
    }.items():
        table = form[name]
        columns = [c for c in table.columns if c.name not in (day, clock)]
        stamp = StoredColumn(single, kind, lambda row, d=day, c=clock: value(f"{row[d]} {row[c]}"))
        changed[name] = replace(table, columns=(*columns, stamp))
    return changed


def renamed(form: Form, tables: dict[str, str], columns: dict[str, str], schema: str | None = None) -> Form:
    """``form`` with other table and column names (and a schema)."""
    return {
        name: StoredTable(
            tables.get(name, table.name),
            tuple(replace(c, name=columns.get(c.name, c.name)) for c in table.columns),
            schema,
        )
        for name, table in form.items()
    }


def read_rows(path: Path) -> Rows:
    """Every row of a challenge-form SQLite file's inputs, by input, in a stable order."""
    with closing(sqlite3.connect(path)) as con:
        con.row_factory = sqlite3.Row
        return {
            table.name: [dict(row) for row in con.execute(f"SELECT * FROM {table.name} ORDER BY 1")]
            for table in INPUT_TABLES
        }


def write_form(db: str, rows: Rows, form: Form) -> None:
    """Create the form's tables (and schema) in a new database and fill them with ``rows``."""
    engine = connect(db, must_exist=False)
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        for name, table in form.items():
            qualified = quote(table.name)
            if table.schema:
                conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quote(table.schema)}"))
                qualified = f"{quote(table.schema)}.{qualified}"
            columns = ", ".join(f"{quote(c.name)} {c.type}" for c in table.columns)
            conn.execute(text(f"CREATE TABLE {qualified} ({columns})"))
            names = ", ".join(quote(c.name) for c in table.columns)
            binds = ", ".join(f":c{i}" for i in range(len(table.columns)))
            stored = _as_sqlite_stores if engine.dialect.name == "sqlite" else _as_it_is
            values = [
                {f"c{i}": stored(c.value(row)) for i, c in enumerate(table.columns)} for row in rows[name]
            ]
            if values:
                conn.execute(text(f"INSERT INTO {qualified} ({names}) VALUES ({binds})"), values)
    engine.dispose()


def _as_it_is(value: object) -> object:
    return value


def _as_sqlite_stores(value: object) -> object:
    """A value as a SQLite file holds it: dates and times as ISO text, decimals as their text (which a
    column of numeric affinity keeps as a number)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value) if isinstance(value, Decimal) else value


# -- value conversions ------------------------------------------------------------------------------------


def to_date(value: object) -> date:
    return date.fromisoformat(str(value))


def to_time(value: object) -> time:
    return time.fromisoformat(str(value))


def to_timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


def to_decimal(value: object) -> Decimal:
    return Decimal(repr(value))


OFFSETS = (timedelta(hours=2), timedelta(hours=-5), timedelta(hours=5, minutes=30), timedelta(0))


def in_some_zone(value: str) -> datetime:
    """The UTC text timestamp as an aware timestamp in one of ``OFFSETS`` (picked by its seconds)."""
    moment = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return moment.astimezone(timezone(OFFSETS[moment.second % len(OFFSETS)]))


def with_offset(value: str) -> str:
    """The UTC text timestamp as text with an offset (``2023-09-01 12:00:00+02:00``), in one of ``OFFSETS``."""
    return in_some_zone(value).isoformat(sep=" ")


def in_zone(rows: Rows, zone: str) -> Rows:
    """``rows`` with every date and time the local date and time in ``zone`` of its UTC instant."""
    pairs = {"session_sources": ("event_date", "event_time"), "conversions": ("conv_date", "conv_time")}

    def moved(row: Row, day: str, clock: str) -> Row:
        local = (
            datetime.fromisoformat(f"{row[day]} {row[clock]}").replace(tzinfo=UTC).astimezone(ZoneInfo(zone))
        )
        return {**row, day: local.strftime("%Y-%m-%d"), clock: local.strftime("%H:%M:%S")}

    return {
        name: [moved(row, *pairs[name]) if name in pairs else row for row in table]
        for name, table in rows.items()
    }


def renumbered(rows: Rows) -> Rows:
    """``rows`` with every id (session, user, conversion) replaced by the text of a distinct integer."""
    numbers: dict[str, str] = {}

    def number(value: object) -> object:
        return None if value is None else numbers.setdefault(str(value), str(len(numbers) + 1))

    ids = ("session_id", "user_id", "conv_id")
    return {
        name: [{key: number(value) if key in ids else value for key, value in row.items()} for row in table]
        for name, table in rows.items()
    }


def shifted(rows: Rows, last_day: str) -> Rows:
    """``rows`` with every date moved by the same number of days, so that the last conversion is on
    ``last_day`` (times and order unchanged)."""
    latest = max(date.fromisoformat(row["conv_date"]) for row in rows["conversions"])
    by = date.fromisoformat(last_day) - latest

    def moved(row: Row) -> Row:
        return {
            key: (date.fromisoformat(value) + by).isoformat() if key in ("event_date", "conv_date") else value
            for key, value in row.items()
        }

    return {name: [moved(row) for row in table] for name, table in rows.items()}
