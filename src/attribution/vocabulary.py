"""The project's words for its frames, each defined once: journeys, their orders, credit and its phases.

Why one module below every layer that uses them: the journey SQL, the models, the IHC API and the stores
must agree on a column's name, a frame's shape and what an order means; a copy per layer drifted (two
tolerances for the same answers, three credit schemas under one name). Pure Polars: models may import it.
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
"""Columns of a journeys frame: what ``journeys.build_journeys`` produces and every model consumes."""

BUILT_JOURNEY_SCHEMA: dict[str, pl.DataType] = {**JOURNEY_SCHEMA, "conversion": pl.Int8()}
"""A journeys frame as ``build_journeys`` yields it: ``conversion`` is 1 on each journey's last session."""

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
"""Text timestamps as the warehouse stores them (UTC), the journeys frame holds them and the IHC API takes them."""

BUILD_ORDER = ("conv_ts", "conv_id", "timestamp", "session_id")
"""The order ``build_journeys`` yields rows in: journeys by conversion time, then sessions by time, each in
byte order as SQLite sorts text. Why not the warehouse's ORDER BY: it follows its collation (PostgreSQL's
``en_US`` puts ``a_b`` before ``aB``), which would change the order of sessions that share a timestamp, and
with it which one a position-based model credits."""


def in_build_order(journeys: pl.DataFrame) -> pl.DataFrame:
    """``journeys`` sorted by ``BUILD_ORDER``, whatever order the warehouse returned."""
    return journeys.sort(BUILD_ORDER, nulls_last=False)


def in_journey_order(journeys: pl.DataFrame) -> pl.DataFrame:
    """Sessions grouped by conversion, by time then id within each journey: what models read positions from.

    Weaker than ``BUILD_ORDER``: the journeys may come in any order. A frame already so (as
    ``build_journeys`` yields it) is returned as it is; any other is sorted by conversion, time and id.
    """
    return grouped_in_time_order(journeys, "conv_id")


def grouped_in_time_order(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """``frame`` with each ``key``'s rows together, ordered by ``timestamp`` then ``session_id``.

    Why check before sorting: checking takes a few element-wise passes, while sorting a million journeys
    by three text keys is most of a simple model's time, and frames usually arrive in this order. Keys are
    counted by their hashes (four times faster than the texts): distinct hashes mean distinct keys, and a
    collision only costs a needless sort.
    """
    same = pl.col(key) == pl.col(key).shift(1)
    ts, session = pl.col("timestamp"), pl.col("session_id")
    backwards = same & ((ts < ts.shift(1)) | ((ts == ts.shift(1)) & (session <= session.shift(1))))
    heads = ~same.fill_null(False)
    runs, groups, disordered = frame.select(
        runs=heads.sum(), groups=pl.col(key).filter(heads).hash().n_unique(), disordered=backwards.any()
    ).row(0)
    if runs == groups and not disordered:
        return frame
    return frame.sort(key, "timestamp", "session_id")


PATH_SCHEMA: dict[str, pl.DataType] = {
    "path_id": pl.String(),
    "timestamp": pl.String(),
    "session_id": pl.String(),
    "channel_name": pl.String(),
}
"""One row per session of a path (a journey, or a non-converting user's sessions)."""


def empty_paths() -> pl.DataFrame:
    """A paths frame without rows (no null paths known)."""
    return pl.DataFrame(schema=PATH_SCHEMA)


def journey_paths(journeys: pl.DataFrame) -> pl.DataFrame:
    """The converting paths of a journeys frame: each journey's sessions."""
    return journeys.select(pl.col("conv_id").alias("path_id"), "timestamp", "session_id", "channel_name")


PHASES = ("initializer", "holder", "closer")
"""The IHC phases: each journey's initializer and closer values sum to 1, its holder values to 1 or 0."""

CREDIT_VALUES = ("ihc", *PHASES)
"""The values an IHC credit row carries: the session's credit, then its phase values."""

CREDIT_SCHEMA: dict[str, pl.DataType] = {
    "conv_id": pl.String(),
    "session_id": pl.String(),
    "ihc": pl.Float64(),
}
"""Credit as every model returns it: one row per journey session, summing to 1 per conversion."""

IHC_CREDIT_SCHEMA: dict[str, pl.DataType] = {
    **CREDIT_SCHEMA,
    **{column: pl.Float64() for column in PHASES},
}
"""Credit with the IHC phases, as the IHC API client hands it on (the journeys frame's key names)."""

STORED_CREDIT_SCHEMA: dict[str, pl.DataType] = {
    **CREDIT_SCHEMA,
    "model": pl.String(),
    "conv_type_id": pl.String(),
    **{column: pl.Float64() for column in PHASES},
    "event_date": pl.String(),
    "channel_name": pl.String(),
}
"""Credit as the credit table stores it, in its column order: labelled with the model and conversion type
that made it, the phases where the model gives them (null otherwise), and the session's date and channel."""

ANSWER_SUM_TOLERANCE = 1e-4
"""How far an IHC answer's journey total of a phase or of ``ihc`` may be from 1 (the holder's also from 0).

Why one unit of the 4th decimal: the service answers 4-decimal values whose totals stay exactly 1 (largest
remainder; the real answers in ``tests/fixtures`` sum to 1 within 1e-16), so float summation is all the
slack an answer needs, and a total off by a whole unit is not the service's answer. Both validators of
answers (the client's, ``ihc_api.answers``, and calibration's, ``models.ihc_answers``) use it."""
