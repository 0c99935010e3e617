"""Paths for models that learn from non-conversions too (Markov, Shapley): null paths and converting paths.

A null path is the sessions of one user who never converted (no conversion at all, in or outside the
range), cut by the journeys' rules: only sessions in the time range (an open range keeps all), without
impression-only sessions when those are dropped, and with ``lookback_days`` keeping only the last N days
before the user's last such session, as a journey keeps the last N days before its conversion.

Why SQL in pages of users: the warehouse filters and cuts the paths (served by the index on user and
time), and keyset pages of ``chunk_users`` users bound the memory of each fetch.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
from sqlalchemy import Connection, Engine, text

from attribution.journeys import JourneyOptions, build_journeys
from attribution.models.path_model import PATH_SCHEMA, journey_paths
from attribution.timerange import TimeRange
from attribution.warehouse.bulk import fetch_frame
from attribution.warehouse.dialects import Profile, profile_of
from attribution.warehouse.input_checks import skip_filters

DEFAULT_CHUNK_USERS = 50_000

_NULL_PATHS_SQL = """
WITH page AS (
    SELECT DISTINCT s.user_id
    FROM session_sources s
    WHERE s.user_id > :after
      AND s.user_id NOT IN (SELECT user_id FROM conversions WHERE user_id IS NOT NULL)
      {filters}
    ORDER BY s.user_id
    LIMIT :chunk
),
sessions AS (
    SELECT s.user_id AS path_id, s.event_date || ' ' || s.event_time AS timestamp, s.session_id, s.channel_name
    FROM session_sources s
    JOIN page ON page.user_id = s.user_id
    WHERE 1 = 1 {filters}
),
cut AS (
    SELECT path_id, timestamp, session_id, channel_name, MAX(timestamp) OVER (PARTITION BY path_id) AS last_ts
    FROM sessions
)
SELECT path_id, timestamp, session_id, channel_name
FROM cut
{lookback}
ORDER BY path_id, timestamp, session_id
"""

_FILTERS = "AND s.event_date || ' ' || s.event_time >= :range_start AND s.event_date || ' ' || s.event_time < :range_end"


def null_paths_sql(profile: Profile, options: JourneyOptions) -> str:
    """The page query for a warehouse; only fixed fragments are inserted, every value is bound."""
    filters = _FILTERS + (" AND s.impression_interaction = 0" if options.drop_impressions else "")
    if options.skip_bad_rows:
        filters += skip_filters(profile)[1]
    lookback = (
        f"WHERE timestamp >= {profile.days_before('last_ts', options.lookback_days)}"
        if options.lookback_days
        else ""
    )
    return _NULL_PATHS_SQL.format(filters=filters, lookback=lookback)


def iter_null_paths(
    engine: Engine | Connection,
    time_range: TimeRange = TimeRange(),
    options: JourneyOptions = JourneyOptions(),
    chunk_users: int = DEFAULT_CHUNK_USERS,
) -> Iterator[pl.DataFrame]:
    """Yield the null paths (``PATH_SCHEMA``, ``path_id`` = user id) a page of ``chunk_users`` users at a time."""
    statement = text(null_paths_sql(profile_of(engine), options))
    range_start, range_end = time_range.sql_bounds()
    params = {"range_start": range_start, "range_end": range_end, "chunk": chunk_users}
    after = ""
    while True:
        page = fetch_frame(engine, statement, {**params, "after": after}, PATH_SCHEMA)
        if page.is_empty():
            return
        yield page
        if page["path_id"].n_unique() < chunk_users:
            return
        after = page["path_id"][-1]


def build_null_paths(
    engine: Engine | Connection,
    time_range: TimeRange = TimeRange(),
    options: JourneyOptions = JourneyOptions(),
    chunk_users: int = DEFAULT_CHUNK_USERS,
) -> pl.DataFrame:
    """Every null path (see the module docstring) as one frame, ordered by user, time and session id."""
    return pl.concat(
        [pl.DataFrame(schema=PATH_SCHEMA), *iter_null_paths(engine, time_range, options, chunk_users)]
    )


def build_conversion_paths(
    engine: Engine | Connection,
    time_range: TimeRange = TimeRange(),
    options: JourneyOptions = JourneyOptions(),
) -> pl.DataFrame:
    """The converting paths of the range's journeys (``path_id`` = conversion id), to train a model once
    for a whole run rather than on each chunk of journeys it attributes."""
    chunks = [journey_paths(chunk.journeys) for chunk in build_journeys(engine, time_range, options)]
    return pl.concat([pl.DataFrame(schema=PATH_SCHEMA), *chunks])
