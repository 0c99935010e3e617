"""Last touch and linear: the contract, plus hand-computed cases."""

from __future__ import annotations

import pytest

from attribution.models import LastTouch, Linear
from tests.models.test_contract import AttributorContract, one_journey

THREE = one_journey("2023-09-01 10:00:00", "2023-09-02 10:00:00", "2023-09-02 10:00:00")


class TestLastTouch(AttributorContract):
    model = LastTouch()

    def test_all_credit_goes_to_the_latest_session_ties_broken_by_id(self):
        assert self.model.attribute(THREE)["ihc"].to_list() == [0.0, 0.0, 1.0]


class TestLinear(AttributorContract):
    model = Linear()

    def test_every_session_gets_an_equal_share(self):
        assert self.model.attribute(THREE)["ihc"].to_list() == pytest.approx([1 / 3] * 3)
