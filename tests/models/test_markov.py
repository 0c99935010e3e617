"""Markov removal effects: the contract for orders 1 to 3, and hand-solved chains checked to 1e-9."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import polars as pl
import pytest

from attribution.errors import ConfigError
from attribution.models import Markov, validate_credits
from attribution.models.path_model import global_credit
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


class MarkovContract(AttributorContract):
    def relabelled_model(self, mapping):
        return Markov(relabel(CONTRACT_NULLS, mapping), order=self.model.order)


class TestMarkovOrder1(MarkovContract):
    model = Markov(CONTRACT_NULLS, order=1)

    def test_removal_effects_of_the_worked_example(self):
        # Paths: c1 A>B conv, c2 A conv, c3 B>C conv, n1 A>C null, n2 C null. Transitions:
        #   start: A 3/5, B 1/5, C 1/5;  A: B 1/3, conv 1/3, C 1/3;  B: conv 1/2, C 1/2;  C: conv 1/3, null 2/3.
        # P(C) = 1/3, P(B) = 1/2 + 1/2·1/3 = 2/3, P(A) = 1/3·2/3 + 1/3 + 1/3·1/3 = 2/3,
        # P(start) = 3/5·2/3 + 1/5·2/3 + 1/5·1/3 = 3/5.
        # Without A: 1/5·2/3 + 1/5·1/3 = 1/5           -> RE(A) = 1 - (1/5)/(3/5) = 2/3
        # Without B: P(A) = 1/3 + 1/9 = 4/9; 3/5·4/9 + 1/5·1/3 = 1/3 -> RE(B) = 1 - 5/9 = 4/9
        # Without C: P(B) = 1/2, P(A) = 1/6 + 1/3 = 1/2; 3/5·1/2 + 1/5·1/2 = 2/5 -> RE(C) = 1/3
        effects = Markov(NULLS, order=1).channel_scores(journey_paths(CONVERSIONS))
        assert effects == pytest.approx({"A": 2 / 3, "B": 4 / 9, "C": 1 / 3}, abs=1e-9)

    def test_each_conversion_is_split_in_proportion_to_its_channels_removal_effects(self):
        # c1 (A, B): 2/3 : 4/9 = 3/5 : 2/5.  c3 (B, C): 4/9 : 1/3 = 4/7 : 3/7.
        credits = by_session(Markov(NULLS).attribute(CONVERSIONS))
        expected = {"c1s0": F(3, 5), "c1s1": F(2, 5), "c2s0": F(1), "c3s0": F(4, 7), "c3s1": F(3, 7)}
        assert credits == pytest.approx({k: float(v) for k, v in expected.items()}, abs=1e-9)

    def test_sessions_of_the_same_channel_share_its_part_equally(self):
        journeys = journeys_frame({"c1": ("A", "B", "A"), "c2": ("B",)})
        effects = Markov(NULLS).channel_scores(journey_paths(journeys))
        credits = by_session(Markov(NULLS).attribute(journeys))
        a_part = effects["A"] / (effects["A"] + effects["B"])
        assert credits["c1s0"] == credits["c1s2"] == pytest.approx(a_part / 2, abs=1e-12)

    def test_a_journey_whose_channels_have_no_removal_effect_is_split_linearly(self):
        # Trained without Y and Z, the model gives them no removal effect: A takes (A, Z) whole,
        # and (Z, Y, Z) falls back to a third per session.
        trained = Markov(NULLS, conversion_paths=journey_paths(CONVERSIONS))
        credits = by_session(trained.attribute(journeys_frame({"x": ("A", "Z"), "y": ("Z", "Y", "Z")})))
        assert credits == pytest.approx({"xs0": 1.0, "xs1": 0.0, "ys0": 1 / 3, "ys1": 1 / 3, "ys2": 1 / 3})

    def test_trained_on_conversion_paths_the_scores_do_not_depend_on_the_journeys_attributed(self):
        trained = Markov(NULLS, conversion_paths=journey_paths(CONVERSIONS))
        alone = trained.attribute(CONVERSIONS.filter(pl.col("conv_id") == "c1"))
        assert alone["ihc"].to_list() == pytest.approx([3 / 5, 2 / 5], abs=1e-9)

    def test_the_order_must_be_one_to_three(self):
        with pytest.raises(ConfigError, match="order 4"):
            Markov(NULLS, order=4)


class TestMarkovOrder2(MarkovContract):
    model = Markov(CONTRACT_NULLS, order=2)

    def test_removal_effects_remember_the_previous_channel(self):
        # States are the last two channels. start: (A) 3/5, (B) 1/5, (C) 1/5;  (A): (A,B) 1/3, conv 1/3,
        # (A,C) 1/3;  (A,B) -> conv;  (B) -> (B,C) -> conv;  (A,C) -> null;  (C) -> null.
        # P((A)) = 2/3, P((B)) = 1, P((C)) = 0, P(start) = 3/5·2/3 + 1/5 = 3/5.
        # Without A: 1/5 -> 2/3.  Without B: P((A)) = 1/3, 3/5·1/3 = 1/5 -> 2/3.
        # Without C: P((A)) = 2/3, P((B)) = 0, 3/5·2/3 = 2/5 -> 1/3.
        effects = Markov(NULLS, order=2).channel_scores(journey_paths(CONVERSIONS))
        assert effects == pytest.approx({"A": 2 / 3, "B": 2 / 3, "C": 1 / 3}, abs=1e-9)


class TestMarkovOrder3(MarkovContract):
    model = Markov(CONTRACT_NULLS, order=3)

    def test_paths_no_longer_than_the_order_give_the_order_2_effects_here(self):
        # No path is longer than 2 sessions, so a third remembered channel changes no state.
        effects = Markov(NULLS, order=3).channel_scores(journey_paths(CONVERSIONS))
        assert effects == pytest.approx({"A": 2 / 3, "B": 2 / 3, "C": 1 / 3}, abs=1e-9)


def thirty_channel_paths(n_paths: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Converting journeys and null paths of 1..8 sessions over 30 channels: well over 12,000 order-3 states."""
    rng = np.random.default_rng(seed)
    names = [f"ch{i:02d}" for i in range(30)]
    paths = [tuple(rng.choice(names, size=rng.integers(1, 9))) for _ in range(n_paths)]
    converts = rng.random(n_paths) < 0.3
    conversions = journeys_frame({f"c{i}": p for i, p in enumerate(paths) if converts[i]})
    return conversions, paths_frame({f"n{i}": p for i, p in enumerate(paths) if not converts[i]})


def test_order_3_solves_a_chain_of_30_channels():
    conversions, nulls = thirty_channel_paths(8000, seed=3)
    model = Markov(nulls, conversion_paths=journey_paths(conversions), order=3)
    effects = model.trained_scores
    assert len(effects) == 30 and all(0 < effect < 1 for effect in effects.values())
    validate_credits(conversions, model.attribute(conversions))


def test_the_global_split_gives_each_channel_its_share_of_all_removal_effects():
    # RE: A 2/3, B 4/9, C 1/3 (sum 13/9): A 6/13, B 4/13, C 3/13 of the 3 conversions.
    effects = Markov(NULLS).channel_scores(journey_paths(CONVERSIONS))
    expected = {"A": F(18, 13), "B": F(12, 13), "C": F(9, 13)}
    assert global_credit(effects, 3) == pytest.approx({k: float(v) for k, v in expected.items()}, abs=1e-12)


def test_the_global_split_of_paths_that_never_convert_is_zero():
    assert global_credit({"A": 0.0, "B": 0.0}, 0) == {"A": 0.0, "B": 0.0}
