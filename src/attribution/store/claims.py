"""Claims of IHC API runs on the conversions they send, so two runs at once never pay the service twice.

Why in the warehouse: two runs may start on different machines, and the warehouse is what they share. Why
claims are taken under the write lock, in a short transaction of their own before a run sends anything: of
two runs reading the same journeys, exactly one gets each conversion; the other skips it (the first sends
it and stores its credit). Why claims end with their run: a run that died cannot release its own. A claim
counts while its run is recorded ``running``: a run whose owner is gone (its process ended, its lease ran
out: ``store.runs``) is marked ``abandoned`` first, and its claims dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl
from sqlalchemy import Connection, Engine, delete, select

from attribution.store.runs import mark_abandoned, now_text
from attribution.warehouse.bulk import bulk_insert
from attribution.warehouse.locks import write_transaction
from attribution.warehouse.tables import attribution_customer_journey as acj
from attribution.warehouse.tables import attribution_ihc_claims as claims
from attribution.warehouse.tables import attribution_runs as runs

if TYPE_CHECKING:
    from attribution.warehouse.redshift_copy import RedshiftCopy

IDS_PER_STATEMENT = 5_000
"""Ids bound in one statement: within every warehouse's limit on bound values."""


@dataclass(frozen=True)
class Claim:
    """What a run may send (``mine``) and the conversions another run holds or has credited since this run
    read them (``left``: that run sends them)."""

    mine: list[str]
    left: list[str]


def claim(
    engine: Engine,
    run_id: str,
    label: tuple[str, str],
    conv_ids: list[str],
    *,
    forced: bool,
    redshift_copy: RedshiftCopy | None = None,
) -> Claim:
    """Claim for ``run_id`` the conversions that no other live run holds and, unless ``forced``, that got no
    credit of ``label`` (model, conversion type) since they were read; one transaction under the write lock.
    Conversions the run holds already (a scheduler's retried batch) stay its own. ``redshift_copy``: see
    ``bulk_insert``."""
    with write_transaction(engine) as conn:
        _expire(conn)
        holders = _holders(conn, label)
        done = set() if forced else _credited(conn, label, conv_ids)
        mine = [c for c in conv_ids if holders.get(c, run_id) == run_id and c not in done]
        details = {"model": label[0], "conv_type_id": label[1], "run_id": run_id, "claimed_at": now_text()}
        new = pl.DataFrame({"conv_id": [c for c in mine if c not in holders]}, schema={"conv_id": pl.String})
        rows = new.with_columns(pl.lit(value).alias(name) for name, value in details.items())
        bulk_insert(conn, claims, rows, redshift_copy=redshift_copy)
    taken = set(mine)
    return Claim(mine, [c for c in conv_ids if c not in taken])


def release(conn: Connection, run_id: str) -> None:
    """Drop the run's claims as its tables commit (a run that fails leaves them to expire)."""
    conn.execute(delete(claims).where(claims.c.run_id == run_id))


def _expire(conn: Connection) -> None:
    """Drop the claims of runs no longer ``running`` (those whose owner is gone are marked first)."""
    mark_abandoned(conn)
    running = select(runs.c.run_id).where(runs.c.status == "running")
    conn.execute(delete(claims).where(claims.c.run_id.not_in(running)))


def _holders(conn: Connection, label: tuple[str, str]) -> dict[str, str]:
    """The claimed conversions of ``label`` and the run holding each."""
    query = select(claims.c.conv_id, claims.c.run_id).where(
        claims.c.model == label[0], claims.c.conv_type_id == label[1]
    )
    return {conv_id: run_id for conv_id, run_id in conn.execute(query)}


def _credited(conn: Connection, label: tuple[str, str], conv_ids: list[str]) -> set[str]:
    """Those of ``conv_ids`` that hold credit of ``label``."""
    found: set[str] = set()
    for part in _slices(conv_ids):
        query = select(acj.c.conv_id).distinct()
        query = query.where(acj.c.model == label[0], acj.c.conv_type_id == label[1], acj.c.conv_id.in_(part))
        found |= set(conn.scalars(query))
    return found


def _slices(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        yield ids[start : start + IDS_PER_STATEMENT]
