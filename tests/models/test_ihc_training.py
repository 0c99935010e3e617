"""IHC training: known parameters recovered from journeys generated with them, and the vendor's guidance."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from attribution.errors import InputError
from attribution.models import IHC, IHCParameters
from attribution.models.ihc_training import (
    PHASE_WEIGHT_BOUNDS,
    QUANTILES,
    TrainingDataWarning,
    train_ihc,
    training_sessions,
)
from attribution.vocabulary import JOURNEY_SCHEMA
from tests.models.test_contract import CHANNELS, AttributorContract, one_journey

CONVERTED_AT = np.datetime64("2024-06-01T00:00:00", "s")


def log_logistic(rng: np.random.Generator, median: float, shape: float, size: int) -> np.ndarray:
    """Draws whose CDF is x^k / (x^k + median^k): the engine's membership function."""
    u = rng.random(size)
    return median * (u / (1 - u)) ** (1 / shape)


def synthetic_journeys(
    n: int, gap_hours: float, closer_hours: float, shape: float, seed: int = 0, opener: str | None = None
) -> pl.DataFrame:
    """Journeys of 2 to 6 sessions: gaps between sessions and the last session's time to the conversion
    are log-logistic with the given medians and shape; only the last session is closer-eligible."""
    rng = np.random.default_rng(seed)
    journey = np.repeat(np.arange(n), rng.integers(2, 7, n))
    last = np.r_[journey[1:] != journey[:-1], True]
    first = np.r_[True, journey[:-1] != journey[1:]]
    gaps = np.where(first, 0.0, log_logistic(rng, gap_hours, shape, journey.size))
    elapsed = np.cumsum(gaps)
    to_conversion = log_logistic(rng, closer_hours, shape, n)[journey] + elapsed[last][journey] - elapsed
    channels = rng.choice(["Referral", "Direct Traffic", "Paid Search Brand"], journey.size)
    if opener:
        channels = np.where(first, opener, channels)
    timestamps = CONVERTED_AT - (to_conversion * 3600).astype("timedelta64[s]")
    return (
        pl.DataFrame(
            {
                "conv_id": journey.astype(str),
                "conv_ts": "2024-06-01 00:00:00",
                "revenue": 10.0,
                "session_id": np.arange(journey.size).astype(str),
                "timestamp": np.datetime_as_string(timestamps, unit="s"),
                "channel_name": channels,
                "holder_engagement": 1,
                "closer_engagement": 0,
                "impression_interaction": 0,
                "conversion": last.astype(np.int8),
            }
        )
        .with_columns(pl.col("timestamp").str.replace("T", " "))
        .cast({**JOURNEY_SCHEMA, "conversion": pl.Int8})
    )


@pytest.mark.parametrize(("gap", "closer", "shape"), [(24.0, 6.0, 2.0), (72.0, 2.0, 3.0)])
def test_training_recovers_the_gap_and_closer_medians_and_the_shape(gap, closer, shape):
    # 20,000 journeys: the curves pass through the medians within 5 %; the quartile knots give the shape
    # (log-logistic quartiles are median * 3^(-+1/k)) within 10 %.
    params = train_ihc(synthetic_journeys(20_000, gap, closer, shape))
    for curve, median in ((params.initializer, gap), (params.closer, closer)):
        assert curve.values[QUANTILES.index(0.5)] == pytest.approx(0.5)
        assert curve.knots[QUANTILES.index(0.5)] == pytest.approx(median, rel=0.05)
        q1, q3 = curve.knots[QUANTILES.index(0.25)], curve.knots[QUANTILES.index(0.75)]
        assert 2 * math.log(3) / math.log(q3 / q1) == pytest.approx(shape, rel=0.10)


def test_phase_weights_sum_to_one_and_stay_within_the_clipping_range():
    params = train_ihc(synthetic_journeys(20_000, 24.0, 6.0, 2.0))
    weights = [params.initializer_weight, params.holder_weight, params.closer_weight]
    assert sum(weights) == pytest.approx(1)
    low, high = PHASE_WEIGHT_BOUNDS
    assert max(weights) / min(weights) <= high / low + 1e-9


