"""The schema a run needs: the inputs checked, the outputs created, the journey indexes added where allowed.

Why before any work: a missing table or column fails in one line naming it, before a single row is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import (
    Column,
    Connection,
    Dialect,
    Engine,
    Index,
    MetaData,
    Table,
    func,
    insert,
    inspect,
    literal,
    select,
    text,
    update,
)
from sqlalchemy import column as column_clause
from sqlalchemy import table as table_clause
from sqlalchemy.schema import CreateIndex, CreateTable

from attribution.errors import SchemaError
from attribution.warehouse.dialects import profile_of
from attribution.warehouse.input_checks import connection
from attribution.warehouse.locks import schema_transaction, write_transaction
from attribution.warehouse.sources import sources_of
from attribution.warehouse.tables import (
    INPUT_TABLES,
    JOURNEY_INDEXES,
    LABEL_COLUMNS,
    NO_CONV_TYPE,
    OUTPUT_TABLES,
    attribution_customer_journey,
    input_indexes,
    metadata,
    session_sources,
)

SORTER_CACHE_KIB = 16 * 1024
"""SQLite's page cache while it builds an index. Its sorter keeps each sorted run within the cache: a small
cache makes it sort many small runs on its worker threads (``PRAGMA threads``) and merge them, where a large
one sorts a few big runs on one thread. Measured on 5 million sessions (arrival layout): the date and cost
indexes took 6.5 s and 3.6 s with 16 MiB, 9.0 s and 6.4 s with the runs' 256 MiB."""
ROWID_NAMES = ("rowid", "_rowid_", "oid")
"""SQLite's names for a table's rowid; a declared column of one of them hides it under that name."""
ANALYSIS_ROWS = 1000
"""Index entries SQLite's ``ANALYZE`` samples (``PRAGMA analysis_limit``) for a new index's statistics."""


def input_kinds(engine: Engine | Connection) -> dict[str, str]:
    """Each table (``"table"``) and view (``"view"``) of the warehouse, by the name the pipeline's SQL
    matches it with: views are inputs too, and SQLite's names match whatever their case."""
    inspector, fold = inspect(engine), profile_of(engine).fold
    kinds = {fold(name): "table" for name in inspector.get_table_names()}
    kinds.update({fold(name): "view" for name in inspector.get_view_names()})
    return kinds


def sqlite_rowid(engine: Engine, table: str, schema: str | None = None) -> str | None:
    """The name that reads the rowid of the SQLite table ``table`` (as the file spells it), or ``None`` where
    there is none to read: a ``WITHOUT ROWID`` table, or a table that declares columns of all three of
    SQLite's names for it (each then reads the column)."""
    inspector = inspect(engine)
    if not inspector.get_table_options(table, schema).get("sqlite_with_rowid", True):
        return None
    declared = {column["name"].lower() for column in inspector.get_columns(table, schema)}
    return next((name for name in ROWID_NAMES if name not in declared), None)


def validate_inputs(engine: Engine) -> None:
    """Fail with one line naming the first missing input table or column, or a column whose type cannot
    hold what the pipeline reads from it (``warehouse.sources``)."""
    sources_of(engine)


def create_output_tables(engine: Engine) -> None:
    """Create the output and bookkeeping tables (``create_tables``)."""
    create_tables(engine, OUTPUT_TABLES)


def create_tables(engine: Engine, tables: Iterable[Table]) -> None:
    """Create the tables and their indexes that do not exist yet, add the nullable columns a table made by an
    earlier version lacks, and give its credit table the key by label (``_rekey_credit``); nothing else is
    changed.

    Why ``IF NOT EXISTS`` under ``schema_transaction``, and the write lock: two runs starting at once on a
    new warehouse both succeed (a check, then a create, would let the second fail on a table the first made
    in between), and a table being upgraded is never seen half-way.
    """
    tables = list(tables)
    with schema_transaction(engine) as conn:
        for table in tables:
            conn.execute(CreateTable(table, if_not_exists=True))
    with write_transaction(engine) as conn:
        inspector, fold = inspect(conn), profile_of(conn).fold
        for table in tables:
            present = {fold(column["name"]) for column in inspector.get_columns(table.name)}
            if table is not attribution_customer_journey:  # an earlier credit table is re-keyed below
                _check_required(table, present)
            added = [c for c in table.columns if c.name not in present and c.nullable]
            for column in added:
                conn.execute(text(add_column_sql(column, engine.dialect)))
            if table is attribution_customer_journey:
                if added:
                    _backfill_credited_sessions(conn)
                if inspector.get_pk_constraint(table.name)["constrained_columns"] != _key_of(table):
                    _rekey_credit(conn, present | {c.name for c in added})
            if profile_of(conn).indexes:
                for ix in table.indexes:
                    conn.execute(CreateIndex(ix, if_not_exists=True))


def add_column_sql(column: Column, dialect: Dialect) -> str:
    """The statement that adds a nullable ``column`` to its table made by an earlier version."""
    return f"ALTER TABLE {column.table.name} ADD COLUMN {column.name} {column.type.compile(dialect=dialect)}"


