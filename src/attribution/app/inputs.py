"""The commands over the input tables: check them, copy them to another database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from attribution.warehouse.input_checks import CheckResult


@dataclass(frozen=True)
class CheckReport:
    """``attribution check``'s answer: per date of the data's last week what looks missing (or ``landed``),
    and every input check's result over the whole database."""

    safe_db: str
    freshness: dict[str, list[str]]
    results: list[CheckResult]

    @property
    def failing(self) -> list[CheckResult]:
        return [result for result in self.results if result.count]


def check_inputs(**flags: object) -> CheckReport:
    """Every input check over the whole database, and the freshness of its last week (information: today's
    date of a live warehouse is always still landing)."""
    from attribution.pipeline.settings import load_settings
    from attribution.warehouse.freshness import days_of, find_stale, last_week
    from attribution.warehouse.input_checks import run_checks
    from attribution.warehouse.schema import validate_inputs

    settings = load_settings(**flags)
    with settings.open_warehouse() as engine:
        validate_inputs(engine)
        results = run_checks(engine)
        week = last_week(engine)
        stale = find_stale(engine, week)
    freshness = {
        day: [found.reason for found in stale if found.date == day] or ["landed"] for day in days_of(week)
    }
    return CheckReport(settings.warehouse.safe_db, freshness, results)


def copy_inputs(
    source: str, target: str, on_progress: Callable[[str, int, int], None], **mapping: object
) -> tuple[dict[str, int], str]:
    """Copy the three input tables into ``target`` (Redshift by COPY when ``ATTRIBUTION_REDSHIFT_COPY_URL``
    and ``_IAM_ROLE`` are set); with a source mapping (``mapping``'s ``source_mapping`` or ``ATTRIBUTION_SOURCE_MAPPING``)
    the tables it names, under the same names, so the same mapping reads the copy. The rows per table and
    the target as it may be shown."""
    from attribution.pipeline.settings import load_settings
    from attribution.warehouse.copy_db import copy_inputs as copy
    from attribution.warehouse.copy_mapped import copy_mapped_inputs
    from attribution.warehouse.engine import redact_url
    from attribution.warehouse.source_mapping import DEFAULT_MAPPING

    settings = load_settings(**mapping)
    sources = settings.warehouse.sources
    if sources != DEFAULT_MAPPING:
        return copy_mapped_inputs(source, target, sources, on_progress=on_progress), redact_url(target)
    copied = copy(source, target, on_progress=on_progress, redshift_copy=settings.redshift_copy)
    return copied, redact_url(target)
