"""Calibrating the local IHC engine on real_answers answers of the service: held-out fidelity, a round trip, bad answers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from attribution.errors import InputError
from attribution.models import IHC, IHCParameters
from attribution.models.ihc_answers import answer_journeys, check_answers
from attribution.models.ihc_calibration import calibrate, cross_validate, fidelity, journey_folds
from attribution.vocabulary import PHASES

HELD_OUT_IHC, HELD_OUT_PHASE, DEFAULTS_IHC = 0.002, 0.004, 0.002
"""The issue's bounds on the mean absolute error (sessions of journeys of two or more sessions)."""


def engine_answers(answers: pl.DataFrame, params: IHCParameters) -> pl.DataFrame:
    """``answers`` with the phases and ``ihc`` replaced by what the engine computes with ``params``."""
    credits = IHC(params).attribute(answer_journeys(check_answers(answers)))
    return answers.drop(*PHASES, "ihc").join(
        credits.rename({"conv_id": "conversion_id"}),
        on=["conversion_id", "session_id"],
        maintain_order="left",
    )


def test_fitted_on_half_the_journeys_the_engine_is_within_the_bounds_on_the_other_half(real_answers):
    fold = journey_folds(real_answers, 2, seed=0)
    fitted, held_out = real_answers.filter(fold == 0), real_answers.filter(fold == 1)
    assert set(fitted["conversion_id"]).isdisjoint(held_out["conversion_id"])
    error = fidelity(calibrate(fitted), held_out)
    assert error.sessions > 500
    assert error.ihc <= HELD_OUT_IHC
    assert max(error.initializer, error.holder, error.closer) <= HELD_OUT_PHASE


def test_the_shipped_defaults_are_within_the_bound_on_the_whole_file(real_answers):
    assert fidelity(IHCParameters(), real_answers).ihc <= DEFAULTS_IHC


def test_cross_validation_scores_every_multi_session_journey_within_the_bounds(real_answers):
    error = cross_validate(real_answers, folds=3)
    multi_sessions = real_answers.filter(pl.len().over("conversion_id") >= 2).height
    assert error.sessions == multi_sessions
    assert error.ihc <= HELD_OUT_IHC


def test_folds_never_split_a_journey(real_answers):
    folds = real_answers.with_columns(fold=journey_folds(real_answers, 5, seed=3))
    assert folds.group_by("conversion_id").agg(pl.col("fold").n_unique())["fold"].max() == 1
    assert folds["fold"].n_unique() == 5


def test_answers_made_by_the_engine_are_fitted_back_to_parameters_that_reproduce_them(real_answers):
    known = calibrate(real_answers)
    shifted = known.model_copy(
        update={
            "initializer_weight": 0.3,
            "holder_weight": 0.45,
            "closer_weight": 0.25,
            "channel_weights": {"initializer": {"Direct Traffic": 0.7}, "closer": {"Direct Traffic": 1.2}},
        }
    )
    made = engine_answers(real_answers, shifted)
    error = fidelity(calibrate(made), made)
    assert max(error.initializer, error.holder, error.closer, error.ihc) <= 1e-4


def test_ten_thousand_journeys_calibrate_back_to_answers_they_reproduce(real_answers):
    """Scale, without a clock: ten times the fixture's journeys fit as the fixture does (the time it takes is
    a benchmark's to measure, not a test's to assert on a busy machine)."""
    # Ten thousand journeys: the real_answers ones, repeated under new ids, their answers made by the engine.
    copies = -(-10_000 // real_answers["conversion_id"].n_unique())
    many = pl.concat(
        real_answers.with_columns(pl.col("conversion_id", "session_id") + f"-{copy}")
        for copy in range(copies)
    )
    made = engine_answers(many, IHCParameters())
    error = fidelity(calibrate(made), made)
    assert error.sessions > 10_000 and error.ihc <= 1e-4


def bad(real_answers: pl.DataFrame, **changes: pl.Expr) -> pl.DataFrame:
    return real_answers.with_columns(**changes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.drop("closer"), r"lack column\(s\) closer"),
        (lambda a: bad(a, holder_engagement=pl.lit(2)), r"row 1 \(journey .*flag other than 0 or 1"),
        (lambda a: bad(a, timestamp=pl.lit("2023/09/01")), r"row 1 .*timestamp not in"),
        (
            lambda a: bad(a, session_id=pl.lit("same")),
            r"row \d+ \(journey .*, session same\).*unknown session",
        ),
        (
            lambda a: bad(a, initializer=pl.col("initializer") / 2),
            r"journey .* initializer sums to 0\.5000, not 1",
        ),
        (lambda a: bad(a, holder=pl.lit(0.5)), r"journey .* holder sums to .*, not 1 or 0"),
    ],
)
def test_bad_answers_get_one_line_naming_the_row_or_journey(real_answers, change, message):
    with pytest.raises(InputError, match=message) as error:
        calibrate(change(real_answers))
    assert "\n" not in str(error.value)


def test_a_journey_without_holder_engagement_is_fine_with_holder_zero(real_answers):
    journey = real_answers.filter(pl.col("conversion_id") == real_answers["conversion_id"][0])
    assert check_answers(journey.with_columns(holder=pl.lit(0.0))).height == journey.height


def test_the_weights_are_fitted_only_for_the_channels_asked(real_answers):
    params = calibrate(real_answers, channels=())
    assert params.channel_weights == {}
    assert np.isclose(params.initializer_weight + params.holder_weight + params.closer_weight, 1)
