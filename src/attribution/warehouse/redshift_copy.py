"""Loading result rows into Redshift by ``COPY`` from object storage.

Why: Redshift has no ``COPY FROM STDIN``, and multi-row inserts all pass through its leader node; ``COPY``
reads a Parquet object from S3 on every slice at once. Why an IAM role: the cluster assumes it to read
the bucket, so no key ever goes into SQL, where a statement log or an error message could show it.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Connection, Integer, Table, text

from attribution import objectstore
from attribution.errors import ConfigError

IAM_ROLE = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
S3_URL = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[\w!\-.*()/]*)?")
"""A bucket and an optional prefix of safe characters: both are written into the COPY statement."""


@dataclass(frozen=True)
class RedshiftCopy:
    """How Redshift loads result rows by ``COPY``: where the Parquet objects it reads go (``s3://bucket/prefix``),
    the role Redshift reads them with, and the storage options (credentials, endpoint) this process writes
    them with."""

    url: str
    iam_role: str
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not S3_URL.fullmatch(self.url):
            raise ConfigError(f"Bad Redshift staging URL {self.url!r}: expected s3://bucket/prefix")
        if not IAM_ROLE.fullmatch(self.iam_role):
            raise ConfigError(
                f"Bad Redshift IAM role {self.iam_role!r}: expected arn:aws:iam::<account>:role/<name>"
            )

    def load(self, conn: Connection, table: Table, frame: pl.DataFrame) -> None:
        """Write ``frame`` as one Parquet object, ``COPY`` it into ``table`` inside the caller's
        transaction, and remove the object whatever happens (a failed COPY rolls back with the rest)."""
        fs, root = objectstore.open_store(self.url, self.storage_options)
        with tempfile.TemporaryDirectory(prefix="attribution-copy-") as folder:
            staged = Path(folder) / f"{table.name}-{uuid.uuid4().hex}.parquet"
            for_copy(table, frame).write_parquet(staged)
            url = objectstore.upload(fs, staged, root, self.url, self.storage_options)
        try:
            conn.execute(text(copy_statement(table, url, self.iam_role)))
        finally:
            fs.rm_file(f"{root}/{staged.name}")


def for_copy(table: Table, frame: pl.DataFrame) -> pl.DataFrame:
    """The frame in the table's column order and types: Redshift matches Parquet columns by position and
    loads an INTEGER column only from 32-bit integers."""
    return frame.select(
        pl.col(column.name).cast(pl.Int32) if isinstance(column.type, Integer) else pl.col(column.name)
        for column in table.columns
    )


def copy_statement(table: Table, url: str, iam_role: str) -> str:
    """Redshift's COPY of one staged Parquet object; the URL and role were checked against safe patterns."""
    return f"COPY {table.name} FROM '{url}' IAM_ROLE '{iam_role}' FORMAT AS PARQUET"
