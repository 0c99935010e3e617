"""Paths for models that learn from non-conversions too (Markov, Shapley): null paths and converting paths.

A null path is the sessions of one user who never converted (no conversion at all, in or outside the
range), cut by the journeys' rules: only sessions in the time range (an open range keeps all), without
impression-only sessions when those are dropped, and with ``lookback_days`` keeping only the last N days
before the user's last such session, as a journey keeps the last N days before its conversion.

Why one streamed query: the warehouse filters and cuts the paths and the rows come through a server-side
cursor in frames (``stream_frames``), so memory follows the frames, not the table. Non-buyers are found by
an anti-join on the distinct buyers (a hash join, or a search of SQLite's automatic index on them), never by
a scan of one table per row of the other: the paged form joined each page of users to the sessions, which
without the user index grew with users times sessions.
"""

from __future__ import annotations

import polars as pl
from sqlalchemy import Connection, Engine, text

from attribution.journeys import JourneyOptions, build_journeys
from attribution.timerange import TimeRange
from attribution.vocabulary import PATH_SCHEMA, journey_paths
from attribution.warehouse.bulk import fetch_frame
from attribution.warehouse.input_checks import range_params, skip_filters
from attribution.warehouse.sources import Sources, sources_of

_NULL_PATHS_SQL = """
WITH buyers AS (
    SELECT DISTINCT user_id FROM {conversions} WHERE user_id IS NOT NULL
),
sessions AS (
    SELECT {user_id} AS path_id, s.event_date || ' ' || s.event_time AS timestamp, {session_id}, s.channel_name
    FROM {sessions}
    LEFT JOIN buyers b ON b.user_id = s.user_id
    WHERE b.user_id IS NULL AND s.user_id IS NOT NULL {filters}
){paths}
"""
_ALL_SESSIONS = """
SELECT path_id, timestamp, session_id, channel_name FROM sessions"""
_LAST_DAYS = """,
cut AS (
    SELECT path_id, timestamp, session_id, channel_name, MAX(timestamp) OVER (PARTITION BY path_id) AS last_ts
    FROM sessions
)
SELECT path_id, timestamp, session_id, channel_name
FROM cut
WHERE timestamp >= {since}"""

_FILTERS = "AND s.event_date || ' ' || s.event_time >= :range_start AND s.event_date || ' ' || s.event_time < :range_end"


def null_paths_sql(sources: Sources, options: JourneyOptions, *, dated: bool = False) -> str:
    """The query for a warehouse's inputs; only fixed fragments and quoted names are inserted, every value
    is bound. Unordered: the rows are sorted once they are read (``build_null_paths``), where sorting costs
    far less than in SQL. ``dated``: a bounded range, whose first and last date it also binds, so that a
    typed date or timestamp column's index serves it (``Sources.day_range``)."""
    profile = sources.profile
    filters = _FILTERS + (
        sources.day_range("session_sources", "s", ":first_date", ":last_date") if dated else ""
    )
    filters += " AND s.impression_interaction = 0" if options.drop_impressions else ""
    if options.skip_bad_rows:
        filters += skip_filters(sources)[1]
    paths = (
        _LAST_DAYS.format(since=profile.days_before("last_ts", options.lookback_days))
        if options.lookback_days
        else _ALL_SESSIONS
    )
    return _NULL_PATHS_SQL.format(
        conversions=sources.relation("conversions"),
        sessions=sources.relation("session_sources", "s"),
        user_id=sources.text_of("session_sources", "user_id", "s"),
        session_id=sources.text_item("session_sources", "session_id", "s"),
        filters=filters,
        paths=paths,
    )


def build_null_paths(
    engine: Engine | Connection,
    time_range: TimeRange = TimeRange(),
    options: JourneyOptions = JourneyOptions(),
) -> pl.DataFrame:
    """Every null path (see the module docstring) as one frame (``PATH_SCHEMA``, ``path_id`` = user id),
    ordered by user, time and session id."""
    statement = text(null_paths_sql(sources_of(engine), options, dated=time_range.is_bounded))
    params = range_params(time_range)
    paths = fetch_frame(engine, statement, params, PATH_SCHEMA, hash_joins=True)  # reads every such session
    return paths.sort("path_id", "timestamp", "session_id")  # byte order, on every warehouse


def build_conversion_paths(
    engine: Engine | Connection,
    time_range: TimeRange = TimeRange(),
    options: JourneyOptions = JourneyOptions(),
) -> pl.DataFrame:
    """The converting paths of the range's journeys (``path_id`` = conversion id), to train a model once
    for a whole run rather than on each chunk of journeys it attributes."""
    chunks = [journey_paths(chunk.journeys) for chunk in build_journeys(engine, time_range, options)]
    return pl.concat([pl.DataFrame(schema=PATH_SCHEMA), *chunks])
