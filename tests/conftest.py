"""Shared fixtures: real databases (a SQLite file, a fresh PostgreSQL schema) built from hand-written cases.

``make_db`` is parametrised over both backends, so every test that uses it runs once per backend.
PostgreSQL tests are skipped, saying why, when no server answers; CI sets ATTRIBUTION_REQUIRE_POSTGRES=1
so that a missing server fails instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from attribution.ihc_api.local import LocalServer
from attribution.models.ihc_answers import ANSWER_SCHEMA
from attribution.sample_data.generate import generate_database
from attribution.warehouse import dialects
from tests.builders import Case, write_case
from tests.servers import API_KEY, FAULT_SCENARIOS

POSTGRES_URL = os.environ.get(
    "ATTRIBUTION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_schema() -> Iterator[str]:
    """Create a throw-away schema and yield a URL whose search_path points at it."""
    admin = create_engine(POSTGRES_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        if os.environ.get("ATTRIBUTION_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {str(exc).splitlines()[0]}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "redshift-sql"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], str]]:
    """A factory of empty databases of one backend: each call gives a new database's path or URL.

    ``redshift-sql`` is PostgreSQL answered with the Redshift profile (no row values, no indexes, no
    advisory lock, no COPY): the SQL the pipeline sends Redshift, run on a real server.
    """
    if request.param == "redshift-sql":
        monkeypatch.setitem(dialects.PROFILES, "postgresql", dialects.PROFILES["redshift"])
    schemas: list[Iterator[str]] = []
    counter = iter(range(1_000_000))

    def new_database() -> str:
        if request.param == "sqlite":
            return str(tmp_path / f"db{next(counter)}.db")
        schema = _postgres_schema()
        schemas.append(schema)
        return next(schema)

    yield new_database
    for schema in schemas:
        next(schema, None)


@pytest.fixture
def make_db(backend: Callable[[], str]) -> Callable[[Case], str]:
    """Write a case into a fresh database of the current backend and return its path or URL (``keyed``
    false: tables without keys or NOT NULL, as a user's file may come)."""

    def make(case: Case, *, keyed: bool = True) -> str:
        db = backend()
        write_case(db, case, keyed=keyed)
        return db

    return make


@pytest.fixture
def make_sqlite(tmp_path: Path) -> Callable[[Case], str]:
    """Write a case into a fresh SQLite file (for tests about files and the CLI)."""
    counter = iter(range(1_000_000))

    def make(case: Case, *, keyed: bool = True) -> str:
        path = str(tmp_path / f"case{next(counter)}.db")
        write_case(path, case, keyed=keyed)
        return path

    return make


@pytest.fixture(scope="module")
def source_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated warehouse of 20,000 sessions and 300 conversions over 5 days, made once per module."""
    path = tmp_path_factory.mktemp("generated") / "source.db"
    generate_database(path, sessions=20_000, conversions=300, days=5, seed=11)
    return path


@pytest.fixture
def db(source_db: Path, tmp_path: Path) -> str:
    """A fresh copy of ``source_db`` for one test to change."""
    copy = tmp_path / "run.db"
    shutil.copy(source_db, copy)
    return str(copy)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL schema, as a URL whose search_path points at it."""
    yield from _postgres_schema()


# Real IHC servers (``attribution serve-ihc`` processes on free ports). The default server runs once per
# session; each fault scenario gets its own server, all launched together on first use because a server
# process needs a couple of seconds to import its libraries.
@pytest.fixture(scope="session")
def ihc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """The project's IHC server without faults."""
    server = LocalServer.launch(tmp_path_factory.mktemp("ihc") / "server.log", api_key=API_KEY).wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fault_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalServer]]:
    """One server per fault scenario, by name."""
    folder = tmp_path_factory.mktemp("faults")
    servers = {
        name: LocalServer.launch(folder / f"{name}.log", *flags, api_key=API_KEY)
        for name, flags in FAULT_SCENARIOS.items()
    }
    try:
        yield {name: server.wait_ready() for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="session")
def ihc_servers(ihc_server: LocalServer, fault_servers: dict[str, LocalServer]) -> dict[str, LocalServer]:
    """The project's IHC server, clean and with the combined faults (5xx, 429, dropped connections)."""
    return {"clean": ihc_server, "faulty": fault_servers["combined"]}


REAL_ANSWERS = Path(__file__).parent / "fixtures" / "ihc-real-answers.csv"
"""Real answers of the IHC service for 975 journeys: public data, a fixture copied as it is (never rewritten)."""


@pytest.fixture(scope="session")
def real_answers() -> pl.DataFrame:
    """The real answers fixture, ids as text."""
    return pl.read_csv(REAL_ANSWERS, schema_overrides=ANSWER_SCHEMA)
