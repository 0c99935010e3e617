"""The local IHC engine: the contract, the API's documented shapes, and hand-computed values."""

from __future__ import annotations

import polars as pl
import pytest

from attribution.models import IHC, IHCParameters
from tests.models.test_contract import AttributorContract, one_journey


class TestIHC(AttributorContract):
    model = IHC()

    def test_a_one_session_journey_gets_initializer_1_holder_0_closer_1(self):
        row = self.model.attribute(one_journey("2023-09-01 10:00:00")).row(0, named=True)
        assert (row["initializer"], row["holder"], row["closer"], row["ihc"]) == (1.0, 0.0, 1.0, 1.0)

    def test_each_phase_sums_to_one_or_holder_to_zero(self):
        frame = self.model.attribute(
            one_journey("2023-09-01 10:00:00", "2023-09-03 10:00:00", "2023-09-09 23:00:00")
        )
        assert frame["initializer"].sum() == pytest.approx(1)
        assert frame["closer"].sum() == pytest.approx(1)
        assert frame["holder"].sum() == pytest.approx(1)

    def test_two_sessions_match_the_hand_computed_values(self):
        # gap 24 h -> m_I = 0.5; times to conversion 48 h and 24 h -> m_C = 0.2 and 0.5; holder (1-m_I)(1-m_C).
        frame = self.model.attribute(one_journey("2023-09-08 00:00:00", "2023-09-09 00:00:00"))
        initializer = [1 / 1.5, 0.5 / 1.5]
        closer = [0.2 / 0.7, 0.5 / 0.7]
        holder = [0.0, 1.0]
        expected = [(i + h + c) / 3 for i, h, c in zip(initializer, holder, closer, strict=True)]
        assert frame["initializer"].to_list() == pytest.approx(initializer)
        assert frame["closer"].to_list() == pytest.approx(closer)
        assert frame["ihc"].to_list() == pytest.approx(expected)

    def test_without_holder_mass_the_weights_are_rescaled_over_two_phases(self):
        journey = one_journey("2023-09-08 00:00:00", "2023-09-09 00:00:00").with_columns(
            holder_engagement=pl.lit(0, pl.Int8)
        )
        frame = self.model.attribute(journey)
        assert frame["holder"].sum() == 0
        assert frame["ihc"].to_list() == pytest.approx(
            [(a + b) / 2 for a, b in zip(frame["initializer"], frame["closer"], strict=True)]
        )

    def test_channel_weights_shift_credit_toward_the_heavier_channel(self):
        journey = one_journey(
            "2023-09-08 00:00:00", "2023-09-09 00:00:00", channels=("Referral", "Direct Traffic")
        )
        plain = IHC().attribute(journey)["ihc"][0]
        weighted = IHC(IHCParameters(channel_weights={"initializer": {"Referral": 3.0}})).attribute(journey)[
            "ihc"
        ][0]
        assert weighted > plain

    def test_parameters_reject_non_positive_weights(self):
        with pytest.raises(ValueError, match="greater than 0"):
            IHCParameters(closer_weight=0)
