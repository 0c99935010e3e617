"""The warehouse: engine from a URL, the table definitions, schema creation and validation, indexes.

Why here: connecting and the schema are what every step shares; moving many rows in and out lives in
``bulk``, and the SQL fragments that differ between SQLite, PostgreSQL and Redshift in ``dialects``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    VARCHAR,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from attribution.dialects import profile_named, profile_of
from attribution.errors import ConfigError, DatabaseNotFoundError, SchemaError

if TYPE_CHECKING:
    from attribution.staged_copy import StagedCopy

# REAL in SQLite, as in the challenge file; DOUBLE PRECISION elsewhere (money must not be 4-byte floats).
Real = Float(precision=53).with_variant(sqlite.REAL(), "sqlite")
# Text that may outgrow 256 bytes (JSON summaries, parameters, error lines): Redshift makes TEXT a VARCHAR(256).
LongText = Text().with_variant(VARCHAR(65535), "redshift")

metadata = MetaData()

session_sources = Table(
    "session_sources",
    metadata,
    Column("session_id", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("event_date", Text, nullable=False),
    Column("event_time", Text, nullable=False),
    Column("channel_name", Text, nullable=False),
    Column("holder_engagement", Integer, nullable=False),
    Column("closer_engagement", Integer, nullable=False),
    Column("impression_interaction", Integer, nullable=False),
)

conversions = Table(
    "conversions",
    metadata,
    Column("conv_id", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("conv_date", Text, nullable=False),
    Column("conv_time", Text, nullable=False),
    Column("revenue", Real, nullable=False),
)

session_costs = Table(
    "session_costs",
    metadata,
    Column("session_id", Text, primary_key=True),
    Column("cost", Real, nullable=True),
)

attribution_customer_journey = Table(
    "attribution_customer_journey",
    metadata,
    Column("conv_id", Text, nullable=False),
    Column("session_id", Text, nullable=False),
    Column("ihc", Real, nullable=False),
    PrimaryKeyConstraint("conv_id", "session_id"),
)

channel_reporting = Table(
    "channel_reporting",
    metadata,
    Column("channel_name", Text, nullable=False),
    Column("date", Text, nullable=False),
    Column("cost", Real, nullable=False),
    Column("ihc", Real, nullable=False),
    Column("ihc_revenue", Real, nullable=False),
    PrimaryKeyConstraint("channel_name", "date"),
)

attribution_runs = Table(
    "attribution_runs",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("started_at", Text, nullable=False),
    Column("finished_at", Text),
    Column("status", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("range_start", Text),
    Column("range_end", Text),
    Column("summary", LongText),
)

attribution_failures = Table(
    "attribution_failures",
    metadata,
    Column("conv_id", Text, primary_key=True),
    Column("run_id", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", LongText),
    Column("failed_at", Text, nullable=False),
)

ihc_parameters = Table(
    "ihc_parameters",
    metadata,
    Column("conv_type_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("trained_at", Text, nullable=False),
    Column("parameters", LongText, nullable=False),
    Column("journeys", Integer, nullable=False),
    PrimaryKeyConstraint("conv_type_id", "version"),
)

INPUT_TABLES = (session_sources, conversions, session_costs)
OUTPUT_TABLES = (
    attribution_customer_journey,
    channel_reporting,
    attribution_runs,
    attribution_failures,
    ihc_parameters,
)

# Indexes the pipeline adds to the input tables (they never change the tables' contents or columns).
# They live on copies of the tables in their own MetaData, so creating the input tables (generator,
# tests) does not create them: a user's challenge.db arrives without them and the first run adds them.
_index_metadata = MetaData()
_sessions = session_sources.to_metadata(_index_metadata)
_conversions = conversions.to_metadata(_index_metadata)
JOURNEY_INDEXES = (
    # The journey join looks a user's sessions up by time; the other columns keep it index-only.
    Index(
        "ix_attribution_sessions_by_user_time",
        _sessions.c.user_id,
        _sessions.c.event_date,
        _sessions.c.event_time,
        _sessions.c.session_id,
        _sessions.c.channel_name,
        _sessions.c.holder_engagement,
        _sessions.c.closer_engagement,
        _sessions.c.impression_interaction,
    ),
    Index(
        "ix_attribution_conversions_by_time",
        _conversions.c.conv_date,
        _conversions.c.conv_time,
        _conversions.c.conv_id,
    ),
)

_SESSION_SETTINGS = {
    "sqlite": (
        "PRAGMA cache_size = -262144",  # 256 MiB page cache: the index build sorts in memory, RSS stays bounded
        "PRAGMA threads = 2",  # the index build's sorter may use the second core
        "PRAGMA busy_timeout = 30000",
    ),
    # The pipeline's queries are short keyset pages: compiling them costs more than it saves.
    "postgresql": ("SET jit = off",),
}
"""Settings each new connection gets, by dialect."""


def database_url(db: str) -> str:
    """Turn ``--db`` (a file path or a SQLAlchemy URL) into a URL."""
    return db if "://" in db else f"sqlite:///{Path(db).expanduser()}"


def redact_url(db: str) -> str:
    """The URL as it may be printed: the password hidden."""
    try:
        return make_url(database_url(db)).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable database URL>"


def connect(db: str, *, must_exist: bool = True, staged_copy: StagedCopy | None = None) -> Engine:
    """Open the warehouse named by ``db``.

    A SQLite file that does not exist is an error unless ``must_exist`` is false: pointing the
    pipeline at a wrong path must not silently create an empty database. ``staged_copy`` makes Redshift
    load result rows by ``COPY`` from object storage instead of inserts.
    """
    url_text = database_url(db)
    try:
        url = make_url(url_text)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"Cannot parse database URL {redact_url(db)}: expected a file path or a SQLAlchemy URL"
        ) from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        if must_exist and not path.is_file():
            raise DatabaseNotFoundError(
                f"Database file not found: {path} (generate one with `attribution generate --db {path}`)"
            )
    profile_named(url.get_backend_name())
    try:
        engine = create_engine(url, execution_options={"staged_copy": staged_copy} if staged_copy else {})
    except NoSuchModuleError:
        raise ConfigError(
            f"Unsupported database URL scheme '{url.drivername}' in {redact_url(db)}{_extra_hint(url)}"
        ) from None
    except ImportError as exc:
        raise ConfigError(f"Cannot load the driver of {redact_url(db)} ({exc}){_extra_hint(url)}") from None
    settings = _SESSION_SETTINGS.get(engine.dialect.name)
    if settings:
        event.listen(engine, "connect", partial(_tune_session, settings=settings))
    return engine


def _extra_hint(url: URL) -> str:
    if url.get_backend_name() == "redshift":
        return ": install attribution-pipeline[redshift] and use redshift+redshift_connector://"
    return ""


def _tune_session(dbapi_connection, _record, settings: tuple[str, ...]) -> None:
    """Apply a warehouse's session settings on each new connection, outside any transaction."""
    autocommit = getattr(dbapi_connection, "autocommit", None)
    if autocommit is False:
        dbapi_connection.autocommit = True
    cursor = dbapi_connection.cursor()
    for statement in settings:
        cursor.execute(statement)
    cursor.close()
    if autocommit is False:
        dbapi_connection.autocommit = False


