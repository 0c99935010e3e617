"""The journeys frame: the columns ``journeys`` produces and every model consumes.

Why a module of its own, below both: models are pure and may not import the journey SQL's module to learn
the shape of what it hands them.
"""

from __future__ import annotations

import polars as pl

JOURNEY_SCHEMA: dict[str, pl.DataType] = {
    "conv_id": pl.String(),
    "conv_ts": pl.String(),
    "revenue": pl.Float64(),
    "session_id": pl.String(),
    "timestamp": pl.String(),
    "channel_name": pl.String(),
    "holder_engagement": pl.Int8(),
    "closer_engagement": pl.Int8(),
    "impression_interaction": pl.Int8(),
}
"""Columns of a journeys frame; ``journeys.build_journeys`` adds ``conversion`` (1 on each journey's last session)."""
