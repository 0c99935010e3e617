"""A run's policy for bad input rows: stop before writing anything (``error``), or leave the rows a check
may skip out of journeys and count them (``skip``).

Why a module of its own: the checks (``input_checks``) say which rows are bad for any caller (a run,
``attribution check``); what a run does about them, and what it tells the user, is decided here once for
both runners.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, Engine, text

from attribution.errors import BadRowsError
from attribution.timerange import TimeRange
from attribution.warehouse.input_checks import (
    CheckResult,
    connection,
    conversions_in_range,
    range_params,
    run_checks,
    skip_filters,
)
from attribution.warehouse.schema import indexed_by_user
from attribution.warehouse.sources import sources_of

Policy = Literal["error", "skip"]


@dataclass(frozen=True)
class Skipped:
    """What a run under ``skip`` leaves out of its journeys, and the checks that found it."""

    conversions: int = 0
    sessions: int = 0
    notes: tuple[str, ...] = ()


def enforce(engine: Engine, time_range: TimeRange, policy: Policy, *, null_paths: bool = False) -> Skipped:
    """Run the checks for a run over ``time_range``: under ``error`` any failing check stops it, under
    ``skip`` only those that cannot be skipped do (``BadRowsError``, one line naming the first of them);
    otherwise what the run will leave out of its journeys (and null paths: ``run_checks``)."""
    results = run_checks(engine, time_range, null_paths=null_paths, hash_joins=not indexed_by_user(engine))
    failing = [result for result in results if result.count]
    refused = [r for r in failing if policy == "error" or not r.check.skippable]
    if refused:
        raise BadRowsError(_refusal(refused))
    if not failing:
        return Skipped()
    conversions, sessions = skipped_rows(engine, time_range)
    return Skipped(conversions, sessions, tuple(f"Left out of journeys: {r.line()}" for r in failing))


def _refusal(refused: list[CheckResult]) -> str:
    """One line: the first refused check's table, count, name and ids, and what the user can do."""
    first = refused[0]
    if not first.check.skippable:
        advice = "this check cannot be skipped (the report reads these rows): fix them"
    else:
        advice = "fix them, or leave them out with --on-bad-rows skip (ATTRIBUTION_ON_BAD_ROWS=skip)"
    others = (
        f"; {len(refused) - 1} more failing check(s): see `attribution check`" if len(refused) > 1 else ""
    )
    return f"Bad input rows in {first.line()}; {advice}{others}"


def skipped_rows(bind: Engine | Connection, time_range: TimeRange) -> tuple[int, int]:
    """How many of the range's conversions and of their users' sessions ``skip_filters`` leaves out."""
    sources, params, dated = sources_of(bind), range_params(time_range), time_range.is_bounded
    conversion_filter, session_filter = skip_filters(sources, dated=dated)
    in_range = conversions_in_range(sources, "conversions", dated=dated)
    relation = sources.relation("conversions")
    users = f"SELECT conversions.user_id FROM {relation} WHERE {in_range}"
    conversions = f"SELECT COUNT(*) FROM {relation} WHERE {in_range} AND NOT (1 = 1{conversion_filter})"
    sessions = (
        f"SELECT COUNT(*) FROM {sources.relation('session_sources', 's')} "
        f"WHERE s.user_id IN ({users}) AND NOT (1 = 1{session_filter})"
    )
    with connection(bind) as conn:
        left_out = [int(conn.scalar(text(sql), params) or 0) for sql in (conversions, sessions)]
    return left_out[0], left_out[1]
