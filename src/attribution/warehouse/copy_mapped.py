"""Copy the inputs a source mapping names (``attribution copy-db --source-mapping``) under the same schema,
table and column names, so that the same mapping file reads the copy as it read the original.

Why the user's names and not the challenge's: a team moving its warehouse keeps one mapping for both ends,
and the copy must give the same report. Only the columns the mapping reads are copied, rows as stored (a bad
row stays bad), each in the type of the target closest to its own (``_target_type``); a primary key made of
copied columns is kept. What a target cannot hold under the same mapping is refused before anything is
written: a schema on SQLite (a file has none), an instant (``TIMESTAMP WITH TIME ZONE``) on SQLite (no type
for one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import partial

from sqlalchemy import (
    TIMESTAMP,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    Double,
    Engine,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Time,
    inspect,
)
from sqlalchemy import types as sqltypes
from sqlalchemy.schema import CreateSchema

from attribution.errors import ConfigError
from attribution.warehouse.bulk import insert_rows
from attribution.warehouse.copy_db import DEFAULT_CHUNK_ROWS, fetched, load_chunks
from attribution.warehouse.dialects import profile_of
from attribution.warehouse.engine import open_engine
from attribution.warehouse.schema import refresh_statistics
from attribution.warehouse.source_mapping import SourceMapping
from attribution.warehouse.sources import Relation, sources_of


@dataclass(frozen=True)
class _Copied:
    """One input's table: how it is read from the source (``select``, ``count``) and made in the target."""

    shown: str
    select: str
    count: str
    table: Table


def copy_mapped_inputs(
    source_db: str,
    target_db: str,
    mapping: SourceMapping,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, int]:
    """Copy the three inputs as ``mapping`` finds them in ``source_db`` into ``target_db``, under the same
    names; the target must not hold those tables yet. The rows per table, by the table's name."""
    with (
        open_engine(source_db, sources=mapping) as source,
        open_engine(target_db, must_exist=False) as target,
    ):
        copies = _plan(source, target)
        taken = [c.shown for c in copies if inspect(target).has_table(c.table.name, c.table.schema)]
        if taken:
            raise ConfigError(
                f"The target already has input table(s) {', '.join(taken)}; refusing to mix data"
            )
        try:
            _create(target, copies)
            copied = {c.shown: _copy(source, target, c, chunk_rows, on_progress) for c in copies}
        except BaseException:
            _drop(target, copies)  # the target as it was, so the next copy-db starts clean
            raise
        preparer = target.dialect.identifier_preparer
        refresh_statistics(target, [preparer.format_table(c.table) for c in copies])
        return copied


def _plan(source: Engine, target: Engine) -> list[_Copied]:
    """Each mapped table's copy (one, with the columns of both, where two inputs share a table), or one line
    saying what the target cannot hold under the same mapping."""
    sources, metadata = sources_of(source), MetaData()
    shared: dict[str, list[Relation]] = {}
    for relation in sources.relations.values():
        shared.setdefault(".".join(filter(None, (relation.schema, relation.table))), []).append(relation)
    copies = []
    for shown, relations in shared.items():
        first = relations[0]
        if target.dialect.name == "sqlite" and first.schema:
            raise ConfigError(
                f"Cannot copy {shown} into a SQLite file under the mapping's schema (a file has none): copy "
                "to PostgreSQL, or map tables of the default schema"
            )
        columns = _columns(source, target, shown, relations)
        table = Table(first.table, metadata, *columns, schema=first.schema)
        quoted = sources.qualified(first.input)
        select = f"SELECT {', '.join(sources.quote(c.name) for c in columns)} FROM {quoted}"
        copies.append(_Copied(shown, select, f"SELECT COUNT(*) FROM {quoted}", table))
    return copies


