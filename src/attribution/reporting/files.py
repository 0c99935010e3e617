"""Exports of the channel report: CSV for spreadsheets, Parquet and a Hyper extract for BI tools, and the
HTML dashboard.

Why these rules: an undefined ratio (no credit, no cost) is an empty cell or a null, never ``inf``, ``0`` or
``N/A``, so sums and averages stay right; text that a spreadsheet would run as a formula is prefixed with a
quote; rows are sorted and decimals fixed so reruns give byte-identical files; every file is written under a
temporary name and renamed, so readers never see half a file; a run's files are published as one set
(``reporting.publish``).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Connection

from attribution.errors import ConfigError
from attribution.reporting.channel_report import read_channel_report
from attribution.reporting.csv_rules import DECIMALS, neutralise_formulas
from attribution.reporting.dashboard import DashboardContext, write_dashboard
from attribution.reporting.file_set import FILE_NAMES, Render
from attribution.reporting.publish import atomic_path, publishing
from attribution.store.runs import committed

CSV_NAME = FILE_NAMES["csv"]
DEFAULT_FORMATS = ("csv", "parquet", "html")
"""What a run writes unless told otherwise; ``hyper`` starts a Hyper server, so it is asked for by name."""
HYPER_TABLE = ("Extract", "Extract")
"""Schema and table name that Tableau opens directly when an extract holds a single table."""
OS_ERROR_NUMBER = re.compile(r"\(os error (\d+)\)")
"""How Polars quotes the OS error behind a failed write."""


def write_csv(frame: pl.DataFrame, path: Path) -> Path:
    """Write atomically (temp file, then rename), so readers never see half a file."""
    with atomic_path(path) as tmp, _os_errors(tmp):
        neutralise_formulas(frame).write_csv(tmp, float_precision=DECIMALS, null_value="")
    return path


def typed_report(report: pl.DataFrame) -> pl.DataFrame:
    """The report with ``date`` as a Date, so BI tools get a time axis instead of text."""
    return report.with_columns(pl.col("date").str.to_date("%Y-%m-%d"))


def export_parquet(report: pl.DataFrame, path: Path) -> Path:
    """Write the report as Parquet: strings, a Date, Float64 numbers and nulls for undefined ratios."""
    with atomic_path(path) as tmp, _os_errors(tmp):
        typed_report(report).write_parquet(tmp, compression="zstd", statistics=True)
    return path


@contextmanager
def _os_errors(path: Path) -> Iterator[None]:
    """Raise a write that failed in Polars as the ``OSError`` it is (a full disk, a file size limit): Polars
    gives the OS error's number only in its text, in an ``OSError`` without it or a ``ComputeError``."""
    try:
        yield
    except (OSError, pl.exceptions.PolarsError) as exc:
        found = OS_ERROR_NUMBER.search(str(exc))
        if getattr(exc, "errno", None) is not None or found is None:
            raise
        number = int(found.group(1))
        raise OSError(number, os.strerror(number), str(path)) from None


def export_hyper(report: pl.DataFrame, path: Path) -> Path:
    """Write the report as a Tableau Hyper extract, table ``"Extract"."Extract"``, typed as in Parquet.

    Why a local Hyper server: it is the only writer of the format; ``tableauhyperapi`` ships it inside the
    wheel and runs it without network, usage data or log files.
    """
    try:  # loaded only when an extract is asked for: a native wheel that not every platform has
        import tableauhyperapi as hy
    except ImportError:
        raise ConfigError(
            "The hyper format needs the tableauhyperapi package, which is not installed: "
            "pip install tableauhyperapi, or ask for parquet or csv instead"
        ) from None

    kinds = {pl.String: hy.SqlType.text(), pl.Date: hy.SqlType.date(), pl.Float64: hy.SqlType.double()}
    frame = typed_report(report)
    table = hy.TableDefinition(
        hy.TableName(*HYPER_TABLE),
        [hy.TableDefinition.Column(name, kinds[dtype]) for name, dtype in frame.schema.items()],
    )
    with (
        atomic_path(path) as tmp,
        hy.HyperProcess(
            hy.Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_config": ""}
        ) as hyper,
        hy.Connection(hyper.endpoint, _vacated(tmp), hy.CreateMode.CREATE) as conn,
    ):
        conn.catalog.create_schema(HYPER_TABLE[0])
        conn.catalog.create_table(table)
        with hy.Inserter(conn, table) as inserter:
            inserter.add_rows(frame.iter_rows())
            inserter.execute()
    return path


def _vacated(path: Path) -> Path:
    """Remove the placeholder file: Hyper creates its database itself and refuses to replace a non-database."""
    path.unlink()
    return path


def _write_dashboard(report: pl.DataFrame, path: Path, context: DashboardContext | None) -> Path:
    return write_dashboard(report, path, run=context or DashboardContext.unknown())


Writer = Callable[[pl.DataFrame, Path, DashboardContext | None], Path]
WRITERS: dict[str, Writer] = {
    "csv": lambda report, path, _context: write_csv(report, path),
    "parquet": lambda report, path, _context: export_parquet(report, path),
    "hyper": lambda report, path, _context: export_hyper(report, path),
    "html": _write_dashboard,
}


def check_formats(formats: Sequence[str]) -> None:
    """Refuse an unknown format up front, naming the valid ones and the closest match."""
    for name in formats:
        if name not in WRITERS:
            close = difflib.get_close_matches(name, WRITERS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"Unknown export format {name!r}.{hint} Valid formats: {', '.join(WRITERS)}.")


def renderer(
    conn: Connection,
    formats: Sequence[str],
    context: DashboardContext | None,
    on_file: Callable[[int, int], None] = lambda _done, _total: None,
) -> Render:
    """Read the channel report once (inside the caller's transaction, if any) and return what writes it in
    every asked format into a folder, telling ``on_file`` ``(done, total)`` after each file."""
    report = read_channel_report(conn)

    def render(folder: Path) -> dict[str, Path]:
        files = {}
        for name in formats:
            files[name] = WRITERS[name](report, folder / FILE_NAMES[name], context)
            on_file(len(files), len(formats))
        return files

    return render


def export_all(
    conn: Connection,
    out: str | os.PathLike[str],
    formats: Sequence[str] = DEFAULT_FORMATS,
    context: DashboardContext | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, Path | str]:
    """Write the committed channel report in every asked format into ``out``, as one set.

    Args:
        out: a local directory or an object store URL such as ``s3://bucket/prefix`` (see ``publish``).
        formats: names from ``FILE_NAMES`` (``csv``, ``parquet``, ``hyper``, ``html``).
        context: the run shown in the dashboard; without it the page says the run is unknown.
        storage_options: fsspec options for a URL (credentials, endpoint); unused for a local directory.

    Returns:
        Each format's file, in the order asked: a ``Path`` locally, the object's URL in a store.
    """
    check_formats(formats)
    with publishing(out, partial(committed, conn), storage_options) as publish:
        pending = publish(renderer(conn, formats, context), None)
        pending.release()
    return pending.paths
