"""Training the local IHC engine for one conversion type, following the vendor's published guidance.

Why these estimators: the vendor learns its membership functions from the quantiles of the session times.
So the initializer curve is the empirical distribution of the gaps between sessions, through knots at its
quantiles (a later session's initializer value is the share of gaps shorter than its own), and the closer
curve the share of closer-eligible sessions farther from the conversion than the session. The holder is
what neither starts nor closes: ``(1 - I)(1 - C)`` of the session's shares. No service answer is used: to
reproduce the service's numbers, calibrate on its answers instead (``ihc_calibration``).

Guidance applied: sessions more than 120 days before the conversion are dropped, one-session journeys
(after that cut) are not trained on, and fewer than 15,000 journeys give a ``TrainingDataWarning``.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl

from attribution.errors import ConfigError, InputError
from attribution.models.base import JOURNEY, hours_between, parse_timestamp
from attribution.models.curves import Surface, TimeCurve
from attribution.models.ihc import IHCParameters, phase_values, timed_sessions
from attribution.vocabulary import PHASES

MAX_DAYS_BEFORE_CONVERSION = 120
RECOMMENDED_JOURNEYS = 15_000
CHANNEL_SHRINKAGE = 200.0
"""``k``: a channel's weight is ``(n · raw + k · 1) / (n + k)`` over its ``n`` sessions: 200 sessions = half-way."""
QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
"""Where the trained time curves have their knots: these quantiles of the training times."""
NEITHER_STARTS_NOR_CLOSES = Surface(
    initializer_knots=(0.0, 1.0), closer_knots=(0.0, 1.0), values=((1.0, 0.0), (0.0, 0.0))
)
"""The trained holder surface, ``(1 - I)(1 - C)``: bilinear, so exact on its four corners."""
PHASE_WEIGHT_BOUNDS = (0.25, 0.45)
"""Raw phase shares are clipped to this range, then normalised: no phase weighs more than 1.8 times another."""


class TrainingDataWarning(UserWarning):
    """The training data is thinner than the vendor recommends; the parameters may be noisy."""


def train_ihc(
    journeys: pl.DataFrame,
    *,
    shrinkage: float = CHANNEL_SHRINKAGE,
    max_days: float = MAX_DAYS_BEFORE_CONVERSION,
    recommended_journeys: int = RECOMMENDED_JOURNEYS,
) -> IHCParameters:
    """Learn ``IHCParameters`` from a journeys frame (``attribution.journeys.JOURNEY_SCHEMA`` + ``conversion``).

    Raises ``InputError`` when no journey of two or more sessions remains to train on.
    """
    if not shrinkage > 0:
        raise ConfigError(f"Bad channel shrinkage {shrinkage!r}: expected a number of sessions above 0")
    sessions = training_sessions(journeys, max_days)
    count = sessions["conv_id"].n_unique()
    if count == 0:
        raise InputError(
            "No journey of two or more sessions within 120 days of its conversion to train IHC on"
        )
    if count < recommended_journeys:
        warnings.warn(
            f"Training IHC on {count:,} journeys of two or more sessions; the vendor recommends at least {recommended_journeys:,}",
            TrainingDataWarning,
            stacklevel=2,
        )
    eligible = sessions.filter(pl.col("closer_eligible"))["hours_to_conversion"]
    timing = IHCParameters(
        initializer=quantile_curve(sessions["gap_hours"], rising=True),
        closer=quantile_curve(eligible, rising=False),
        holder=NEITHER_STARTS_NOR_CLOSES,
        channel_weights={},
    )
    phases = phase_values(sessions, timing)
    weights = dict(zip(PHASES, phase_weights(phases), strict=True))
    return timing.model_copy(
        update={
            **{f"{phase}_weight": weight for phase, weight in weights.items()},
            "channel_weights": channel_weights(phases, shrinkage),
        }
    )


def training_sessions(journeys: pl.DataFrame, max_days: float = MAX_DAYS_BEFORE_CONVERSION) -> pl.DataFrame:
    """The sessions training uses: within ``max_days`` of the conversion, of journeys still two sessions long."""
    age = hours_between(parse_timestamp("conv_ts"), parse_timestamp("timestamp"))
    recent = journeys.filter(age <= max_days * 24)
    return timed_sessions(recent, to_conversion_time=True).filter(pl.col("length") >= 2)


def quantile_curve(values: pl.Series, *, rising: bool) -> TimeCurve:
    """The empirical distribution of the positive ``values`` through knots at its ``QUANTILES``: rising, the
    share of values below ``x``; else the share above. Ties at 0 (sessions at the same second) carry no timing.

    Raises ``InputError`` when fewer than two distinct knots remain (every time tied).
    """
    known = values.drop_nulls()
    positive = known.filter(known > 0).to_numpy()
    knots, last = (
        np.unique(np.quantile(positive, QUANTILES), return_index=True) if positive.size else ([], [])
    )
    if len(knots) < 2:
        raise InputError(
            f"No spread of positive {values.name} in the training journeys: every session time is tied"
        )
    levels = np.array(QUANTILES)[last]
    return TimeCurve(knots=tuple(knots.tolist()), values=tuple((levels if rising else 1 - levels).tolist()))


def phase_weights(phases: pl.DataFrame) -> tuple[float, float, float]:
    """Phase weights proportional to how long each phase lasts, clipped to ``PHASE_WEIGHT_BOUNDS``.

    Each interval (a session to the next one, or the last session to the conversion) is shared among
    the phases in proportion to the starting session's raw memberships.
    """
    following_gap = pl.when(pl.col(JOURNEY) == pl.col(JOURNEY).shift(-1)).then(pl.col("gap_hours").shift(-1))
    interval = pl.coalesce(following_gap, pl.col("hours_to_conversion"))
    raw = [pl.col(f"raw_{phase}") for phase in PHASES]
    total = pl.sum_horizontal(raw)
    durations = phases.select(
        pl.when(total > 0).then(interval * share / total).otherwise(0.0).sum().alias(phase)
        for phase, share in zip(PHASES, raw, strict=True)
    ).row(0)
    shares = np.array(durations) / sum(durations) if sum(durations) > 0 else np.full(3, 1 / 3)
    clipped = np.clip(shares, *PHASE_WEIGHT_BOUNDS)
    return tuple((clipped / clipped.sum()).tolist())


def channel_weights(
    phases: pl.DataFrame, shrinkage: float = CHANNEL_SHRINKAGE
) -> dict[str, dict[str, float]]:
    """Per phase, each channel's mean phase value relative to all sessions', shrunk toward 1 for few sessions."""
    by_channel = phases.group_by("channel_name").agg(pl.len().alias("n"), *(pl.col(p).mean() for p in PHASES))
    weights: dict[str, dict[str, float]] = {}
    for phase in PHASES:
        overall = phases[phase].mean()
        if not overall:
            continue
        shrunk = (pl.col("n") * pl.col(phase) / overall + shrinkage) / (pl.col("n") + shrinkage)
        table = by_channel.sort("channel_name").select("channel_name", shrunk.alias("weight"))
        weights[phase] = dict(table.iter_rows())
    return weights
