"""Journeys on hand-built cases that cover every trap listed in the challenge data notes."""

from __future__ import annotations

import polars as pl
import pytest

from attribution.journeys import JourneyOptions, build_journeys
from attribution.timerange import TimeRange
from attribution.warehouse.engine import connect
from tests.cases import TRAPS


def journeys_of(db: str, time_range: TimeRange = TimeRange(), **options) -> tuple[pl.DataFrame, int]:
    engine = connect(db)
    chunks = list(build_journeys(engine, time_range, JourneyOptions(**options), chunk_conversions=2))
    engine.dispose()
    frame = pl.concat([c.journeys for c in chunks]) if chunks else pl.DataFrame()
    return frame, sum(c.without_sessions for c in chunks)


def sessions_by_conversion(frame: pl.DataFrame) -> dict[str, list[str]]:
    return {
        conv: list(group["session_id"]) for (conv,), group in frame.group_by("conv_id", maintain_order=True)
    }


def test_journeys_hold_only_sessions_strictly_before_the_conversion(make_db):
    frame, _ = journeys_of(make_db(TRAPS))
    assert sessions_by_conversion(frame) == {
        "c4": ["d1", "d2"],
        "c1": ["a1", "a2"],
        "c2": ["a1", "a2", "a3"],
    }


def test_conversion_flag_marks_the_last_session_of_each_journey_only(make_db):
    frame, _ = journeys_of(make_db(TRAPS))
    flags = {(r["conv_id"], r["session_id"]): r["conversion"] for r in frame.iter_rows(named=True)}
    assert [k for k, v in flags.items() if v == 1] == [("c4", "d2"), ("c1", "a2"), ("c2", "a3")]


def test_conversions_without_earlier_sessions_are_counted_not_sent(make_db):
    frame, without = journeys_of(make_db(TRAPS))
    assert without == 1
    assert "c3" not in frame["conv_id"].to_list()


def test_flags_and_conversion_facts_pass_through(make_db):
    frame, _ = journeys_of(make_db(TRAPS))
    d1 = frame.filter(pl.col("session_id") == "d1").row(0, named=True)
    assert (d1["impression_interaction"], d1["holder_engagement"], d1["closer_engagement"]) == (1, 1, 0)
    assert d1["conv_ts"] == "2023-09-03 00:00:00" and d1["revenue"] == 100.0
    assert d1["timestamp"] == "2023-09-02 08:00:00" and d1["channel_name"] == "Newsletter & Email"


def test_range_selects_conversions_and_their_journeys_reach_back_before_its_start(make_db):
    frame, without = journeys_of(make_db(TRAPS), TimeRange.parse("2023-09-03", "2023-09-05"))
    assert sessions_by_conversion(frame) == {"c4": ["d1", "d2"], "c1": ["a1", "a2"]}
    assert without == 0


def test_range_is_half_open(make_db):
    db = make_db(TRAPS)
    assert journeys_of(db, TimeRange.parse("2023-09-03 12:00:00", "2023-09-05 08:00:00"))[0][
        "conv_id"
    ].unique().to_list() == ["c1"]
    assert journeys_of(db, TimeRange.parse("2023-09-05 08:00:00", None))[0]["conv_id"].unique().to_list() == [
        "c2"
    ]


def test_lookback_drops_sessions_older_than_the_window(make_db):
    frame, without = journeys_of(make_db(TRAPS), lookback_days=2)
    assert sessions_by_conversion(frame) == {"c4": ["d1", "d2"], "c1": ["a2"], "c2": ["a3"]}
    assert without == 1


def test_dropping_impressions_removes_impression_only_sessions(make_db):
    frame, _ = journeys_of(make_db(TRAPS), drop_impressions=True)
    assert sessions_by_conversion(frame)["c4"] == ["d2"]


@pytest.mark.parametrize("chunk", [1, 2, 3, 100])
def test_chunk_size_does_not_change_the_journeys(make_db, chunk):
    engine = connect(make_db(TRAPS))
    frames = [c.journeys for c in build_journeys(engine, chunk_conversions=chunk)]
    engine.dispose()
    assert pl.concat(frames)["session_id"].to_list() == ["d1", "d2", "a1", "a2", "a1", "a2", "a3"]
