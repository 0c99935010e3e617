"""``attribution copy-db --source-mapping``: the user's own tables, columns and types copied under the same
names, so that the same mapping file runs on the copy and gives the original's tables and CSV.

Before: copy-db had no ``--source-mapping`` and read only the challenge's names, so a warehouse under its
own names could not be copied at all.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import inspect

from attribution.sample_data.generate import generate_database
from attribution.warehouse.engine import connect
from tests.commands import attribution
from tests.pipeline.test_source_mapping import TABLES, mapping_toml, tables_and_csv, users_form
from tests.retyped import Rows, in_some_zone, read_rows, renumbered, write_form

INTEGER_IDS = {key: ("BIGINT", int) for key in ("session_id", "user_id", "conv_id")}


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Rows:
    path = tmp_path_factory.mktemp("copied") / "generated.db"
    generate_database(path, sessions=1_500, conversions=80, days=4, seed=5)
    return renumbered(read_rows(path))


def copy_db(source: str, target: str, mapping: Path):
    return attribution("copy-db", "--from", source, "--to", target, "--source-mapping", str(mapping))


@pytest.mark.parametrize("origin", ["sqlite", "postgresql"])
def test_a_copy_under_the_user_s_names_runs_with_the_same_mapping_as_the_original(
    rows, tmp_path, postgres_url, origin
):
    """Integer ids, BOOLEAN flags, NUMERIC money and one TIMESTAMP column per input, under the user's names
    (a space in a table's name, mixed case), from SQLite to PostgreSQL and back."""
    sqlite_db = str(tmp_path / "users.db")
    source, target = (sqlite_db, postgres_url) if origin == "sqlite" else (postgres_url, sqlite_db)
    write_form(source, rows, users_form(None, "TIMESTAMP", datetime.fromisoformat, **INTEGER_IDS))
    mapping = tmp_path / "sources.toml"
    mapping.write_text(mapping_toml(None, {}))
    copied = copy_db(source, target, mapping)
    assert copied.returncode == 0, copied.stderr
    assert f"{TABLES['session_sources']}: {len(rows['session_sources']):,} rows" in copied.stdout
    options = {"source_mapping": str(mapping)}
    assert tables_and_csv(target, tmp_path, "copy", **options) == tables_and_csv(
        source, tmp_path, "original", **options
    )


def test_text_timestamps_with_offsets_stay_text(rows, tmp_path, postgres_url, monkeypatch):
    """A SQLite column declared TIMESTAMP whose text carries offsets (the mapping says ``offsets``) is text
    on the target: as a PostgreSQL TIMESTAMP its offsets would be dropped. The mapping named by the
    environment, as ``run`` reads it."""
    sqlite_db = str(tmp_path / "users.db")
    write_form(
        sqlite_db, rows, users_form(None, "TIMESTAMP", lambda value: in_some_zone(value).isoformat(" "))
    )
    mapping = tmp_path / "sources.toml"
    keys = {"session_sources": {"offsets": True}, "conversions": {"offsets": True}}
    mapping.write_text(mapping_toml(None, keys))
    monkeypatch.setenv("ATTRIBUTION_SOURCE_MAPPING", str(mapping))
    copied = attribution("copy-db", "--from", sqlite_db, "--to", postgres_url)
    monkeypatch.delenv("ATTRIBUTION_SOURCE_MAPPING")
    assert copied.returncode == 0, copied.stderr
    options = {"source_mapping": str(mapping)}
    assert tables_and_csv(postgres_url, tmp_path, "copy", **options) == tables_and_csv(
        sqlite_db, tmp_path, "original", **options
    )


def _schema(postgres_url: str) -> str:
    """The throw-away schema the test's PostgreSQL URL searches."""
    return unquote(postgres_url).rpartition("search_path=")[2]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("schema", r"^Error: Cannot copy t_\w+\.Web Sessions into a SQLite file under the mapping's schema"),
        (
            "instants",
            r"^Error: Cannot copy Web Sessions\.Started At, a timestamp with time zone, into a SQLite file",
        ),
    ],
)
def test_what_a_sqlite_file_cannot_hold_under_the_same_mapping_is_refused_in_one_line(
    rows, tmp_path, postgres_url, case, message
):
    schema = _schema(postgres_url) if case == "schema" else None
    kind = "TIMESTAMP WITH TIME ZONE" if case == "instants" else "TIMESTAMP"
    value = in_some_zone if case == "instants" else datetime.fromisoformat
    write_form(postgres_url, rows, users_form(schema, kind, value))
    mapping, target = tmp_path / "sources.toml", tmp_path / "copy.db"
    mapping.write_text(mapping_toml(schema, {}))
    refused = copy_db(postgres_url, str(target), mapping)
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert re.match(message, refused.stderr), refused.stderr
    engine = connect(str(target), must_exist=False)
    assert inspect(engine).get_table_names() == []
    engine.dispose()
