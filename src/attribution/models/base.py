"""The ``Attributor`` interface: journeys in, per-session credit out, and the checks every model must pass.

Why a checker outside the models: the invariant (each conversion's credit is non-negative and sums to
1 over exactly its sessions) is what makes the report's numbers true, so it is verified before any
write, whichever model, local or remote, produced the credit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

import polars as pl

from attribution.errors import IntegrityError
from attribution.vocabulary import TIMESTAMP_FORMAT, in_journey_order

CREDIT_TOLERANCE = 1e-6
"""Largest allowed distance of a conversion's credit total from 1 (remote answers are rounded)."""


class Attributor(ABC):
    """Turns a journeys frame (see ``attribution.vocabulary.JOURNEY_SCHEMA``) into per-session credit.

    Implementations are pure: no I/O, the same input gives the same output whatever its row order.
    """

    name: ClassVar[str]

    @abstractmethod
    def attribute(self, journeys: pl.DataFrame) -> pl.DataFrame:
        """Return one row per journey session: ``conv_id``, ``session_id``, ``ihc`` (extra columns allowed)."""


def position_columns(key: str = "conv_id") -> list[pl.Expr]:
    """Zero-based position and length of each session within its journey (frame in journey order).

    Why element-wise: the row number minus the journey's first row number (carried forward) is one pass;
    ``int_range().over`` runs group by group and costs seconds on a million journeys.
    """
    row = pl.int_range(pl.len())
    first = (pl.col(key) != pl.col(key).shift(1)).fill_null(True)
    return [
        (row - pl.when(first).then(row).forward_fill()).alias("position"),
        pl.len().over(key).alias("length"),
    ]


def validate_credits(
    journeys: pl.DataFrame, credits: pl.DataFrame, tolerance: float = CREDIT_TOLERANCE
) -> None:
    """Raise ``IntegrityError`` unless credits cover exactly the journeys' sessions and sum to 1 each."""
    keys = ["conv_id", "session_id"]
    if credits.height != journeys.height or credits.select(keys).is_duplicated().any():
        raise IntegrityError(
            f"Model returned {credits.height} credit rows for {journeys.height} journey sessions"
        )
    missing = journeys.select(keys).join(credits.select(keys), on=keys, how="anti")
    if missing.height:
        raise IntegrityError(f"Model left {missing.height} sessions without credit, e.g. {missing.row(0)}")
    if credits["ihc"].is_null().any() or credits["ihc"].is_nan().any() or (credits["ihc"] < 0).any():
        raise IntegrityError("Model returned null, NaN or negative credit")
    sums = credits.group_by("conv_id").agg(pl.col("ihc").sum())
    bad = sums.filter((pl.col("ihc") - 1).abs() > tolerance)
    if bad.height:
        conv_id, total = bad.row(0)
        raise IntegrityError(f"Credit of conversion {conv_id} sums to {total:.6f}, not 1 ({bad.height} such)")


SCORE_FLOOR = 1e-12
"""Channel scores at or below this count as 0: equivalent float computations (e.g. on renamed channels)
differ by round-off, and round-off must not decide between a proportional and a linear split."""


def parse_timestamp(column: str) -> pl.Expr:
    """A text timestamp column of the journeys frame as a datetime (the warehouse stores UTC text).

    Why no cache: session times are nearly all distinct, and the cache halves the parsing speed.
    """
    return pl.col(column).str.to_datetime(TIMESTAMP_FORMAT, time_unit="ms", cache=False)


def hours_between(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    """Fractional hours from ``earlier`` to ``later``."""
    return (later - earlier).dt.total_seconds(fractional=True) / 3600


JOURNEY = "_journey"
"""Column of ``journey_frame``: the journey's number in frame order, the key of every window in the models.

Why not ``conv_id``: a window over a text key hashes every row; over this integer, increasing and known to
polars as sorted, it is a single pass (about 10 times faster on a million journeys)."""


def journey_frame(journeys: pl.DataFrame) -> pl.DataFrame:
    """Sessions in journey order with ``_journey`` (see ``JOURNEY``), ``position`` and ``length`` (Int64)."""
    ordered = in_journey_order(journeys).with_columns(pl.col("conv_id").rle_id().alias(JOURNEY))
    return ordered.with_columns(column.cast(pl.Int64) for column in position_columns(JOURNEY))


def previous_in_journey(expr: pl.Expr) -> pl.Expr:
    """``expr`` on the previous session of the same journey, null on a first session (a ``journey_frame``).

    Why a masked global shift: ``shift().over`` runs group by group and is slow on many small journeys.
    """
    return pl.when(pl.col(JOURNEY) == pl.col(JOURNEY).shift(1)).then(expr.shift(1))


def journey_totals(frame: pl.DataFrame, column: str) -> pl.Series:
    """``column``'s total over each row's journey, on every row (a frame with ``JOURNEY``; nulls count 0).

    Why numpy's ``bincount``: one pass over the rows, about seven times faster than ``sum().over``. Imported
    here: the models that never sum by journey (the rule-based ones) run without numpy.
    """
    import numpy as np

    journey = frame[JOURNEY].to_numpy()
    values = frame[column].cast(pl.Float64).fill_null(0.0).to_numpy()
    return pl.Series(column, np.bincount(journey, weights=values)[journey])


def normalised_credit(frame: pl.DataFrame, raw: pl.Expr) -> pl.DataFrame:
    """Credit rows of a ``journey_frame`` from non-negative raw weights with mass in every journey: ``raw / total``.

    Why ``raw`` is materialised first: a window over an expression that holds a window is evaluated
    group by group (tens of times slower); over a plain column it is one pass.
    """
    weighted = frame.with_columns(_raw=raw)
    return weighted.select("conv_id", "session_id", ihc=pl.col("_raw") / pl.col("_raw").sum().over(JOURNEY))


def credit_by_channel_score(frame: pl.DataFrame, scores: Mapping[str, float]) -> pl.DataFrame:
    """Split each journey of a ``journey_frame`` over its channels in proportion to their scores.

    The sessions of a channel share that channel's part equally; channels without a score, and scores
    up to ``SCORE_FLOOR`` (negative ones included), count 0. A journey whose channels all count 0 is
    split equally over its sessions (linear), so every conversion still sums to 1.
    """
    kept = {channel: score for channel, score in scores.items() if score > SCORE_FLOOR}
    score = pl.col("channel_name").replace_strict(kept, default=0.0, return_dtype=pl.Float64)
    # One integer key per (journey, channel): a window over it is twice as fast as over the two columns.
    channel = pl.col("channel_name").cast(pl.Categorical).to_physical().cast(pl.UInt64)
    keyed = frame.with_columns(_channel=pl.col(JOURNEY).cast(pl.UInt64) * (1 << 32) + channel)
    parts = keyed.with_columns(_part=score / pl.len().over("_channel"))
    total = pl.col("_part").sum().over(JOURNEY)  # over a plain column: see normalised_credit
    ihc = pl.when(total > 0).then(pl.col("_part") / total).otherwise(1.0 / pl.col("length"))
    return parts.select("conv_id", "session_id", ihc=ihc)