def test_a_channel_that_opens_every_journey_weighs_more_as_initializer_and_less_as_closer():
    params = train_ihc(synthetic_journeys(20_000, 24.0, 6.0, 2.0, opener="Newsletter & Email"))
    assert params.channel_weights["initializer"]["Newsletter & Email"] > 1.2
    assert params.channel_weights["closer"]["Newsletter & Email"] < 0.9


def test_a_rare_channel_is_shrunk_toward_one_more_than_a_common_channel_in_the_same_role():
    common = synthetic_journeys(20_000, 24.0, 6.0, 2.0, opener="Opener")
    rare = synthetic_journeys(3, 24.0, 6.0, 2.0, seed=1, opener="Rare Opener").with_columns(
        pl.concat_str(pl.lit("r"), "conv_id").alias("conv_id"),
        pl.concat_str(pl.lit("r"), "session_id").alias("session_id"),
    )
    weights = train_ihc(pl.concat([common, rare])).channel_weights["initializer"]
    assert 1 < weights["Rare Opener"] < weights["Opener"]
    assert weights["Rare Opener"] - 1 < (weights["Opener"] - 1) / 10


def test_a_huge_shrinkage_leaves_every_channel_weight_at_one():
    params = train_ihc(synthetic_journeys(20_000, 24.0, 6.0, 2.0, opener="Opener"), shrinkage=1e12)
    for weights in params.channel_weights.values():
        assert weights == pytest.approx(dict.fromkeys(weights, 1.0), abs=1e-6)


def test_sessions_over_120_days_before_the_conversion_and_then_single_sessions_are_not_trained_on():
    old_then_recent = one_journey("2023-05-12 23:00:00", "2023-09-01 00:00:00", "2023-09-02 00:00:00")
    old_then_single = one_journey("2023-05-01 00:00:00", "2023-09-09 00:00:00").with_columns(
        conv_id=pl.lit("d")
    )
    kept = training_sessions(pl.concat([old_then_recent, old_then_single]))
    assert kept["session_id"].to_list() == ["s1", "s2"]


def test_fewer_journeys_than_the_vendor_recommends_give_a_warning():
    with pytest.warns(TrainingDataWarning, match="recommends at least 15,000"):
        train_ihc(synthetic_journeys(500, 24.0, 6.0, 2.0))


@pytest.mark.filterwarnings("ignore::attribution.models.ihc_training.TrainingDataWarning")
def test_the_initializer_rises_and_the_closer_falls_with_the_session_times():
    params = train_ihc(synthetic_journeys(2_000, 24.0, 6.0, 2.0))
    assert list(params.initializer.values) == sorted(params.initializer.values)
    assert list(params.closer.values) == sorted(params.closer.values, reverse=True)


def test_journeys_with_nothing_to_train_on_are_refused():
    with pytest.raises(InputError, match="two or more sessions"):
        train_ihc(one_journey("2023-09-01 00:00:00"))


TRAINED = IHCParameters(
    channel_weights={
        "initializer": {"Referral": 1.4, "Direct Traffic": 0.6},
        "closer": {"Paid Search Brand": 1.3, "FB & IG Ads": 0.8},
    }
)


class TestTrainedIHC(AttributorContract):
    """The engine with per-channel weights: renaming channels renames the weights' keys too."""

    model = IHC(TRAINED)

    def relabelled_model(self, mapping):
        weights = {
            phase: {mapping[channel]: w for channel, w in by_channel.items()}
            for phase, by_channel in TRAINED.channel_weights.items()
        }
        return IHC(TRAINED.model_copy(update={"channel_weights": weights}))

    def test_the_weights_cover_only_contract_channels(self):
        assert {c for w in TRAINED.channel_weights.values() for c in w} <= set(CHANNELS)
