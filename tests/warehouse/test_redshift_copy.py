"""Redshift loads by COPY from object storage: the staged Parquet files on a real S3 server (moto over
HTTP), the COPY statements run on PostgreSQL under the Redshift profile.

PostgreSQL cannot read S3, so a cursor hook stands in for Redshift's COPY: it reads the staged object back
from the S3 server, exactly as named in the statement, and loads its columns by position as Redshift does.
What is not exercised here is Redshift itself reading the bucket with the IAM role.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, event, select

from attribution import load_settings, run
from attribution.errors import ConfigError
from attribution.pipeline import scheduled
from attribution.warehouse import dialects
from attribution.warehouse.copy_db import copy_inputs
from attribution.warehouse.engine import connect
from attribution.warehouse.redshift_copy import RedshiftCopy
from attribution.warehouse.tables import attribution_runs
from tests.builders import write_case
from tests.cases import PAID
from tests.conftest import _postgres_schema
from tests.oracle import assert_same_results
from tests.s3 import ACCESS_KEY, SECRET_KEY, moto_server, objects, s3_client, use_endpoint
from tests.servers import API_KEY

BUCKET = "staging"
ROLE = "arn:aws:iam::123456789012:role/attribution-copy"
COPY = re.compile(r"COPY (\w+) FROM 's3://([^/]+)/([^']+)' IAM_ROLE '([^']+)' FORMAT AS PARQUET")


@pytest.fixture
def redshift_sql(monkeypatch) -> Iterator[str]:
    """A PostgreSQL schema answered with the Redshift profile."""
    monkeypatch.setitem(dialects.PROFILES, "postgresql", dialects.PROFILES["redshift"])
    schema = _postgres_schema()
    yield next(schema)
    next(schema, None)


@pytest.fixture
def s3(monkeypatch) -> Iterator[object]:
    with moto_server() as endpoint:
        use_endpoint(monkeypatch, endpoint)
        client = s3_client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        yield client


@dataclass
class Copies:
    """Every COPY the pipeline sent: (table, IAM role, the staged object's rows); tables whose COPY fails."""

    seen: list[tuple[str, str, pl.DataFrame]] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)


@pytest.fixture
def copies(s3) -> Iterator[Copies]:
    """Redshift's COPY, emulated: the staged object read back from S3 and loaded by position."""
    copies = Copies()

    def emulate(_conn, cursor, statement, parameters, _context, _executemany):
        match = COPY.fullmatch(statement)
        if not match:
            return statement, parameters
        table, bucket, key, role = match.groups()
        if table in copies.refused:
            raise RuntimeError(f"S3ServiceException: Access Denied loading {table}")
        frame = pl.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        copies.seen.append((table, role, frame))
        with cursor.connection.cursor() as raw, raw.copy(f"COPY {table} FROM STDIN") as load:
            for row in frame.iter_rows():  # by position, like Redshift's COPY of Parquet
                load.write_row(row)
        return "SELECT 1", parameters

    event.listen(Engine, "before_cursor_execute", emulate, retval=True)
    yield copies
    event.remove(Engine, "before_cursor_execute", emulate)


def staging_settings(db: str, out: Path, **extra):
    return load_settings(
        db=db,
        out=str(out),
        start="2023-09-01",
        end="2023-09-06",
        redshift_copy_url=f"s3://{BUCKET}/loads",
        redshift_iam_role=ROLE,
        **extra,
    )


def copied_tables(copies: Copies) -> set[str]:
    return {table for table, _role, _frame in copies.seen}


def scheduled_run(settings) -> None:
    """Every task of the scheduled runner, in order, as the DAG runs them."""
    scheduled.prepare_run(settings)
    for batch_id in scheduled.stage_journeys(settings, "scheduled", batch_journeys=2).batch_ids:
        scheduled.attribute_batch(settings, "scheduled", batch_id)
    scheduled.finish_run(settings, "scheduled")
    scheduled.export_files(settings, "scheduled")


