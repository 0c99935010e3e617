"""Moving many rows: streamed reads into Polars frames, bulk loads by the warehouse's fast path.

Why apart from the schema: these are the hot paths of every step (journeys and paths read through
``stream_frames``, credit and report rows leave through ``bulk_insert``), and each warehouse has its own
fastest way, named by its profile in ``dialects``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from itertools import chain
from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import Connection, CursorResult, Engine, Table, insert
from sqlalchemy.exc import DBAPIError

from attribution.warehouse.dialects import hash_joined, profile_of

if TYPE_CHECKING:
    from attribution.warehouse.redshift_copy import RedshiftCopy

STREAM_ROWS = 100_000
"""Rows per fetch from a server-side cursor: a few tens of MB, whatever the size of the result."""
INSERT_BATCH_ROWS = 2_000
"""Rows per multi-row INSERT where there is no faster path: well under the bind-parameter and 16 MB
statement caps of PostgreSQL and Redshift."""


def polars_schema(table: Table, names: Sequence[str] | None = None) -> dict[str, pl.DataType]:
    """The Polars types of a table's columns (all, or ``names`` in that order), for frames read from it."""
    kinds = {str: pl.String(), int: pl.Int64(), float: pl.Float64()}
    columns = table.columns if names is None else [table.c[name] for name in names]
    return {column.name: kinds[column.type.python_type] for column in columns}


def fetch_frame(
    source: Engine | Connection, statement, params: dict, schema: dict, *, hash_joins: bool = False
) -> pl.DataFrame:
    """Run a query on an engine (its own short connection) or an open connection; rows as a typed frame.
    ``hash_joins``: see ``stream_frames``."""
    parts = stream_frames(source, statement, params, schema, hash_joins=hash_joins)
    return pl.concat([pl.DataFrame(schema=schema), *parts])


def stream_frames(
    source: Engine | Connection,
    statement,
    params: dict,
    schema: dict,
    rows: int = STREAM_ROWS,
    *,
    hash_joins: bool = False,
) -> Iterator[pl.DataFrame]:
    """A query's rows as typed frames of at most ``rows`` rows, read through a server-side cursor where the
    driver has one (PostgreSQL, Redshift), so neither the driver nor we ever hold the whole result.
    ``hash_joins``: the statement is planned without nested loops where the warehouse can be told so
    (``Profile.nested_loops_setting``), for a read of every row or a join no index serves.

    Why the driver's cursor where there is no server-side one (SQLite, whose cursor streams by nature): the
    rows are taken from the DBAPI cursor as the driver makes them. A textual query has no result types to
    process, so they are the same rows, and building SQLAlchemy's row objects cost more than SQLite's own
    scan (about half of reading 500,000 null-path sessions). A server-side cursor is read through SQLAlchemy,
    which has already taken its first row when ``execute`` returns."""
    with (
        nullcontext(source) if isinstance(source, Connection) else source.connect() as conn,
        hash_joined(conn, hash_joins),
    ):
        if conn.dialect.supports_server_side_cursors:
            streaming = {"stream_results": True, "yield_per": rows}
            parts = conn.execute(statement, params, execution_options=streaming).partitions(rows)
        else:
            parts = _driver_parts(conn.execute(statement, params), rows)
        for part in parts:
            yield pl.DataFrame(part, schema=schema, orient="row")


def _driver_parts(result: CursorResult, rows: int) -> Iterator[list[tuple]]:
    """A result's rows straight from its DBAPI cursor, ``rows`` at a time; the result closed at the end. A
    driver's error while fetching (SQLite's ``integer overflow`` of a ``SUM``, say) is wrapped as
    SQLAlchemy wraps it, so callers see one kind of error whichever way the rows came."""
    dbapi_error = result.context.dialect.loaded_dbapi.Error
    with result:
        try:
            while part := result.cursor.fetchmany(rows):
                yield part
        except dbapi_error as error:
            context = result.context
            raise DBAPIError.instance(context.statement, context.parameters, error, dbapi_error) from error


def bulk_insert(
    conn: Connection, table: Table, frame: pl.DataFrame, *, redshift_copy: RedshiftCopy | None = None
) -> None:
    """Append a frame's rows to ``table`` inside the caller's transaction, by the warehouse's fast path.

    Redshift a ``COPY`` from object storage when given ``redshift_copy`` (the run's ``Settings.redshift_copy``;
    other warehouses ignore it); otherwise ``insert_rows``, a slice of the frame's tuples at a time. Table and
    column names come from our own metadata, never from input.
    """
    if frame.is_empty():
        return
    columns = [column.name for column in table.columns]
    # In key order, the key's B-tree grows at one end instead of at random pages (hashed ids): a first
    # run's 370,000 credit rows went in twice as fast on SQLite.
    if key := [column.name for column in table.primary_key.columns]:
        frame = frame.sort(key)
    load = profile_of(conn).bulk_load
    if load == "insert" and redshift_copy is not None:
        redshift_copy.load(conn, table, frame)
        return
    insert_rows(conn, table, (part.rows() for part in frame.select(columns).iter_slices(STREAM_ROWS)))


def insert_rows(conn: Connection, table: Table, batches: Iterable[Sequence[Sequence]]) -> None:
    """Append rows, batches of tuples in ``table``'s column order, inside the caller's transaction by the
    warehouse's fast path: SQLite an ``executemany`` per batch (never one of every row at once), PostgreSQL
    (psycopg) one ``COPY``, the rest multi-row inserts of ``INSERT_BATCH_ROWS``. Names are quoted by the
    dialect: ours need none, a mapped copy's are the user's (``copy_mapped``)."""
    preparer, names = conn.dialect.identifier_preparer, [column.name for column in table.columns]
    where, quoted = preparer.format_table(table), ", ".join(preparer.quote(name) for name in names)
    load, driver = profile_of(conn).bulk_load, conn.connection.driver_connection
    if load == "executemany":
        sql = f"INSERT INTO {where} ({quoted}) VALUES ({', '.join('?' * len(names))})"
        for batch in batches:
            driver.executemany(sql, batch)
    elif load == "copy" and conn.dialect.driver == "psycopg":
        with driver.cursor() as cursor, cursor.copy(f"COPY {where} ({quoted}) FROM STDIN") as copy:
            for row in chain.from_iterable(batches):
                copy.write_row(row)
    else:
        for batch in batches:
            for start in range(0, len(batch), INSERT_BATCH_ROWS):
                rows = batch[start : start + INSERT_BATCH_ROWS]
                conn.execute(insert(table).values([dict(zip(names, row, strict=True)) for row in rows]))
