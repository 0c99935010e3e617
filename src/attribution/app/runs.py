"""A whole run from the command line: ``attribution run`` (with the project's own IHC server if asked) and
``attribution demo`` (a sample database generated first when missing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from attribution.app.local_ihc import local_ihc_server
from attribution.pipeline.in_process import run
from attribution.pipeline.settings import load_settings

if TYPE_CHECKING:
    import polars as pl

    from attribution.sample_data.generate import GenerateSummary
    from attribution.store.runs import RunSummary

OnProgress = Callable[[str, int, "int | None"], None]


def run_pipeline(
    on_progress: OnProgress,
    *,
    local_ihc: bool = False,
    on_server_failure: Callable[[Path], None] = lambda _log: None,
    **flags: object,
) -> RunSummary:
    """The pipeline over the settings ``flags`` give (flag > environment > default); with ``local_ihc`` the
    IHC API is the project's own server, started for this run."""
    if not local_ihc:
        return run(load_settings(**flags), on_progress)
    with local_ihc_server(on_server_failure) as (url, key):
        return run(load_settings(**{**flags, "ihc_url": url, "ihc_api_key": key}), on_progress)


@dataclass(frozen=True)
class Demo:
    """What ``attribution demo`` did: the run, and the stored report's totals per channel."""

    summary: RunSummary
    channels: pl.DataFrame


def demo(
    db: Path, out: str | None, on_progress: OnProgress, on_generated: Callable[[GenerateSummary], None]
) -> Demo:
    """Generate the default demo database at ``db`` if it does not exist (``on_generated`` told), then run
    the whole pipeline on it."""
    from attribution.reporting.model_comparison import channel_totals
    from attribution.sample_data.generate import DEFAULT_SESSIONS, generate_database
    from attribution.warehouse.engine import open_engine

    if not db.exists():
        counted = generate_database(
            db, on_progress=lambda done: on_progress("generating sessions", done, DEFAULT_SESSIONS)
        )
        on_generated(counted)
    summary = run_pipeline(on_progress, db=str(db), out=out)
    with open_engine(str(db)) as engine, engine.connect() as conn:
        return Demo(summary, channel_totals(conn))
