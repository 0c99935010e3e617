"""Customer journeys: for each conversion in a range, the same user's sessions strictly before it.

Why SQL: the join runs inside the warehouse, served by an index on (user, time), so only journey rows
ever leave the database. Why chunks: conversions are paged by keyset (time, id), so memory is bounded
by the chunk size, not by the size of the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
from sqlalchemy import Connection, Engine, text

from attribution.errors import ConfigError
from attribution.timerange import TimeRange
from attribution.vocabulary import JOURNEY_SCHEMA, in_build_order
from attribution.warehouse.bulk import fetch_frame
from attribution.warehouse.input_checks import range_params, skip_filters
from attribution.warehouse.schema import indexed_by_user
from attribution.warehouse.sources import Sources, sources_of

DEFAULT_CHUNK_CONVERSIONS = 20_000
MAX_CHUNK_CONVERSIONS = 10_000_000
MAX_LOOKBACK_DAYS = 36_500
"""A century: what every warehouse computes from any stored time (SQLite's ``datetime(ts, '-N days')`` is NULL
before year 0, which would leave every conversion without sessions)."""


@dataclass(frozen=True)
class JourneyOptions:
    """How journeys are cut: an optional lookback window and whether impression-only sessions count."""

    lookback_days: int | None = None
    drop_impressions: bool = False
    only_unattributed: bool = False
    """Leave out conversions that already hold credit of ``credit_label`` (a resumed remote run sends only
    the rest; credit of another model or conversion type does not count)."""
    credit_label: tuple[str, str] = ("", "")
    """The model and conversion type whose stored credit ``only_unattributed`` counts."""
    skip_bad_rows: bool = False
    """Leave out the conversions and sessions a skippable input check finds bad (``--on-bad-rows skip``)."""

    def __post_init__(self) -> None:
        if self.lookback_days is not None and not 1 <= self.lookback_days <= MAX_LOOKBACK_DAYS:
            raise ConfigError(
                f"Bad lookback_days {self.lookback_days}: expected 1 to {MAX_LOOKBACK_DAYS} days"
            )


@dataclass(frozen=True)
class JourneyChunk:
    """One page of conversions: the journeys of those that have sessions, and how many had none."""

    journeys: pl.DataFrame
    conversions: int
    without_sessions: int


_CHUNK_SQL = """
WITH conv AS (
    SELECT conv_id, user_id, conv_date, conv_time, revenue
    FROM {conversions}
    WHERE conv_date || ' ' || conv_time >= :range_start
      AND conv_date || ' ' || conv_time < :range_end{conversion_dates}
      AND {after_last}
      {unattributed}{skip_conversions}
    ORDER BY conv_date, conv_time, conv_id
    LIMIT :chunk
)
SELECT {conv_id}, c.conv_date || ' ' || c.conv_time AS conv_ts, c.revenue,
       {session_id}, s.event_date || ' ' || s.event_time AS timestamp, s.channel_name,
       s.holder_engagement, s.closer_engagement, s.impression_interaction
FROM conv c
LEFT JOIN {sessions}
       ON {journey_sessions}