@pytest.mark.parametrize(
    ("runner", "loaded"),
    [
        (run, {"attribution_customer_journey", "channel_reporting"}),
        (scheduled_run, {"attribution_staged_journeys", "attribution_staged_credits", "channel_reporting"}),
    ],
    ids=["in-process", "scheduled"],
)
def test_results_load_by_copy_of_staged_parquet_and_equal_a_sqlite_run(
    tmp_path: Path, redshift_sql: str, s3, copies, runner, loaded
):
    sqlite_db = str(tmp_path / "case.db")
    write_case(sqlite_db, PAID)
    write_case(redshift_sql, PAID)
    run(load_settings(db=sqlite_db, out=str(tmp_path / "sqlite"), start="2023-09-01", end="2023-09-06"))
    runner(staging_settings(redshift_sql, tmp_path / "postgresql"))
    assert_same_results(tmp_path, sqlite_db, redshift_sql)
    assert copied_tables(copies) == loaded  # every row written by the run's settings' COPY
    assert {role for _table, role, _frame in copies.seen} == {ROLE}
    assert objects(s3, BUCKET) == {}  # every staged object removed after its COPY


def test_an_ihc_api_run_claims_and_stores_each_answer_by_copy(
    tmp_path: Path, redshift_sql: str, s3, copies, ihc_server
):
    write_case(redshift_sql, PAID)
    remote = {"model": "ihc-api", "ihc_url": ihc_server.url, "ihc_api_key": API_KEY, "max_journeys": 2}
    summary = run(staging_settings(redshift_sql, tmp_path, **remote))
    assert (summary.status, summary.attributed) == ("succeeded", 4)
    assert copied_tables(copies) == {
        "attribution_ihc_claims",
        "attribution_customer_journey",
        "channel_reporting",
    }
    assert [table for table, *_ in copies.seen].count("attribution_customer_journey") == 2  # one per answer


def test_copy_db_loads_a_redshift_target_by_copy(tmp_path: Path, redshift_sql: str, s3, copies):
    sqlite_db = str(tmp_path / "case.db")
    write_case(sqlite_db, PAID)
    copied = copy_inputs(sqlite_db, redshift_sql, redshift_copy=RedshiftCopy(f"s3://{BUCKET}/loads", ROLE))
    assert (copied["session_sources"], copied["conversions"]) == (len(PAID.sessions), len(PAID.conversions))
    assert copied_tables(copies) == set(copied)


def test_the_engine_carries_no_copy_settings(tmp_path: Path):
    db = str(tmp_path / "case.db")
    write_case(db, PAID)
    settings = staging_settings(db, tmp_path)
    assert settings.redshift_copy is not None
    with settings.open_warehouse() as engine, engine.connect() as conn:
        options = {**engine.get_execution_options(), **conn.get_execution_options()}
    assert not any(isinstance(value, RedshiftCopy) for value in options.values())


def test_a_failed_copy_rolls_back_and_leaves_no_staged_object(tmp_path: Path, redshift_sql: str, s3, copies):
    write_case(redshift_sql, PAID)
    run(staging_settings(redshift_sql, tmp_path / "first"))
    engine = connect(redshift_sql)
    with engine.connect() as conn:
        before = conn.execute(select(attribution_runs.c.status)).scalars().all()

    copies.refused.add("channel_reporting")
    with pytest.raises(RuntimeError, match="Access Denied"):
        run(staging_settings(redshift_sql, tmp_path / "second", model="linear"))
    with engine.connect() as conn:
        statuses = conn.execute(select(attribution_runs.c.status)).scalars().all()
    engine.dispose()
    assert sorted(statuses) == sorted([*before, "failed"])
    assert objects(s3, BUCKET) == {}


def test_the_storage_secret_never_reaches_the_run_record(tmp_path: Path, redshift_sql: str, s3, copies):
    write_case(redshift_sql, PAID)
    run(staging_settings(redshift_sql, tmp_path, storage_options={"key": ACCESS_KEY, "secret": SECRET_KEY}))
    engine = connect(redshift_sql)
    with engine.connect() as conn:
        summaries = conn.execute(select(attribution_runs.c.summary)).scalars().all()
    engine.dispose()
    assert summaries and not any(SECRET_KEY in summary for summary in summaries)


@pytest.mark.parametrize(
    ("url", "role", "message"),
    [
        ("s3://staging/loads'; DROP TABLE x; --", ROLE, "Bad Redshift staging URL"),
        ("gs://staging/loads", ROLE, "Bad Redshift staging URL"),
        (f"s3://{BUCKET}/loads", "arn:aws:iam::1:role/x' --", "Bad Redshift IAM role"),
    ],
)
def test_staging_values_that_would_break_out_of_the_statement_are_refused(url, role, message):
    with pytest.raises(ConfigError, match=message):
        RedshiftCopy(url, role)


def test_half_a_staging_configuration_is_refused():
    with pytest.raises(ConfigError, match="Set both redshift_copy_url and redshift_iam_role"):
        load_settings(redshift_copy_url=f"s3://{BUCKET}/loads")
