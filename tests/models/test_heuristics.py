"""First touch, last non-direct, time decay and position based: the contract, plus hand-computed cases."""

from __future__ import annotations

import pytest

from attribution.errors import ConfigError
from attribution.models import FirstTouch, LastNonDirect, PositionBased, TimeDecay
from tests.models.test_contract import AttributorContract, one_journey

THREE = one_journey("2023-09-01 10:00:00", "2023-09-02 10:00:00", "2023-09-02 10:00:00")
FOUR = one_journey("2023-09-01 00:00:00", "2023-09-02 00:00:00", "2023-09-03 00:00:00", "2023-09-04 00:00:00")


def credit(model, journey) -> list[float]:
    return model.attribute(journey)["ihc"].to_list()


class TestFirstTouch(AttributorContract):
    model = FirstTouch()

    def test_all_credit_goes_to_the_earliest_session(self):
        assert credit(self.model, THREE) == [1.0, 0.0, 0.0]


class TestLastNonDirect(AttributorContract):
    model = LastNonDirect()

    def relabelled_model(self, mapping):
        return LastNonDirect({mapping[channel] for channel in self.model.direct_channels})

    def test_direct_sessions_after_the_last_other_session_are_skipped(self):
        journey = one_journey(
            *FOUR["timestamp"], channels=("Referral", "FB & IG Ads", "Direct Traffic", "Direct Traffic")
        )
        assert credit(self.model, journey) == [0.0, 1.0, 0.0, 0.0]

    def test_a_journey_of_only_direct_sessions_credits_its_last_session(self):
        journey = one_journey(*THREE["timestamp"], channels=("Direct Traffic",) * 3)
        assert credit(self.model, journey) == [0.0, 0.0, 1.0]

    def test_the_direct_channels_are_configurable(self):
        journey = one_journey(
            *THREE["timestamp"], channels=("Referral", "Paid Search Brand", "Direct Traffic")
        )
        model = LastNonDirect({"Direct Traffic", "Paid Search Brand"})
        assert credit(model, journey) == [1.0, 0.0, 0.0]


class TestTimeDecay(AttributorContract):
    model = TimeDecay()

    def test_a_session_one_half_life_earlier_weighs_half(self):
        # Sessions 72 h, 48 h, 24 h and 0 h before the last; half-life 24 h: weights 1/8, 1/4, 1/2, 1 over 15/8.
        got = credit(TimeDecay(half_life_hours=24), FOUR)
        assert got == pytest.approx([1 / 15, 2 / 15, 4 / 15, 8 / 15], abs=1e-12)

    def test_the_default_half_life_is_seven_days(self):
        # 24 h apart with a 168 h half-life: each weight is 2^(1/7) times the one before.
        ratio = 2 ** (1 / 7)
        weights = [ratio**i for i in range(4)]
        assert credit(self.model, FOUR) == pytest.approx([w / sum(weights) for w in weights], abs=1e-12)

    def test_journeys_far_older_than_the_half_life_do_not_underflow(self):
        journey = one_journey("2020-01-01 00:00:00", "2023-09-01 00:00:00")
        assert credit(TimeDecay(half_life_hours=1), journey) == [0.0, 1.0]

    @pytest.mark.parametrize("bad", [0, -1.0])
    def test_a_half_life_must_be_positive(self, bad):
        with pytest.raises(ConfigError, match="half-life"):
            TimeDecay(half_life_hours=bad)


class TestPositionBased(AttributorContract):
    model = PositionBased()

    def test_first_and_last_get_forty_percent_and_the_middle_shares_twenty(self):
        assert credit(self.model, FOUR) == pytest.approx([0.4, 0.1, 0.1, 0.4], abs=1e-12)

    def test_two_sessions_split_fifty_fifty_whatever_the_weights(self):
        journey = one_journey("2023-09-01 00:00:00", "2023-09-02 00:00:00")
        assert credit(PositionBased(first=0.3, middle=0.1, last=0.6), journey) == [0.5, 0.5]

    def test_the_weights_are_configurable(self):
        got = credit(PositionBased(first=0.3, middle=0.1, last=0.6), FOUR)
        assert got == pytest.approx([0.3, 0.05, 0.05, 0.6], abs=1e-12)

    @pytest.mark.parametrize("weights", [(0.5, 0.5, 0.5), (0.6, -0.2, 0.6)])
    def test_weights_must_be_non_negative_and_sum_to_one(self, weights):
        with pytest.raises(ConfigError, match="summing to 1"):
            PositionBased(*weights)
