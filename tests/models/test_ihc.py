"""The local IHC engine: the contract, the API's documented shapes, and hand-computed values."""

from __future__ import annotations

import math

import polars as pl
import pytest

from attribution.journeys import build_journeys
from attribution.models import IHC, IHCParameters
from attribution.models.curves import Surface, TimeCurve
from attribution.warehouse.engine import connect
from tests.models.test_contract import AttributorContract, one_journey

SIMPLE = IHCParameters(
    initializer_weight=0.5,
    holder_weight=0.3,
    closer_weight=0.2,
    initializer=TimeCurve(knots=(12.0, 48.0), values=(0.0, 1.0)),
    closer=TimeCurve(knots=(1.0, 100.0), values=(1.0, 0.0)),
    holder=Surface(initializer_knots=(0.0, 1.0), closer_knots=(0.0, 1.0), values=((1.0, 0.0), (0.0, 0.0))),
    channel_weights={},
)
"""Round numbers to compute by hand: time curves linear in log-hours, holder (1 - I)(1 - C)."""


def renamed_weights(params: IHCParameters, mapping: dict[str, str]) -> IHCParameters:
    """``params`` with its channel weights keyed by the renamed channels."""
    weights = {
        phase: {mapping.get(channel, channel): w for channel, w in by_channel.items()}
        for phase, by_channel in params.channel_weights.items()
    }
    return params.model_copy(update={"channel_weights": weights})


class TestIHC(AttributorContract):
    model = IHC()

    def relabelled_model(self, mapping):
        return IHC(renamed_weights(self.model.parameters, mapping))

    def test_the_defaults_weigh_direct_traffic_differently_in_every_phase(self):
        assert set(IHCParameters().channel_weights) == {"initializer", "holder", "closer"}
        assert all(set(w) == {"Direct Traffic"} for w in IHCParameters().channel_weights.values())

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

    def test_three_sessions_match_the_hand_computed_values(self):
        # Gaps 24 h and 48 h: initializer curve ln(24/12)/ln(4) = 0.5 and 1 -> raw 1, 0.5, 1.
        # Times to the conversion session (the last, as the service measures: it never sees the conversion's
        # own time, 2023-09-10 here) 72 h, 48 h, 0 h: closer curve 1 - ln(t)/ln(100), 1 below its first knot.
        frame = IHC(SIMPLE).attribute(
            one_journey("2023-09-06 00:00:00", "2023-09-07 00:00:00", "2023-09-09 00:00:00")
        )
        raw_closer = [1 - math.log(hours) / math.log(100) for hours in (72, 48)] + [1.0]
        initializer = [1 / 2.5, 0.5 / 2.5, 1 / 2.5]
        closer = [c / sum(raw_closer) for c in raw_closer]
        raw_holder = [(1 - i) * (1 - c) for i, c in zip(initializer, closer, strict=True)]
        holder = [h / sum(raw_holder) for h in raw_holder]
        expected = [0.5 * i + 0.3 * h + 0.2 * c for i, h, c in zip(initializer, holder, closer, strict=True)]
        assert frame["initializer"].to_list() == pytest.approx(initializer)
        assert frame["closer"].to_list() == pytest.approx(closer)
        assert frame["holder"].to_list() == pytest.approx(holder)
        assert frame["ihc"].to_list() == pytest.approx(expected)

    def test_without_holder_mass_the_weights_are_rescaled_over_two_phases(self):
        journey = one_journey("2023-09-08 00:00:00", "2023-09-09 00:00:00").with_columns(
            holder_engagement=pl.lit(0, pl.Int8)
        )
        frame = IHC(SIMPLE).attribute(journey)
        assert frame["holder"].sum() == 0
        assert frame["ihc"].to_list() == pytest.approx(
            [(0.5 * a + 0.2 * b) / 0.7 for a, b in zip(frame["initializer"], frame["closer"], strict=True)]
        )

    def test_channel_weights_shift_credit_toward_the_heavier_channel(self):
        journey = one_journey(
            "2023-09-08 00:00:00", "2023-09-09 00:00:00", channels=("Referral", "Direct Traffic")
        )
        plain = IHC().attribute(journey)["ihc"][0]
        weighted = IHC(IHCParameters(channel_weights={"closer": {"Referral": 3.0}})).attribute(journey)[
            "ihc"
        ][0]
        assert weighted > plain

    def test_parameters_reject_non_positive_weights(self):
        with pytest.raises(ValueError, match="greater than 0"):
            IHCParameters(closer_weight=0)


@pytest.mark.parametrize("group", [1, 7, 50])
def test_a_journeys_credit_does_not_depend_on_the_journeys_attributed_with_it(source_db, group):
    """Before, ``ihc`` combined the phases in one Polars expression whose last bit could change with the
    other journeys of the frame: a daily run and a whole-range run stored different credit for a journey."""
    engine = connect(str(source_db))
    try:
        journeys = pl.concat([chunk.journeys for chunk in build_journeys(engine)])
    finally:
        engine.dispose()
    model = IHC()
    together = model.attribute(journeys)
    ids = journeys["conv_id"].unique().shuffle(seed=group).to_list()
    apart = pl.concat(
        model.attribute(journeys.filter(pl.col("conv_id").is_in(ids[start : start + group])))
        for start in range(0, len(ids), group)
    )
    keys = ["conv_id", "session_id"]
    assert together.sort(keys).equals(apart.sort(keys))