def validate_inputs(engine: Engine) -> None:
    """Fail with one line naming the first missing input table or column."""
    inspector = inspect(engine)
    existing = set(inspector.get_table_names())
    for table in INPUT_TABLES:
        if table.name not in existing:
            raise SchemaError(f"Input table '{table.name}' is missing from {redact_url(str(engine.url))}")
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in columns:
                raise SchemaError(
                    f"Input table '{table.name}' has no column '{column.name}' "
                    f"(expected: {', '.join(c.name for c in table.columns)})"
                )


def create_output_tables(engine: Engine) -> None:
    """Create the output and bookkeeping tables that do not exist yet; existing ones are left alone."""
    metadata.create_all(engine, tables=list(OUTPUT_TABLES), checkfirst=True)


def create_input_tables(engine: Engine) -> None:
    """Create empty input tables (for the generator and tests; the pipeline never creates them)."""
    metadata.create_all(engine, tables=list(INPUT_TABLES), checkfirst=True)


def missing_indexes(engine: Engine) -> list[Index]:
    """The journey indexes the warehouse lacks (none on Redshift, which has sort keys instead)."""
    if not profile_of(engine).indexes:
        return []
    inspector = inspect(engine)
    existing = {ix["name"] for t in INPUT_TABLES for ix in inspector.get_indexes(t.name)}
    return [ix for ix in JOURNEY_INDEXES if ix.name not in existing]


def ensure_indexes(engine: Engine) -> None:
    """Create the indexes the journey SQL needs, if missing, and refresh the planner's statistics."""
    missing = missing_indexes(engine)
    if missing:
        with engine.begin() as conn:
            for ix in missing:
                ix.create(conn)
        refresh_statistics(engine, INPUT_TABLES)


def refresh_statistics(engine: Engine, tables: Iterable[Table]) -> None:
    """``VACUUM (ANALYZE)`` freshly loaded or indexed tables where the profile asks for it (PostgreSQL).

    Why: without statistics the planner guesses millions of rows per journey chunk, picks a bitmap or
    sequential scan and compiles the query with JIT; without a visibility map no scan is index-only.
    VACUUM cannot run inside a transaction, hence autocommit.
    """
    if not profile_of(engine).vacuum_after_load:
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(text(f"VACUUM (ANALYZE) {table.name}"))


def prepare(engine: Engine, create_indexes: bool | None = None) -> list[str]:
    """Check the inputs and create the missing output tables; add the journey indexes if allowed.

    ``create_indexes`` ``None`` allows it on SQLite only: a server warehouse's tables belong to their
    owners, who may not want an index built on their time. Returns notes for the user (a missing index).
    """
    validate_inputs(engine)
    create_output_tables(engine)
    if create_indexes if create_indexes is not None else engine.dialect.name == "sqlite":
        ensure_indexes(engine)
        return []
    missing = missing_indexes(engine)
    if not missing:
        return []
    return [
        f"Journeys are read without the index(es) {', '.join(ix.name for ix in missing)}: "
        "allow them with --create-indexes (ATTRIBUTION_CREATE_INDEXES=1) for faster runs"
    ]
