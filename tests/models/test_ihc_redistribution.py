"""Redistribution in the local engine: exactly the listed channels' phase credit moves, in the allowed direction."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.models import IHC, validate_credits
from attribution.models.ihc import redistribute
from attribution.models.redistribution import RedistributionParameter, RedistributionRule
from attribution.vocabulary import PHASES
from tests.models.test_contract import CHANNELS, CONTRACT, AttributorContract, journeys, one_journey
from tests.models.test_ihc import renamed_weights

DIRECT = "Direct Traffic"
JOURNEY = one_journey(
    "2023-09-06 00:00:00",
    "2023-09-07 00:00:00",
    "2023-09-08 00:00:00",
    "2023-09-09 12:00:00",
    channels=("Referral", DIRECT, "Paid Search Brand", DIRECT),
)


def rule(direction: str, threshold: float = 0.0, labels: tuple[str, ...] = (DIRECT,)) -> RedistributionRule:
    return RedistributionRule(
        direction=direction, receive_threshold=threshold, redistribution_channel_labels=list(labels)
    )


def closer_values(parameter: RedistributionParameter | None) -> list[float]:
    return IHC(redistribution=parameter).attribute(JOURNEY)["closer"].to_list()


BEFORE = closer_values(None)


def test_earlier_sessions_only_hands_each_direct_sessions_closer_credit_to_earlier_sessions():
    # s1 (Direct) can give only to s0; s3 (Direct) gives to s0 and s2 in proportion to their own values.
    after = closer_values(RedistributionParameter(closer=rule("earlier_sessions_only")))
    b0, b1, b2, b3 = BEFORE
    expected = [b0 + b1 + b3 * b0 / (b0 + b2), 0.0, b2 + b3 * b2 / (b0 + b2), 0.0]
    assert after == pytest.approx(expected, abs=1e-12)


def test_later_sessions_only_moves_credit_forward_and_the_last_direct_session_keeps_its_own():
    after = closer_values(RedistributionParameter(closer=rule("later_sessions_only")))
    b0, b1, b2, b3 = BEFORE
    assert after == pytest.approx([b0, 0.0, b2 + b1, b3], abs=1e-12)


def test_sessions_at_or_below_the_receive_threshold_receive_nothing():
    b0, _, b2, _ = BEFORE
    threshold = (b0 + b2) / 2  # s0 is far from the conversion: below it; s2 is above
    assert b0 < threshold < b2
    after = closer_values(RedistributionParameter(closer=rule("any_session", threshold)))
    assert after[0] == pytest.approx(b0, abs=1e-12)
    assert after[1] == after[3] == 0.0


def test_the_credit_moved_away_is_reported_per_channel_and_phase():
    engine = IHC(redistribution=RedistributionParameter(closer=rule("earlier_sessions_only")))
    engine.attribute(JOURNEY)
    assert engine.last_redistributed.rows() == [(DIRECT, "closer", pytest.approx(BEFORE[1] + BEFORE[3]))]


def test_without_rules_nothing_is_reported_moved():
    engine = IHC()
    engine.attribute(JOURNEY)
    assert engine.last_redistributed.is_empty()


def test_the_engine_and_the_servers_redistribute_agree():
    parameter = RedistributionParameter(closer=rule("earlier_sessions_only"), holder=rule("any_session", 0.1))
    engine = IHC(redistribution=parameter).attribute(JOURNEY)
    server = redistribute(IHC().attribute(JOURNEY), JOURNEY, parameter, IHC().parameters)
    assert engine.equals(server)


@settings(CONTRACT, max_examples=40)
@given(
    frame=journeys(),
    direction=st.sampled_from(["earlier_sessions_only", "later_sessions_only", "any_session"]),
    phase=st.sampled_from(PHASES),
    labels=st.sets(st.sampled_from(CHANNELS), min_size=1, max_size=2),
    threshold=st.sampled_from([0.0, 0.2]),
)
def test_only_listed_channels_lose_credit_and_only_in_the_allowed_direction(
    frame, direction, phase, labels, threshold
):
    engine = IHC(redistribution=RedistributionParameter(**{phase: rule(direction, threshold, tuple(labels))}))
    after = engine.attribute(frame).rename({phase: "after"})
    both = (
        IHC()
        .attribute(frame)
        .select("conv_id", "session_id", before=phase)
        .join(after, on=["conv_id", "session_id"])
        .join(
            frame.select("conv_id", "session_id", "channel_name", "timestamp"), on=["conv_id", "session_id"]
        )
    )
    change = pl.col("after") - pl.col("before")
    listed = pl.col("channel_name").is_in(sorted(labels))
    kept_or_gave_all = (pl.col("after") == 0) | ((pl.col("after") - pl.col("before")).abs() < 1e-12)
    assert both.filter(listed).select(kept_or_gave_all.all()).item() in (True, None)
    assert (both.filter(~listed).select(change.min()).item() or 0.0) >= -1e-12
    sums = both.group_by("conv_id").agg(pl.col("before").sum(), pl.col("after").sum())
    assert (sums["before"] - sums["after"]).abs().max() < 1e-12
    moved = both.filter(listed).select((pl.col("before") - pl.col("after")).sum()).item()
    assert engine.last_redistributed["credit_moved"].sum() == pytest.approx(moved, abs=1e-12)
    validate_credits(frame, after.rename({"after": phase}), tolerance=1e-9)
    if direction != "any_session":
        _assert_direction(both, listed, direction)


def _assert_direction(both: pl.DataFrame, listed: pl.Expr, direction: str) -> None:
    """Every gaining session has a donor that gave something on the allowed side of it."""
    ordered = both.sort("conv_id", "timestamp", "session_id").with_columns(
        position=pl.int_range(pl.len()).over("conv_id"),
        gave=listed & (pl.col("after") < pl.col("before") - 1e-12),
    )
    donors = ordered.filter("gave").select("conv_id", donor="position")
    gainers = ordered.filter(pl.col("after") > pl.col("before") + 1e-12).select("conv_id", "position")
    pairs = gainers.join(donors, on="conv_id")
    allowed = (
        pl.col("position") < pl.col("donor")
        if direction == "earlier_sessions_only"
        else pl.col("position") > pl.col("donor")
    )
    served = pairs.filter(allowed).select("conv_id", "position").unique()
    assert served.height == gainers.height


class TestIHCWithRedistribution(AttributorContract):
    model = IHC(redistribution=RedistributionParameter(closer=rule("earlier_sessions_only")))

    def relabelled_model(self, mapping):
        return IHC(
            renamed_weights(self.model.parameters, mapping),
            redistribution=RedistributionParameter(
                closer=rule("earlier_sessions_only", labels=(mapping[DIRECT],))
            ),
        )
