"""Opening a warehouse: an engine from a file path or URL, tuned per dialect, and its one lifecycle.

Why a context manager for every engine: a pool left open after an error keeps connections (and on SQLite
file handles) alive; ``open_engine`` disposes of it on every path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from attribution.errors import ConfigError, DatabaseNotFoundError, InputError
from attribution.redaction import HIDDEN, has_unencoded_at, is_secret_name
from attribution.warehouse.dialects import profile_named
from attribution.warehouse.source_mapping import SOURCES_OPTION, SourceMapping

SQLITE_BUSY_SECONDS = 30
"""How long a SQLite connection waits for another process's lock before it gives up."""

_SESSION_SETTINGS = {
    "sqlite": (
        # First: the statements after it read the schema, which waits for a lock another process holds.
        f"PRAGMA busy_timeout = {SQLITE_BUSY_SECONDS * 1000}",
        "PRAGMA cache_size = -262144",  # 256 MiB page cache: the index build sorts in memory, RSS stays bounded
        "PRAGMA threads = 2",  # the index build's sorter may use the second core
    ),
    # The pipeline's queries are short keyset pages: compiling them costs more than it saves.
    "postgresql": ("SET jit = off",),
}
"""Settings each new connection gets, by dialect."""


def database_url(db: str) -> str:
    """Turn ``--db`` (a file path or a SQLAlchemy URL) into a URL."""
    return db if "://" in db else f"sqlite:///{Path(db).expanduser()}"


def redact_url(db: str) -> str:
    """The URL as it may be printed: the password hidden, and so is any secret query parameter (drivers
    accept ``?password=`` too); of a URL with an unencoded ``@`` (``has_unencoded_at``), only its scheme."""
    if has_unencoded_at(db):
        return f"{db.partition('://')[0]}://{HIDDEN}"
    try:
        url = make_url(database_url(db))
    except (ArgumentError, ValueError):
        return "<unparseable database URL>"
    placeholder = "HIDDEN"  # a query value is rendered URL-quoted: "***" would read "%2A%2A%2A"
    hidden = url.update_query_dict({name: placeholder for name in url.query if is_secret_name(name)})
    return hidden.render_as_string(hide_password=True).replace(f"={placeholder}", f"={HIDDEN}")


def connect(db: str, *, must_exist: bool = True, sources: SourceMapping | None = None) -> Engine:
    """Open the warehouse named by ``db``.

    A SQLite file that does not exist is an error unless ``must_exist`` is false: pointing the
    pipeline at a wrong path must not silently create an empty database. ``sources`` says where the inputs
    are (``warehouse.sources``; default: the challenge's names). How result rows are loaded is no part of
    the engine: writers are given it (``bulk_insert``'s ``redshift_copy``).
    """
    url = _parsed_url(db)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        _check_sqlite_path(Path(url.database), must_exist=must_exist)
    profile_named(url.get_backend_name())
    options: dict[str, object] = {} if sources is None else {SOURCES_OPTION: sources}
    try:
        engine = create_engine(url, connect_args=_connect_args(url), execution_options=options)
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


def _parsed_url(db: str) -> URL:
    """``--db`` as a SQLAlchemy URL; a ``ConfigError`` naming the fix when it holds an unencoded ``@`` or
    does not parse."""
    url_text = database_url(db)
    if has_unencoded_at(url_text):
        raise ConfigError(
            f"The database URL {redact_url(db)} holds more than one '@': write each '@' of its user name, "
            "password or database as %40 (postgresql://user:p%40ss@host/db)"
        )
    try:
        return make_url(url_text)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"Cannot parse database URL {redact_url(db)}: expected a file path or a SQLAlchemy URL"
        ) from None


def _check_sqlite_path(path: Path, *, must_exist: bool) -> None:
    """Refuse a folder, a missing file where one must exist, and a file that is not a SQLite database."""
    if path.is_dir():
        raise InputError(f"Not a SQLite database: {path} is a folder")
    if must_exist and not path.is_file():
        raise DatabaseNotFoundError(
            f"Database file not found: {path} (generate one with `attribution generate --db {path}`)"
        )
    _check_sqlite_file(path)


SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file (an empty file is a database not yet written)."""


def _check_sqlite_file(path: Path) -> None:
    """Refuse, naming it, a file that is not a SQLite database (the driver says only "file is not a
    database", far from the flag that named it)."""
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return  # a new database, where the caller allows one
    except OSError as exc:
        raise InputError(f"Cannot read the database file {path}: {exc.strerror}") from None
    if header and header != SQLITE_HEADER:
        raise InputError(f"Not a SQLite database: {path} (its first bytes are not SQLite's header)")


def _connect_args(url: URL) -> dict[str, object]:
    """The driver's own lock wait, so that even opening a SQLite connection waits as long as its statements."""
    if url.get_backend_name() == "sqlite" and url.get_driver_name() == "pysqlite":
        return {"timeout": SQLITE_BUSY_SECONDS}
    return {}


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


@contextmanager
def open_engine(
    db: str, *, must_exist: bool = True, sources: SourceMapping | None = None
) -> Iterator[Engine]:
    """``connect``, disposed of when the block ends, however it ends."""
    engine = connect(db, must_exist=must_exist, sources=sources)
    try:
        yield engine
    finally:
        engine.dispose()