def _check_required(table: Table, present: set[str]) -> None:
    """Refuse, in one line, a table of the pipeline's name made by someone else: one without a column the
    pipeline writes and cannot add (a required one), which no earlier version made either."""
    lacking = [c.name for c in table.columns if c.name not in present and not c.nullable]
    if lacking:
        raise SchemaError(
            f"Output table '{table.name}' exists without the column(s) {', '.join(lacking)}: it was not made "
            "by this pipeline; rename or drop it, or use another database"
        )


def _key_of(table: Table) -> list[str]:
    return [column.name for column in table.primary_key.columns]


def _rekey_credit(conn: Connection, present: set[str]) -> None:
    """Give a credit table made by an earlier version (keyed by conversion and session alone, so one label's
    credit replaced another's) the key by label: its rows are copied into a new table, which takes its name.

    Why a copy: SQLite cannot change a table's key in place, and the one statement that works on every
    warehouse is better than three; it runs once, inside the caller's transaction. Credit stored before the
    label was recorded gets the empty label (``NO_CONV_TYPE`` and no model): no run replaces it.
    """
    credit = attribution_customer_journey
    new = credit.to_metadata(MetaData(), name=f"{credit.name}_rekeyed")
    old = table_clause(credit.name, *(column_clause(name) for name in present))
    values = [
        func.coalesce(old.c[name], NO_CONV_TYPE) if name in present else literal(NO_CONV_TYPE)
        for name in LABEL_COLUMNS
    ]
    rest = [c.name for c in new.columns if c.name not in LABEL_COLUMNS]
    conn.execute(CreateTable(new))
    conn.execute(insert(new).from_select([*LABEL_COLUMNS, *rest], select(*values, *(old.c[n] for n in rest))))
    conn.execute(text(f"DROP TABLE {old.name}"))
    conn.execute(text(f"ALTER TABLE {new.name} RENAME TO {credit.name}"))


def _backfill_credited_sessions(conn: Connection) -> None:
    """Give credit stored by an earlier version its session's date and channel, which the report reads from
    the credit table; credit of a session no longer in the input keeps NULL (and no report row counts it,
    as before)."""
    acj, s = attribution_customer_journey, sources_of(conn).selectable("session_sources")
    session = s.c.session_id == acj.c.session_id
    conn.execute(
        update(acj)
        .where(acj.c.event_date.is_(None))
        .values(
            event_date=select(s.c.event_date).where(session).scalar_subquery(),
            channel_name=select(s.c.channel_name).where(session).scalar_subquery(),
        )
    )


def create_input_tables(engine: Engine) -> None:
    """Create empty input tables (for the generator and tests; the pipeline never creates them)."""
    metadata.create_all(engine, tables=list(INPUT_TABLES), checkfirst=True)


def missing_indexes(engine: Engine, bounded: bool = False) -> list[Index]:
    """The indexes a run (``bounded`` or not: ``input_indexes``) reads through that the warehouse lacks (none
    on Redshift, which has sort keys instead, and none on an input that is a view: its base tables are their
    owner's to index)."""
    return _indexes(engine, bounded)[1]


def _indexes(engine: Engine, bounded: bool) -> tuple[list[Index], list[Index]]:
    """The indexes a run reads through that the warehouse has, and those it lacks (``missing_indexes``)."""
    if not profile_of(engine).indexes:
        return [], []
    wanted = sources_of(engine).indexes(input_indexes(bounded))
    tables = {(ix.table.name, ix.table.schema) for ix in wanted}
    existing = {name for table, schema in tables for name in index_names(engine, table, schema)}
    return [ix for ix in wanted if ix.name in existing], [ix for ix in wanted if ix.name not in existing]


def indexed_by_user(bind: Engine | Connection) -> bool:
    """Whether the journey join finds a user's sessions through the pipeline's user index (not on a view,
    nor on Redshift, nor where it was not allowed): without it the join must hash, never loop."""
    sessions = sources_of(bind).relations[session_sources.name]
    if not profile_of(bind).indexes or sessions.view:
        return False
    return JOURNEY_INDEXES[0].name in index_names(bind, sessions.table, sessions.schema)


def index_names(bind: Engine | Connection, table: str, schema: str | None = None) -> set[str]:
    """The names of ``table``'s indexes. On SQLite read from its catalogue: SQLAlchemy's reflection leaves out
    an index on expressions (the pipeline's, on a source mapping's ids read as text)."""
    if bind.dialect.name != "sqlite":
        return {ix["name"] for ix in inspect(bind).get_indexes(table, schema)}
    catalogue = (
        f"{bind.dialect.identifier_preparer.quote(schema)}.sqlite_master" if schema else "sqlite_master"
    )
    query = text(f"SELECT name FROM {catalogue} WHERE type = 'index' AND tbl_name = :table")
    with connection(bind) as conn:
        return set(conn.execute(query, {"table": table}).scalars())


