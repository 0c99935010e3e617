"""The write lock: one writer of the output tables at a time, across processes and machines.

Why a lock of the warehouse's own: CLI runs and scheduled runs start from different processes, often on
different machines; only the warehouse sees them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, false, func, select, text, update

from attribution.warehouse.dialects import profile_of
from attribution.warehouse.tables import attribution_runs

WRITE_LOCK_KEY = 0x41545452
"""The PostgreSQL advisory lock ("ATTR") that serialises the writers of the output tables."""


def lock_writes(conn: Connection) -> None:
    """Serialise the writers of the output tables across processes (CLI runs, DAG runs), before they read
    what they will replace: a PostgreSQL advisory lock, SQLite's database write lock, or a table lock."""
    lock = profile_of(conn).write_lock
    if lock == "advisory":
        _advisory_lock(conn)
    elif lock == "first-write":  # a transaction's first write, even of no row, takes the lock
        conn.execute(update(attribution_runs).where(false()).values(status=attribution_runs.c.status))
    else:
        conn.execute(text(f"LOCK TABLE {attribution_runs.name}"))


def _advisory_lock(conn: Connection) -> None:
    conn.execute(select(func.pg_advisory_xact_lock(WRITE_LOCK_KEY)))


@contextmanager
def schema_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that creates tables, under the write lock where it needs no table (the advisory lock).

    Why: on PostgreSQL two ``CREATE TABLE IF NOT EXISTS`` of one name at once can both pass the check, and
    the second then fails on the catalogue's unique index; SQLite runs each DDL statement under its write
    lock, and the table locks need the tables they lock.
    """
    with engine.begin() as conn:
        if profile_of(conn).write_lock == "advisory":
            _advisory_lock(conn)
        yield conn


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the write lock from its first statement to its commit or rollback."""
    with engine.begin() as conn:
        lock_writes(conn)
        yield conn
