"""The contract every model passes: credit per conversion sums to 1, never negative, deterministic,
independent of row order, and renaming the channels only renames them in the result.

Each model's own test module subclasses ``AttributorContract`` and sets ``model``; a model configured per
channel (a direct-channel set, null paths, channel weights) overrides ``relabelled_model``.
"""

from __future__ import annotations

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution.models import Attributor, validate_credits
from attribution.vocabulary import JOURNEY_SCHEMA

CHANNELS = ("Direct Traffic", "Paid Search Brand", "FB & IG Ads", "Referral")


@st.composite
def journeys(draw: st.DrawFn) -> pl.DataFrame:
    """A frame of 1..6 journeys of 1..8 sessions, times on a coarse grid (ties included)."""
    rows = []
    for c in range(draw(st.integers(1, 6))):
        hours = sorted(draw(st.lists(st.integers(0, 200), min_size=1, max_size=8)))
        for i, hour in enumerate(hours):
            rows.append(
                {
                    "conv_id": f"c{c}",
                    "conv_ts": "2023-09-10 00:00:00",
                    "revenue": 10.0,
                    "session_id": f"c{c}s{i}",
                    "timestamp": f"2023-09-0{1 + hour // 24} {hour % 24:02d}:00:00",
                    "channel_name": draw(st.sampled_from(CHANNELS)),
                    "holder_engagement": draw(st.integers(0, 1)),
                    "closer_engagement": draw(st.integers(0, 1)),
                    "impression_interaction": draw(st.integers(0, 1)),
                    "conversion": int(i == len(hours) - 1),
                }
            )
    return pl.DataFrame(rows, schema={**JOURNEY_SCHEMA, "conversion": pl.Int8})


def one_journey(*timestamps: str, channels: tuple[str, ...] = ()) -> pl.DataFrame:
    """A single journey whose sessions are at the given times (the last one converts)."""
    rows = [
        {
            "conv_id": "c",
            "conv_ts": "2023-09-10 00:00:00",
            "revenue": 10.0,
            "session_id": f"s{i}",
            "timestamp": ts,
            "channel_name": channels[i] if channels else "Referral",
            "holder_engagement": 1,
            "closer_engagement": 1,
            "impression_interaction": 0,
            "conversion": int(i == len(timestamps) - 1),
        }
        for i, ts in enumerate(timestamps)
    ]
    return pl.DataFrame(rows, schema={**JOURNEY_SCHEMA, "conversion": pl.Int8})


# Each subclass tests its own model through the same inherited methods: a safe case of differing executors.
CONTRACT = settings(deadline=None, suppress_health_check=[HealthCheck.differing_executors])


KEYS = ["conv_id", "session_id"]


def relabel(frame: pl.DataFrame, mapping: dict[str, str]) -> pl.DataFrame:
    """The frame with every channel renamed by ``mapping``."""
    return frame.with_columns(pl.col("channel_name").replace_strict(mapping))


class AttributorContract:
    model: Attributor

    def relabelled_model(self, mapping: dict[str, str]) -> Attributor:
        """The model configured as it would be for data whose channels were renamed by ``mapping``."""
        return self.model

    @settings(CONTRACT, max_examples=60)
    @given(frame=journeys())
    def test_credit_sums_to_one_per_conversion_and_is_never_negative(self, frame):
        validate_credits(frame, self.model.attribute(frame), tolerance=1e-9)

    @settings(CONTRACT, max_examples=30)
    @given(frame=journeys(), seed=st.integers(0, 2**16))
    def test_row_order_does_not_change_the_credit(self, frame, seed):
        expected = self.model.attribute(frame).sort("conv_id", "session_id")
        shuffled = self.model.attribute(frame.sample(fraction=1.0, shuffle=True, seed=seed)).sort(
            "conv_id", "session_id"
        )
        assert shuffled.select("conv_id", "session_id").equals(expected.select("conv_id", "session_id"))
        assert (shuffled["ihc"] - expected["ihc"]).abs().max() < 1e-12

    def test_a_one_session_journey_gets_all_the_credit(self):
        assert self.model.attribute(one_journey("2023-09-01 10:00:00"))["ihc"].to_list() == [1.0]

    @settings(CONTRACT, max_examples=20)
    @given(frame=journeys())
    def test_the_same_input_gives_the_same_output(self, frame):
        assert self.model.attribute(frame).equals(self.model.attribute(frame.clone()))

    @settings(CONTRACT, max_examples=30)
    @given(frame=journeys(), renamed=st.permutations(CHANNELS))
    def test_renaming_the_channels_gives_each_session_the_same_credit(self, frame, renamed):
        # Same credit per session under new names = each channel's total moves to its new name.
        mapping = dict(zip(CHANNELS, renamed, strict=True))
        expected = self.model.attribute(frame).sort(KEYS)
        got = self.relabelled_model(mapping).attribute(relabel(frame, mapping)).sort(KEYS)
        assert got.select(KEYS).equals(expected.select(KEYS))
        assert (got["ihc"] - expected["ihc"]).abs().max() < 1e-9