ORDER BY c.conv_date, c.conv_time, c.conv_id, s.event_date, s.event_time, s.session_id
"""

_UNATTRIBUTED = (
    "AND NOT EXISTS (SELECT 1 FROM attribution_customer_journey a WHERE a.conv_id = conversions.conv_id "
    "AND a.model = :credit_model AND a.conv_type_id = :credit_conv_type)"
)


_JOURNEY_SESSIONS = """s.user_id = c.user_id
      AND {before_conversion}
      {lookback}{impressions}{skip_sessions}"""


def journey_sql(sources: Sources, options: JourneyOptions, *, dated: bool = False) -> str:
    """The chunk query for a warehouse's inputs; only fixed fragments and quoted names are inserted, every
    value is bound. ``dated``: a bounded range, whose first and last date it also binds (``:first_date``,
    ``:last_date``), so that a typed date or timestamp column's index serves the range
    (``Sources.day_range``)."""
    journey_sessions, skip_conversions = journey_cut(sources, options, dated=dated)
    dates = sources.day_range("conversions", "conversions", ":first_date", ":last_date") if dated else ""
    return _CHUNK_SQL.format(
        conversions=sources.relation("conversions"),
        conversion_dates=dates,
        sessions=sources.relation("session_sources", "s"),
        conv_id=sources.text_item("conversions", "conv_id", "c"),
        session_id=sources.text_item("session_sources", "session_id", "s"),
        after_last=sources.profile.compare(
            ">", ("conv_date", "conv_time", "conv_id"), (":after_date", ":after_time", ":after_id")
        ),
        unattributed=_UNATTRIBUTED if options.only_unattributed else "",
        skip_conversions=skip_conversions,
        journey_sessions=journey_sessions,
    )


def journey_cut(sources: Sources, options: JourneyOptions, *, dated: bool = False) -> tuple[str, str]:
    """How ``options`` cut journeys, as two SQL fragments: the join condition of a conversion ``c``'s
    sessions ``s``, and an ``AND`` filter of the table ``conversions`` (the bad rows ``skip`` leaves out;
    it binds ``:range_start`` and ``:range_end``, with ``dated`` also ``:first_date`` and ``:last_date``).
    Shared with the fingerprint of a date's journeys (``reporting.report_inputs``), so both read the same
    sessions."""
    profile, conv_ts, days = sources.profile, "c.conv_date || ' ' || c.conv_time", options.lookback_days
    stored = sources.stored_moment("session_sources", "s")
    if stored is None:
        session, conversion = ("s.event_date", "s.event_time"), ("c.conv_date", "c.conv_time")
        since = f"s.event_date || ' ' || s.event_time >= {profile.days_before(conv_ts, days or 0)}"
    else:  # the sessions' typed columns, against the conversion's whole second
        session, conversion = stored.columns, stored.of("c.conv_date", "c.conv_time")
        since = f"{stored.instant} >= {stored.days_before(conv_ts, days or 0)}"
    lookback = f"AND {since}" if days else ""
    skip_conversions, skip_sessions = (
        skip_filters(sources, dated=dated) if options.skip_bad_rows else ("", "")
    )
    journey_sessions = _JOURNEY_SESSIONS.format(
        before_conversion=profile.compare("<", session, conversion),
        lookback=lookback,
        impressions="AND s.impression_interaction = 0" if options.drop_impressions else "",
        skip_sessions=skip_sessions,
    )
    return journey_sessions, skip_conversions


def build_journeys(
    engine: Engine | Connection,
    time_range: TimeRange = TimeRange(),
    options: JourneyOptions = JourneyOptions(),
    chunk_conversions: int = DEFAULT_CHUNK_CONVERSIONS,
) -> Iterator[JourneyChunk]:
    """Yield the journeys of the conversions in ``time_range``, a chunk of conversions at a time.

    Rows are ordered by conversion time and id, then session time and id; ``conversion`` is 1 on the
    last session of each journey. Conversions without an earlier session are counted, not yielded.
    """
    statement = text(journey_sql(sources_of(engine), options, dated=time_range.is_bounded))
    hash_joins = not indexed_by_user(engine)
    params = {**range_params(time_range), "chunk": chunk_conversions}
    if options.only_unattributed:
        params |= dict(zip(("credit_model", "credit_conv_type"), options.credit_label, strict=True))
    after = ("", "", "")
    while True:
        bounds = {"after_date": after[0], "after_time": after[1], "after_id": after[2]}
        rows = fetch_frame(engine, statement, {**params, **bounds}, JOURNEY_SCHEMA, hash_joins=hash_joins)
        if rows.is_empty():
            return
        chunk = _to_chunk(rows)
        yield chunk
        if chunk.conversions < chunk_conversions:
            return
        last = rows.row(-1, named=True)
        after = (last["conv_ts"][:10], last["conv_ts"][11:], last["conv_id"])


def _to_chunk(rows: pl.DataFrame) -> JourneyChunk:
    conversions = rows["conv_id"].n_unique()
    journeys = in_build_order(rows.filter(pl.col("session_id").is_not_null())).with_columns(
        conversion=(pl.int_range(pl.len()).over("conv_id") == pl.len().over("conv_id") - 1).cast(pl.Int8)
    )
    return JourneyChunk(
        journeys=journeys,
        conversions=conversions,
        without_sessions=conversions - journeys["conv_id"].n_unique(),
    )
