"""Copy the input tables from one warehouse to another (``attribution copy-db``), e.g. a ``challenge.db``
into PostgreSQL, so a user can move their data over.

Why chunks through Polars: memory stays bounded by the chunk size, and the target takes each chunk through
its dialect's fast path (``COPY`` on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, Result, func, inspect, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import DropTable

from attribution.errors import ConfigError, InputError
from attribution.warehouse.bulk import bulk_insert, polars_schema
from attribution.warehouse.engine import open_engine
from attribution.warehouse.redshift_copy import RedshiftCopy
from attribution.warehouse.schema import create_input_tables, refresh_statistics, validate_inputs
from attribution.warehouse.tables import INPUT_TABLES

DEFAULT_CHUNK_ROWS = 200_000


def copy_inputs(
    source_db: str,
    target_db: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: Callable[[str, int, int], None] | None = None,
    redshift_copy: RedshiftCopy | None = None,
) -> dict[str, int]:
    """Copy ``session_sources``, ``conversions`` and ``session_costs``; the target must not hold them yet.

    ``redshift_copy`` loads a Redshift target by ``COPY`` from object storage, chunk by chunk.
    """
    with (
        open_engine(source_db) as source,
        open_engine(target_db, must_exist=False) as target,
    ):
        validate_inputs(source)
        existing = set(inspect(target).get_table_names()) & {t.name for t in INPUT_TABLES}
        if existing:
            raise ConfigError(
                f"The target already has input table(s) {', '.join(sorted(existing))}; refusing to mix data"
            )
        create_input_tables(target)
        try:
            copied = {
                table.name: _copy_table(source, target, table, chunk_rows, on_progress, redshift_copy)
                for table in INPUT_TABLES
            }
        except BaseException:
            _drop_inputs(target)  # the target as it was, so the next copy-db starts clean
            raise
        refresh_statistics(target, [table.name for table in INPUT_TABLES])
        return copied


def _drop_inputs(target: Engine) -> None:
    """Drop the input tables this copy created (the target had none: ``copy_inputs`` refuses otherwise)."""
    with target.begin() as conn:
        for table in reversed(INPUT_TABLES):
            conn.execute(DropTable(table, if_exists=True))


def _copy_table(
    source: Engine, target: Engine, table, chunk_rows: int, on_progress, redshift_copy: RedshiftCopy | None
) -> int:
    schema = polars_schema(table)
    with source.connect() as reader:
        total = reader.scalar(select(func.count()).select_from(table))
        rows = reader.execution_options(stream_results=True).execute(select(table))
        frames = (pl.DataFrame(batch, schema=schema, orient="row") for batch in fetched(rows, chunk_rows))
        return load_chunks(
            target,
            table.name,
            frames,
            lambda conn, frame: bulk_insert(conn, table, frame, redshift_copy=redshift_copy),
            (total, on_progress),
        )


def fetched(rows: Result, size: int) -> Iterator[Sequence]:
    """A result's rows, ``size`` at a time."""
    while batch := rows.fetchmany(size):
        yield batch


def load_chunks(
    target: Engine,
    name: str,
    chunks: Iterable[Sized],
    write: Callable[[Connection, Any], None],
    progress: tuple[int, Callable[[str, int, int], None] | None],
) -> int:
    """Write each of ``chunks`` into ``target`` by ``write``, in one transaction, telling ``progress``'s
    callback the rows so far of its total; a refusal of the target (a key, a value its type cannot hold) as
    one line naming the table ``name``. The rows written."""
    total, on_progress = progress
    copied = 0
    try:
        with target.begin() as writer:
            for chunk in chunks:
                write(writer, chunk)
                copied += len(chunk)
                if on_progress:
                    on_progress(name, copied, total)
    except (DBAPIError, target.dialect.loaded_dbapi.Error) as exc:
        raise _copy_failed(name, exc) from None
    return copied


def _copy_failed(table: str, exc: BaseException) -> InputError:
    """The one line for a copy of ``table`` the target refused (a key, a value its type cannot hold)."""
    driver_error = exc.orig if isinstance(exc, DBAPIError) else exc  # COPY uses the driver's cursor
    cause = (str(driver_error).strip().splitlines() or [type(driver_error).__name__])[0]
    return InputError(f"Cannot copy {table} into the target ({cause}); nothing was copied")
