"""What differs between the warehouses: the few SQL fragments and fast paths that are not portable.

Why one table of profiles: the journey, path, store and report SQL is written once, in the subset of SQL
that SQLite, PostgreSQL and Redshift share; each place where they part ways asks its warehouse's profile
here instead of testing dialect names in line. Redshift is the narrowest of the three: no row-value
comparisons, no indexes (sort keys instead), no advisory locks, no ``COPY FROM STDIN``, no ``ON CONFLICT``
(which the pipeline never uses: its writes are delete-then-insert in one transaction).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, Engine

from attribution.errors import ConfigError
from attribution.timerange import AFTER_ANY, BEFORE_ANY
from attribution.warehouse import time_zones

BulkLoad = Literal["executemany", "copy", "insert"]
WriteLock = Literal["advisory", "first-write", "table"]
TIME_PATTERN = "[0-2][0-9]:[0-5][0-9]:[0-5][0-9]"
_TEXT_FORMAT = "'YYYY-MM-DD HH24:MI:SS'"
"""``to_char``'s spelling of the pipeline's text timestamp."""


@dataclass(frozen=True)
class Profile:
    """One warehouse's answers to the questions the pipeline's SQL asks."""

    name: str
    write_lock: WriteLock
    """What serialises writers: PostgreSQL's ``pg_advisory_xact_lock``, SQLite's database lock (taken by a
    transaction's first write), or ``LOCK TABLE`` (Redshift)."""
    bulk_load: BulkLoad
    """How result rows are loaded: one ``executemany``, ``COPY FROM STDIN``, or batched multi-row inserts
    (Redshift, unless a staging bucket for ``COPY`` from object storage is configured)."""
    row_values: bool = True
    """``(a, b) < (x, y)`` compares tuples (SQLite 3.15+, PostgreSQL); otherwise it is spelled out."""
    indexes: bool = True
    """``CREATE INDEX`` exists; Redshift has sort keys instead, chosen when a table is created."""
    empty_table: str | None = None
    """The statement that empties a table (``{table}``) at once inside the transaction: PostgreSQL's
    ``TRUNCATE``, leaving no dead rows behind; SQLite's ``DELETE`` without ``WHERE``, its truncate
    optimisation, which frees the table's pages instead of deleting each row from the table and each index
    (a million orders' credit: most of a rerun's store step). ``None``: Redshift, whose ``TRUNCATE``
    commits the transaction it runs in."""
    vacuum_after_load: bool = False
    """``VACUUM (ANALYZE)`` after a bulk load or an index build: PostgreSQL plans from statistics, and scans
    index-only only where its visibility map is set."""
    nested_loops_setting: str | None = None
    """The setting that lets a transaction's statements be planned without nested loops (PostgreSQL's
    ``enable_nestloop``), for a read of every row, or a join with no index on its inner side, where a row
    estimate of 1 (the skip filters' many predicates give it) would otherwise rescan a table per row."""
    folds_case: bool = False
    """Table and column names match whatever their case (SQLite); elsewhere the pipeline's unquoted
    lower-case names match only lower-case names."""

    def fold(self, name: str) -> str:
        """A table or column name as the pipeline's lower-case SQL matches it here."""
        return name.lower() if self.folds_case else name

    def compare(self, op: Literal["<", ">"], columns: Sequence[str], values: Sequence[str]) -> str:
        """``(columns) op (values)`` in lexicographic order, as this warehouse can say it.

        Without row values the comparison is spelled out as ``a >= x AND (a > x OR (b, ...) > (y, ...))``,
        whose first term is a plain range on the leading column, so an index or sort key still applies.
        """
        if self.row_values and len(columns) > 1:
            return f"({', '.join(columns)}) {op} ({', '.join(values)})"
        return _spelled_out(op, list(columns), list(values))

    def days_before(self, timestamp: str, days: int) -> str:
        """The text timestamp ``days`` days before the text timestamp expression ``timestamp``.

        ``days`` is a validated integer, written as a literal: Redshift accepts an interval only as one.
        """
        days = int(days)
        if self.name == "sqlite":
            return f"datetime({timestamp}, '-{days} days')"
        return f"to_char(CAST({timestamp} AS timestamp) - INTERVAL '{days} days', 'YYYY-MM-DD HH24:MI:SS')"

    def matches(self, expression: str, pattern: str) -> str:
        """Whether the text ``expression`` matches the whole ``pattern``, written in the shared subset of a
        GLOB and a POSIX regular expression (literal characters and classes such as ``[0-5]``): SQLite has
        GLOB and no regular expressions, PostgreSQL and Redshift have ``~``."""
        if self.name == "sqlite":
            return f"{expression} GLOB '{pattern}'"
        return f"{expression} ~ '^{pattern}$'"

    def is_date(self, expression: str) -> str:
        """Whether the text ``expression`` is ``YYYY-MM-DD`` naming a day of the calendar (2023-02-29 is not).

        SQLite asks its own calendar: a date moved by no days comes back normalised (``2023-03-01``) or
        NULL, so only a valid one is its own result (``IS``: never NULL); three times faster per row than
        the spelled-out rule the other warehouses run, where the digits are cast only once the pattern
        matched (a CASE is the one order of evaluation every warehouse keeps).
        """
        if self.name == "sqlite":
            return f"date({expression}, '+0 days') IS {expression}"
        year = f"CAST(SUBSTR({expression}, 1, 4) AS INTEGER)"
        leap = f"({year} % 4 = 0 AND {year} % 100 <> 0 OR {year} % 400 = 0)"
        month, day = f"SUBSTR({expression}, 6, 2)", f"SUBSTR({expression}, 9, 2)"
        last = (
            f"CASE {month} WHEN '02' THEN CASE WHEN {leap} THEN '29' ELSE '28' END "
            f"WHEN '04' THEN '30' WHEN '06' THEN '30' WHEN '09' THEN '30' WHEN '11' THEN '30' ELSE '31' END"
        )
        return (
            f"CASE WHEN {self.matches(expression, '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]')} "
            f"THEN {month} BETWEEN '01' AND '12' AND {day} BETWEEN '01' AND {last} ELSE FALSE END"
        )

    def is_time(self, expression: str) -> str:
        """Whether the text ``expression`` is ``HH:MM:SS`` within a day, without a fraction or an offset: the
        pattern bounds minutes and seconds, and a text below ``'24'`` the hour."""
        return f"({self.matches(expression, TIME_PATTERN)} AND {expression} < '24')"

    def day_text(self, day: str, days: int) -> str:
        """The ``YYYY-MM-DD`` text ``days`` days after the text date ``day`` (a bound value), for a text
        comparison; a day beyond the calendar's four-digit years (a range at the last or first accepted
        date) as text sorting after (``AFTER_ANY``) or before (``BEFORE_ANY``) every date. Why: SQLite's
        day after 9999-12-31 is NULL, PostgreSQL's text of it ``10000-01-01`` sorts before it."""
        days = int(days)
        beyond = f"'{AFTER_ANY}'" if days > 0 else f"'{BEFORE_ANY}'"
        if self.name == "sqlite":
            return f"COALESCE(date({day}, '{days:+d} days'), {beyond})"
        moved = plus_days(bound_date(day), days)
        outside = f"{moved} > DATE '9999-12-31'" if days > 0 else f"{moved} < DATE '0001-01-01'"
        return f"CASE WHEN {outside} THEN {beyond} ELSE to_char({moved}, 'YYYY-MM-DD') END"

    def typed_text(self, expression: str, kind: Literal["date", "time", "timestamp"]) -> str:
        """A typed ``DATE``, ``TIME`` or ``TIMESTAMP`` value as the pipeline's text (to the second); a date
        as a ``TIMESTAMP`` first (``to_char`` would otherwise take it as a time in the session's zone), a time
        as the ``TIMESTAMP`` of a day at that time (Redshift's ``TO_CHAR`` takes a timestamp or a number, and
        adds a ``DATE`` and a ``TIME`` into a ``TIMESTAMP``, as PostgreSQL does)."""
        if kind == "date":
            return f"to_char(CAST({expression} AS TIMESTAMP), 'YYYY-MM-DD')"
        if kind == "time":
            return f"to_char(DATE '2000-01-01' + {expression}, 'HH24:MI:SS')"
        return f"to_char({expression}, {_TEXT_FORMAT})"

    def moved(self, timestamp: str, source: str, target: str, *, typed: str | None = None) -> str:
        """The text timestamp ``timestamp`` (``YYYY-MM-DD HH:MM:SS``, naive in zone ``source``) as the naive
        text timestamp of the same instant in zone ``target``; ``typed`` (``timestamp`` or ``timestamptz``):
        ``timestamp`` is a typed value instead (a ``timestamptz`` knows its instant: ``source`` is unused).
        SQLite searches the zones' transitions (``time_zones``), the others convert ``AT TIME ZONE``."""
        if self.name == "sqlite":
            utc = timestamp if source == time_zones.UTC_NAME else time_zones.sqlite_to_utc(timestamp, source)
            return utc if target == time_zones.UTC_NAME else time_zones.sqlite_from_utc(utc, target)
        value = timestamp if typed else f"CAST({timestamp} AS TIMESTAMP)"
        instant = value if typed == "timestamptz" else f"{value} AT TIME ZONE {time_zones.literal(source)}"
        return f"to_char({instant} AT TIME ZONE {time_zones.literal(target)}, {_TEXT_FORMAT})"

    def with_offset(self, timestamp: str, target: str) -> str:
        """The text timestamp with a ``+HH:MM`` offset ``timestamp`` as the naive text timestamp of the same
        instant in zone ``target`` (SQLite's ``datetime`` reads the offset, and gives UTC)."""
        if self.name == "sqlite":
            utc = f"datetime({timestamp})"
            return utc if target == time_zones.UTC_NAME else time_zones.sqlite_from_utc(utc, target)
        return self.moved(
            f"CAST({timestamp} AS TIMESTAMPTZ)", time_zones.UTC_NAME, target, typed="timestamptz"
        )

    def is_number(self, expression: str) -> str:
        """Whether ``expression`` holds a number, an infinite one or NaN too (the money checks bound those):
        SQLite keeps text typed into a numeric column as text; a server's column could be text, so its
        values are matched as the text a number casts to."""
        if self.name == "sqlite":
            return f"typeof({expression}) IN ('integer', 'real')"
        number = "-?([0-9]+(\\.[0-9]+)?(e[-+][0-9]+)?|Infinity)|NaN"
        return f"CAST({expression} AS VARCHAR) ~ '^({number})$'"


def bound_date(day: str) -> str:
    """PostgreSQL and Redshift: the text date ``day`` (a bound value) as a ``DATE``. Why through text: a
    server infers a bound parameter's type from where it first occurs, and the same bound is also compared
    with text dates; cast straight to a date, it would be a date there too (``text >= date``)."""
    return f"CAST(CAST({day} AS VARCHAR) AS DATE)"


def plus_days(day: str, days: int) -> str:
    """PostgreSQL and Redshift: the typed ``DATE`` ``day`` ``days`` days on, as a ``TIMESTAMP`` (an interval
    literal: Redshift documents a date plus an interval, not a date plus an integer)."""
    days = int(days)
    return f"{day} + INTERVAL '{days} days'" if days else day


def _spelled_out(op: str, columns: list[str], values: list[str]) -> str:
    head, value = columns[0], values[0]
    if len(columns) == 1:
        return f"{head} {op} {value}"
    return f"{head} {op}= {value} AND ({head} {op} {value} OR {_spelled_out(op, columns[1:], values[1:])})"


PROFILES: dict[str, Profile] = {
    "sqlite": Profile(
        "sqlite",
        write_lock="first-write",
        bulk_load="executemany",
        empty_table="DELETE FROM {table}",
        folds_case=True,
    ),
    "postgresql": Profile(
        "postgresql",
        write_lock="advisory",
        bulk_load="copy",
        empty_table="TRUNCATE {table}",
        vacuum_after_load=True,
        nested_loops_setting="enable_nestloop",
    ),
    "redshift": Profile("redshift", write_lock="table", bulk_load="insert", row_values=False, indexes=False),
}
"""Profiles by SQLAlchemy dialect name (``redshift`` is sqlalchemy-redshift's)."""


def profile_of(bind: Engine | Connection) -> Profile:
    """The profile of the warehouse an engine or connection talks to."""
    return profile_named(bind.dialect.name)


@contextmanager
def hash_joined(conn: Connection, hash_joins: bool) -> Iterator[None]:
    """Nested loops off for the block where the warehouse can be told so (a read no index serves must hash,
    never loop), then as before where it ends normally (a caller's transaction goes on; an engine's own
    connection ends with the block, and the setting with its transaction)."""
    setting = profile_of(conn).nested_loops_setting if hash_joins else None
    if setting is None:
        yield
        return
    conn.exec_driver_sql(f"SET LOCAL {setting} = off")
    yield
    conn.exec_driver_sql(f"SET LOCAL {setting} TO DEFAULT")


def profile_named(dialect: str) -> Profile:
    """The profile of a SQLAlchemy dialect name, or a one-line error naming the supported ones."""
    try:
        return PROFILES[dialect]
    except KeyError:
        raise ConfigError(
            f"Unsupported warehouse '{dialect}': use SQLite, PostgreSQL or Redshift "
            f"({', '.join(sorted(PROFILES))})"
        ) from None
