"""The commands over the stored report: export it (``attribution report``), compare models side by side
(``attribution compare``), publish its extract to Tableau (``attribution publish-tableau``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

    from attribution.reporting.tableau import Published

COMPARED_BY_DEFAULT = ("last-touch", "linear", "time-decay", "position-based", "ihc")


@dataclass(frozen=True)
class StoredReport:
    """What ``attribution report`` did: the files it wrote and the report's totals per channel, or with
    ``--compare-models`` only every stored model's credit per channel (``paths`` empty)."""

    paths: dict[str, str | Path]
    channels: pl.DataFrame | None = None
    comparison: pl.DataFrame | None = None


def export_report(compare_models: bool = False, **flags: object) -> StoredReport:
    """Export the stored channel report (made to count ``report_model`` first, when given), or with
    ``compare_models`` compare every stored model's credit instead."""
    from attribution.pipeline.settings import load_settings
    from attribution.pipeline.steps import export_files, report_context, switch_report
    from attribution.reporting.model_comparison import channel_totals, compare_stored_models

    settings = load_settings(**flags)
    with settings.open_warehouse() as engine:
        if compare_models:
            with engine.connect() as conn:
                return StoredReport({}, comparison=compare_stored_models(conn))
        if settings.model.report_model is not None:
            switch_report(settings, engine)
        with engine.connect() as conn:
            context = report_context(conn, compare="html" in settings.output.formats)
            return StoredReport(export_files(settings, conn, context), channels=channel_totals(conn))


def compare_models(
    models: list[str] | None, value: str, split: str = "journey", **flags: object
) -> tuple[str, pl.DataFrame]:
    """Channel ``value`` (credit or revenue) by model over the range under ``split`` (``SPLITS``), nothing
    stored: the range and the frame, one column per model."""
    from attribution.pipeline.comparison import compare_models_on_range
    from attribution.pipeline.settings import load_settings

    settings = load_settings(**flags)
    return str(settings.time_range), compare_models_on_range(
        settings, models or list(COMPARED_BY_DEFAULT), value, split
    )


def publish_tableau(**flags: object) -> Published:
    """Publish the Hyper extract in ``out`` to Tableau, replacing the project's data source of that name."""
    from attribution.pipeline.settings import load_settings
    from attribution.pipeline.steps import publish_to_tableau

    return publish_to_tableau(load_settings(**flags))
