"""The work tables of a scheduled run: its journeys, credit and counts, kept in the warehouse between its
tasks, keyed by run.

Why keyed by run: two runs never read or delete each other's rows, and every task can run again with the
same result: forgetting the run first replaces its rows, a batch replaces its own credit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

import polars as pl
from sqlalchemy import Connection, Engine, Row, Select, delete, func, insert, select

from attribution.vocabulary import BUILT_JOURNEY_SCHEMA, STORED_CREDIT_SCHEMA, in_build_order
from attribution.warehouse.bulk import bulk_insert
from attribution.warehouse.tables import (
    INPUT_COUNTS,
    INPUT_IDS,
    WORK_TABLES,
    attribution_customer_journey,
    attribution_runs,
    staged_credits,
    staged_inputs,
    staged_journeys,
    staged_left,
    staged_runs,
)

if TYPE_CHECKING:
    from attribution.warehouse.redshift_copy import RedshiftCopy


def forget_run(conn: Connection, run_key: str, *, record: bool = False) -> None:
    """Drop a run's staged rows (and its run record with ``record``), so staging again starts clean."""
    for table in WORK_TABLES:
        conn.execute(delete(table).where(table.c.run_key == run_key))
    if record:
        conn.execute(delete(attribution_runs).where(attribution_runs.c.run_id == run_key))


def append_journeys(
    conn: Connection,
    run_key: str,
    first_batch: int,
    rows: pl.DataFrame,
    *,
    redshift_copy: RedshiftCopy | None = None,
) -> None:
    """Append journey rows, each with its ``batch`` (counted from ``first_batch``). ``redshift_copy``, here
    and below: see ``bulk_insert``."""
    ids = {"run_key": pl.lit(run_key), "batch_id": pl.col("batch") + first_batch}
    bulk_insert(conn, staged_journeys, rows.with_columns(**ids), redshift_copy=redshift_copy)


def mark_staged(
    engine: Engine,
    run_key: str,
    batches: int,
    counts: dict[str, int],
    redo_days: int | None = None,
    inputs: Mapping[str, NamedTuple] | None = None,
) -> None:
    """Record that all of a run's journeys are staged: only then can it be finished. With a restatement
    window, the days of it the run redoes and the ``inputs`` (fingerprints, by date) it read before them."""
    rows = [{"run_key": run_key, "date": day, **values._asdict()} for day, values in (inputs or {}).items()]
    with engine.begin() as conn:
        if rows:
            conn.execute(insert(staged_inputs), rows)
        conn.execute(
            insert(staged_runs).values(run_key=run_key, batches=batches, redo_days=redo_days, **counts)
        )


def staged_inputs_of(conn: Connection, run_key: str) -> dict[str, tuple]:
    """The inputs a run read before staging its journeys, by date, in ``INPUT_COUNTS`` then ``INPUT_IDS``
    order."""
    c = staged_inputs.c
    columns = [c[name] for name in (*INPUT_COUNTS, *INPUT_IDS)]
    return {
        row[0]: tuple(row[1:]) for row in conn.execute(select(c.date, *columns).where(c.run_key == run_key))
    }


def staged_run(conn: Connection, run_key: str) -> Row | None:
    """The run's staged counts, or ``None`` if it is not (or no longer) staged."""
    return conn.execute(select(staged_runs).where(staged_runs.c.run_key == run_key)).first()


def read_batch(engine: Engine, run_key: str, batch_id: int) -> pl.DataFrame:
    """One batch's journeys, in the order ``build_journeys`` yields them."""
    c = staged_journeys.c
    query = select(*(c[name] for name in BUILT_JOURNEY_SCHEMA)).where(
        c.run_key == run_key, c.batch_id == batch_id
    )
    with engine.connect() as conn:
        rows = conn.execute(query).fetchall()
    return in_build_order(pl.DataFrame(rows, schema=BUILT_JOURNEY_SCHEMA, orient="row"))


def credited_in_batch(engine: Engine, run_key: str, batch_id: int) -> pl.DataFrame:
    """The conversions of a batch that already hold staged credit (``conv_id``)."""
    c = staged_credits.c
    query = select(c.conv_id).distinct().where(c.run_key == run_key, c.batch_id == batch_id)
    with engine.connect() as conn:
        return pl.DataFrame({"conv_id": conn.scalars(query).all()}, schema={"conv_id": pl.String})


def stage_credits(
    engine: Engine,
    run_key: str,
    batch_id: int,
    credits: pl.DataFrame,
    *,
    whole_batch: bool,
    redshift_copy: RedshiftCopy | None = None,
) -> None:
    """Delete-then-insert the staged credit of the whole batch, or of the conversions in ``credits``."""
    c = staged_credits.c
    same = c.batch_id == batch_id if whole_batch else c.conv_id.in_(credits["conv_id"].unique().to_list())
    rows = credits.with_columns(run_key=pl.lit(run_key), batch_id=pl.lit(batch_id))
    with engine.begin() as conn:
        conn.execute(delete(staged_credits).where(c.run_key == run_key, same))
        bulk_insert(conn, staged_credits, rows, redshift_copy=redshift_copy)


def stage_left(
    engine: Engine,
    run_key: str,
    batch_id: int,
    conv_ids: list[str],
    *,
    redshift_copy: RedshiftCopy | None = None,
) -> None:
    """Replace the batch's journeys left to other runs (``staged_left``) with ``conv_ids``."""
    rows = pl.DataFrame({"conv_id": conv_ids}, schema={"conv_id": pl.String})
    rows = rows.with_columns(run_key=pl.lit(run_key), batch_id=pl.lit(batch_id))
    with engine.begin() as conn:
        conn.execute(
            delete(staged_left).where(staged_left.c.run_key == run_key, staged_left.c.batch_id == batch_id)
        )
        bulk_insert(conn, staged_left, rows, redshift_copy=redshift_copy)


def left_count(conn: Connection, run_key: str) -> int:
    """How many of the run's journeys were left to other runs."""
    c = staged_left.c
    return conn.scalar(select(func.count(c.conv_id.distinct())).where(c.run_key == run_key)) or 0


def credit_totals(conn: Connection, run_key: str) -> tuple[int, float]:
    """How many conversions hold staged credit, and the credit's sum."""
    c = staged_credits.c
    totals = select(func.count(c.conv_id.distinct()), func.coalesce(func.sum(c.ihc), 0.0))
    credited, total = conn.execute(totals.where(c.run_key == run_key)).one()
    return credited, float(total)


def credited_conversions(run_key: str) -> Select:
    """A query of the conversions holding staged credit."""
    return select(staged_credits.c.conv_id).where(staged_credits.c.run_key == run_key)


def staged_dates(conn: Connection, run_key: str) -> set[str]:
    """Session dates of the staged journeys (their report rows get the new credit)."""
    j = staged_journeys.c
    return set(conn.scalars(select(func.substr(j.timestamp, 1, 10)).distinct().where(j.run_key == run_key)))


def copy_credits(conn: Connection, run_key: str) -> None:
    """Insert the run's staged credit rows into the credit table."""
    rows = select(*(staged_credits.c[name] for name in STORED_CREDIT_SCHEMA)).where(
        staged_credits.c.run_key == run_key
    )
    conn.execute(insert(attribution_customer_journey).from_select(list(STORED_CREDIT_SCHEMA), rows))