def _columns(source: Engine, target: Engine, shown: str, relations: list[Relation]) -> list[Column]:
    """The target's columns for those the mapping reads of the table ``shown`` (through ``relations``), with
    its key where it is made of them. A timestamp whose text carries offsets stays text, as the mapping
    reads it."""
    names = list(dict.fromkeys(c.name for relation in relations for c in relation.columns.values()))
    as_text = {r.columns[r.timestamp_key].name for r in relations if r.offsets and r.timestamp_key}
    inspector, where = inspect(source), (relations[0].table, relations[0].schema)
    reflected = {c["name"]: c["type"] for c in inspector.get_columns(*where)}
    key = inspector.get_pk_constraint(*where)["constrained_columns"]
    keyed = bool(key) and set(key) <= set(names)
    columns = []
    for name in names:
        kind = Text() if name in as_text else _target_type(reflected[name])
        if target.dialect.name == "sqlite" and isinstance(kind, TIMESTAMP) and kind.timezone:
            raise ConfigError(
                f"Cannot copy {shown}.{name}, a timestamp with time zone, into a SQLite file, which has no "
                "type for an instant: copy to PostgreSQL, or map a column of local times and their time_zone"
            )
        columns.append(Column(name, kind, primary_key=keyed and name in key))
    return columns


def _target_type(stored: sqltypes.TypeEngine) -> sqltypes.TypeEngine:
    """The target's type for a column stored as ``stored``: the same kind (a SQLite column by its declared
    type), integers as 64-bit, floats as double precision (PostgreSQL's ``REAL`` has 4 bytes), decimals
    with their precision; any other (a UUID, no declared type) as text."""
    if isinstance(stored, sqltypes.Boolean):
        return Boolean()
    if isinstance(stored, sqltypes.DateTime):
        return TIMESTAMP(timezone=bool(getattr(stored, "timezone", False)))
    if isinstance(stored, sqltypes.Date | sqltypes.Time):
        return Date() if isinstance(stored, sqltypes.Date) else Time()
    if isinstance(stored, sqltypes.Integer):
        return BigInteger()
    if isinstance(stored, sqltypes.Float):
        return Double()
    if isinstance(stored, sqltypes.Numeric):
        return Numeric(stored.precision, stored.scale)
    if isinstance(stored, sqltypes.String) and stored.length:
        return String(stored.length)
    return Text()


def _copy(source: Engine, target: Engine, copy: _Copied, chunk_rows: int, on_progress) -> int:
    with source.connect() as reader:
        total = reader.exec_driver_sql(copy.count).scalar() or 0
        rows = reader.execution_options(stream_results=True).exec_driver_sql(copy.select)
        return load_chunks(
            target,
            copy.shown,
            fetched(rows, chunk_rows),
            partial(_write, table=copy.table),
            (total, on_progress),
        )


def _create(target: Engine, copies: list[_Copied]) -> None:
    """Create the tables (and a schema that is missing)."""
    with target.begin() as conn:
        for copy in copies:
            if copy.table.schema:
                conn.execute(CreateSchema(copy.table.schema, if_not_exists=True))
            copy.table.create(conn)


def _write(conn: Connection, rows: Sequence[Sequence], *, table: Table) -> None:
    """Append ``rows`` (values as the source's driver gave them) by the target's fast path (``insert_rows``),
    on SQLite as a file stores them."""
    if profile_of(conn).bulk_load == "executemany":
        rows = [tuple(_as_sqlite_stores(value) for value in row) for row in rows]
    insert_rows(conn, table, [rows])


def _as_sqlite_stores(value: object) -> object:
    """A server's value as a SQLite file holds it, read back as the server's column was: dates and times as
    ISO text to the second (what the pipeline reads of them), decimals and other values (a UUID) as text."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, time):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    return str(value)  # a Decimal, which sqlite3 cannot bind, or a server's own type


def _drop(target: Engine, copies: list[_Copied]) -> None:
    """Drop the tables this copy created (the target had none of them: ``copy_mapped_inputs`` refuses
    otherwise); a schema it created stays, empty."""
    with target.begin() as conn:
        for copy in reversed(copies):
            copy.table.drop(conn, checkfirst=True)
