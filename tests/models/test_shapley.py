"""Shapley values: the contract, a hand-computed example, and exact values against brute-force enumeration."""

from __future__ import annotations

import itertools
from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.errors import ConfigError
from attribution.models import Shapley
from attribution.vocabulary import journey_paths
from tests.models.path_cases import (
    CONTRACT_NULLS,
    CONVERSIONS,
    NULLS,
    by_session,
    journeys_frame,
    paths_frame,
)
from tests.models.test_contract import AttributorContract, relabel


def brute_force(
    conversions: dict[str, tuple[str, ...]], nulls: dict[str, tuple[str, ...]]
) -> dict[str, float]:
    """Shapley values by definition: the mean marginal contribution over every order of the channels."""
    sets = [(frozenset(c), 1) for c in conversions.values()] + [(frozenset(c), 0) for c in nulls.values()]
    channels = sorted(set().union(*(s for s, _ in sets)))

    def value(coalition: frozenset[str]) -> F:
        inside = [converted for channels_of_path, converted in sets if channels_of_path <= coalition]
        return F(sum(inside), len(inside)) if inside else F(0)

    total = dict.fromkeys(channels, F(0))
    orders = list(itertools.permutations(channels))
    for order in orders:
        for i, channel in enumerate(order):
            total[channel] += value(frozenset(order[: i + 1])) - value(frozenset(order[:i]))
    return {channel: float(v / len(orders)) for channel, v in total.items()}


class TestShapley(AttributorContract):
    model = Shapley(CONTRACT_NULLS)

    def relabelled_model(self, mapping):
        return Shapley(relabel(CONTRACT_NULLS, mapping))

    def test_values_of_the_worked_example(self):
        # Channel sets: {A,B} conv, {A} conv, {B,C} conv, {A,C} null, {C} null. v = conversion rate of the
        # paths inside the coalition: v(A) = 1, v(B) = 0, v(C) = 0, v(AB) = 1, v(AC) = 1/3, v(BC) = 1/2, v(ABC) = 3/5.
        # phi(A) = 1/3·1 + 1/6·(1 - 0) + 1/6·(1/3 - 0) + 1/3·(3/5 - 1/2) = 53/90
        # phi(B) = 1/3·0 + 1/6·(1 - 1) + 1/6·(1/2 - 0) + 1/3·(3/5 - 1/3) = 31/180
        # phi(C) = 1/3·0 + 1/6·(1/3 - 1) + 1/6·(1/2 - 0) + 1/3·(3/5 - 1) = -29/180   (sum: 3/5 = v(ABC))
        values = Shapley(NULLS).channel_scores(journey_paths(CONVERSIONS))
        expected = {"A": F(53, 90), "B": F(31, 180), "C": F(-29, 180)}
        assert values == pytest.approx({k: float(v) for k, v in expected.items()}, abs=1e-12)

    def test_a_negative_value_gets_no_credit(self):
        # c1 (A, B): 53/90 : 31/180 = 106 : 31.  c3 (B, C): C is negative, so B takes it all.
        credits = by_session(Shapley(NULLS).attribute(CONVERSIONS))
        expected = {"c1s0": 106 / 137, "c1s1": 31 / 137, "c2s0": 1.0, "c3s0": 1.0, "c3s1": 0.0}
        assert credits == pytest.approx(expected, abs=1e-12)

    def test_a_journey_of_channels_without_positive_value_is_split_linearly(self):
        trained = Shapley(NULLS, conversion_paths=journey_paths(CONVERSIONS))
        assert by_session(trained.attribute(journeys_frame({"x": ("C", "Z")}))) == {"xs0": 0.5, "xs1": 0.5}

    @settings(max_examples=40, deadline=None)
    @given(
        paths=st.lists(
            st.tuples(st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=4), st.booleans()),
            min_size=1,
            max_size=8,
        ).filter(lambda paths: any(converted for _, converted in paths))
    )
    def test_exact_values_equal_brute_force_enumeration(self, paths):
        conversions = {f"c{i}": tuple(p) for i, (p, converted) in enumerate(paths) if converted}
        nulls = {f"n{i}": tuple(p) for i, (p, converted) in enumerate(paths) if not converted}
        model = Shapley(paths_frame(nulls))
        got = model.channel_scores(journey_paths(journeys_frame(conversions)))
        assert got == pytest.approx(brute_force(conversions, nulls), abs=1e-12)

    def test_beyond_the_exact_limit_sampled_orders_approach_the_exact_values(self):
        sampled = Shapley(NULLS, exact_max_channels=2, samples=4000, seed=7)
        got = sampled.channel_scores(journey_paths(CONVERSIONS))
        assert got == pytest.approx(
            brute_force(dict(c1="AB", c2="A", c3="BC"), dict(n1="AC", n2="C")), abs=0.02
        )

    def test_sampling_is_repeatable_for_a_seed(self):
        def values(seed: int) -> dict[str, float]:
            model = Shapley(NULLS, exact_max_channels=0, samples=50, seed=seed)
            return model.channel_scores(journey_paths(CONVERSIONS))

        assert values(1) == values(1) != values(2)

    def test_more_channels_than_a_bitmask_holds_are_refused(self):
        many = journeys_frame({"c": tuple(f"ch{i:02d}" for i in range(63))})
        with pytest.raises(ConfigError, match="at most 62 channels"):
            Shapley().attribute(many)
