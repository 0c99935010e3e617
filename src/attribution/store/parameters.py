"""Trained IHC parameters, versioned per conversion type, in the warehouse's ``ihc_parameters`` table.

Why versioned: retraining must not overwrite what earlier runs used; a run names a conversion type (and,
to reproduce an old run, a version). The id ``default`` is built in: the engine's untrained defaults,
never stored.
The project's IHC server serves the latest version of each (``load_all_parameters``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from pydantic import ValidationError
from sqlalchemy import (
    Engine,
    func,
    insert,
    inspect,
    select,
)

from attribution.errors import ConfigError
from attribution.models.ihc import IHCParameters
from attribution.vocabulary import TIMESTAMP_FORMAT
from attribution.warehouse.bulk import polars_schema
from attribution.warehouse.tables import ihc_parameters

BUILTIN_CONV_TYPE = "default"

_LISTING_SCHEMA = polars_schema(ihc_parameters, ("conv_type_id", "version", "trained_at", "journeys"))


def save_parameters(engine: Engine, conv_type_id: str, params: IHCParameters, journeys: int) -> int:
    """Store ``params`` as the next version of ``conv_type_id`` (trained on ``journeys``) and return the version."""
    if conv_type_id == BUILTIN_CONV_TYPE:
        raise ConfigError(
            f"'{BUILTIN_CONV_TYPE}' is the built-in untrained conversion type: save under another id"
        )
    table = ihc_parameters
    with engine.begin() as conn:
        latest = conn.scalar(select(func.max(table.c.version)).where(table.c.conv_type_id == conv_type_id))
        version = (latest or 0) + 1
        conn.execute(
            insert(table).values(
                conv_type_id=conv_type_id,
                version=version,
                trained_at=datetime.now(UTC).strftime(TIMESTAMP_FORMAT),
                parameters=params.model_dump_json(),
                journeys=journeys,
            )
        )
    return version


def load_parameters(engine: Engine, conv_type_id: str, version: int | None = None) -> IHCParameters:
    """The parameters of ``conv_type_id`` (its latest version unless ``version`` is given; ``default``
    has no versions: it is always the engine's untrained defaults).

    Raises ``ConfigError`` naming the known conversion types (or versions) when there is no such row.
    """
    if conv_type_id == BUILTIN_CONV_TYPE:
        return IHCParameters()
    listing = list_conversion_types(engine, all_versions=True)
    rows = listing.filter(pl.col("conv_type_id") == conv_type_id)
    if rows.is_empty():
        known = ", ".join([BUILTIN_CONV_TYPE, *listing["conv_type_id"].unique().sort()])
        raise ConfigError(
            f"Unknown IHC conversion type '{conv_type_id}'. Known conversion types: {known} "
            f"(train one with `attribution train-ihc --conv-type-id {conv_type_id}`)"
        )
    chosen = rows["version"].max() if version is None else version
    if chosen not in rows["version"]:
        versions = ", ".join(map(str, rows["version"]))
        raise ConfigError(
            f"IHC conversion type '{conv_type_id}' has no version {version}. Versions: {versions}"
        )
    with engine.connect() as conn:
        text = conn.scalar(
            select(ihc_parameters.c.parameters).where(
                ihc_parameters.c.conv_type_id == conv_type_id, ihc_parameters.c.version == chosen
            )
        )
    try:
        return IHCParameters.model_validate_json(text)
    except ValidationError:
        raise ConfigError(
            f"IHC conversion type '{conv_type_id}' version {chosen} was stored by an earlier form of the engine; "
            f"store a new version with `attribution calibrate-ihc` or `attribution train-ihc`"
        ) from None


def list_conversion_types(engine: Engine, *, all_versions: bool = False) -> pl.DataFrame:
    """Stored conversion types: ``conv_type_id``, ``version``, ``trained_at``, ``journeys``, latest version
    of each unless ``all_versions`` (empty when the table does not exist yet; ``default`` is not stored)."""
    if not inspect(engine).has_table(ihc_parameters.name):
        return pl.DataFrame(schema=_LISTING_SCHEMA)
    table = ihc_parameters
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.conv_type_id, table.c.version, table.c.trained_at, table.c.journeys).order_by(
                table.c.conv_type_id, table.c.version
            )
        ).fetchall()
    frame = pl.DataFrame(rows, schema=_LISTING_SCHEMA, orient="row")
    return frame if all_versions else frame.group_by("conv_type_id", maintain_order=True).last()


def load_all_parameters(engine: Engine) -> dict[str, IHCParameters]:
    """The latest parameters of every stored conversion type (what the IHC server serves from ``--db``)."""
    return {
        conv_type: load_parameters(engine, conv_type)
        for conv_type in list_conversion_types(engine)["conv_type_id"]
    }