def ensure_indexes(engine: Engine, bounded: bool = False) -> None:
    """Create the indexes a run reads through (``missing_indexes``) and refresh the planner's statistics; on
    SQLite also sample those of an index built without them (by an earlier version)."""
    present, missing = _indexes(engine, bounded)
    unsampled = _without_statistics(engine, present) if engine.dialect.name == "sqlite" else []
    if not missing and not unsampled:
        return
    # under the schema lock (SQLite: each build's own write lock), needing no output table: a second run
    # starting meanwhile waits, then finds them built
    with schema_transaction(engine) as conn, _sqlite_pragmas(conn, cache_size=-SORTER_CACHE_KIB):
        for ix in missing:
            conn.execute(CreateIndex(ix, if_not_exists=True))
        if conn.dialect.name == "sqlite":
            _sample_statistics(conn, [*missing, *unsampled])
    if missing:
        refresh_statistics(engine, sources_of(engine).tables())


def _without_statistics(engine: Engine, indexes: list[Index]) -> list[Index]:
    """Those of ``indexes`` SQLite's planner has no statistics of (no row in ``sqlite_stat1``)."""
    with engine.connect() as conn:
        if not conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first():
            return indexes
        sampled = {name for (name,) in conn.exec_driver_sql("SELECT DISTINCT idx FROM sqlite_stat1")}
    return [ix for ix in indexes if ix.name not in sampled]


def _sample_statistics(conn: Connection, indexes: Iterable[Index]) -> None:
    """Sampled SQLite statistics of new indexes (``ANALYZE`` within ``ANALYSIS_ROWS``: milliseconds).

    Why: without statistics SQLite's planner knows that a unique key finds one row but guesses ten for any
    other index, so it looks a session's cost up by the table's primary key and then its row, never in the
    covering cost index: 0.85 s against 0.38 s for the 100,000 sessions of a day among 10 million."""
    with _sqlite_pragmas(conn, analysis_limit=ANALYSIS_ROWS):
        for ix in indexes:
            conn.exec_driver_sql(f"ANALYZE {ix.name}")


@contextmanager
def _sqlite_pragmas(conn: Connection, **values: int) -> Iterator[None]:
    """SQLite pragmas set for the block, then as they were (the connection goes back to the pool); other
    warehouses have none."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in values}
    for name, value in values.items():
        conn.exec_driver_sql(f"PRAGMA {name} = {int(value)}")
    try:
        yield
    finally:
        for name, value in before.items():
            conn.exec_driver_sql(f"PRAGMA {name} = {int(value)}")


def refresh_statistics(engine: Engine, tables: Iterable[str]) -> None:
    """``VACUUM (ANALYZE)`` freshly loaded or indexed tables (their SQL names, quoted where needed) where the
    profile asks for it (PostgreSQL).

    Why: without statistics the planner guesses millions of rows per journey chunk, picks a bitmap or
    sequential scan and compiles the query with JIT; without a visibility map no scan is index-only.
    VACUUM cannot run inside a transaction, hence autocommit.
    """
    if not profile_of(engine).vacuum_after_load:
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(text(f"VACUUM (ANALYZE) {table}"))


def prepare_warehouse(
    engine: Engine, create_indexes: bool | None = None, *, bounded: bool = False
) -> list[str]:
    """Check the inputs and create the missing output tables; add the indexes a run (``bounded`` or not)
    reads through, if allowed (``builds_indexes``). Returns notes for the user (a missing index)."""
    validate_inputs(engine)
    notes = index_inputs(engine, create_indexes, bounded=bounded)
    create_output_tables(engine)
    return notes


def index_inputs(engine: Engine, create_indexes: bool | None = None, *, bounded: bool = False) -> list[str]:
    """Add the indexes a run (``bounded`` or not) reads through to the (validated) inputs, if allowed
    (``builds_indexes``); no output table is created. Returns notes for the user (a missing index, inputs
    that are views).

    Why apart from the output tables: every query that reads through an index runs after this (a bounded
    run's input checks, the journeys, the paths Markov and Shapley learn from), while a run refused by its
    input checks still leaves no output table behind."""
    sources = sources_of(engine)
    views = [relation.table for relation in sources.relations.values() if relation.view]
    notes = [f"Inputs read from views, without the pipeline's indexes: {', '.join(views)}"] if views else []
    if builds_indexes(engine, create_indexes):
        ensure_indexes(engine, bounded)
        return notes
    missing = missing_indexes(engine, bounded)
    if missing:
        notes.append(
            f"Journeys are read without the index(es) {', '.join(ix.name for ix in missing)}: "
            "allow them with --create-indexes (ATTRIBUTION_CREATE_INDEXES=1) for faster runs"
        )
    return notes


def builds_indexes(engine: Engine, create_indexes: bool | None) -> bool:
    """Whether ``index_inputs`` may build missing indexes: ``create_indexes`` ``None`` allows it on SQLite only,
    since a server warehouse's tables belong to their owners, who may not want an index built on their time."""
    return create_indexes if create_indexes is not None else engine.dialect.name == "sqlite"
