"""Null paths from the warehouse (SQLite and PostgreSQL): users who never converted, cut like journeys."""

from __future__ import annotations

import polars as pl
import pytest

from attribution import journeys, load_settings, run
from attribution.journeys import JourneyOptions, build_journeys
from attribution.paths import build_conversion_paths, build_null_paths
from attribution.timerange import TimeRange
from attribution.vocabulary import journey_paths
from attribution.warehouse.bulk import fetch_frame
from attribution.warehouse.engine import connect
from tests.builders import Case, Conversion, Session
from tests.cases import PAID

CASE = Case(
    sessions=[
        Session("a1", "u1", "2023-09-01 10:00:00", "Referral"),  # u1 converts
        Session("b3", "u2", "2023-09-05 10:00:00", "FB & IG Ads", impression=1),
        Session("b1", "u2", "2023-09-01 10:00:00", "Paid Search Brand"),
        Session("b2", "u2", "2023-09-03 10:00:00", "Direct Traffic"),
        Session("c2", "u3", "2023-09-02 00:00:00", "Referral"),
        Session("c1", "u3", "2023-08-01 00:00:00", "TikTok Ads"),
        Session("d1", "u4", "2023-09-02 00:00:00", "Referral"),  # u4 converts, but after the range
    ],
    conversions=[
        Conversion("k1", "u1", "2023-09-02 00:00:00"),
        Conversion("k4", "u4", "2023-10-01 00:00:00"),
    ],
)


def null_paths(db: str, time_range: TimeRange = TimeRange(), **options) -> pl.DataFrame:
    engine = connect(db)
    try:
        return build_null_paths(engine, time_range, JourneyOptions(**options))
    finally:
        engine.dispose()


def sessions(frame: pl.DataFrame) -> list[tuple[str, str]]:
    return frame.select("path_id", "session_id").rows()


def test_null_paths_hold_every_session_of_users_who_never_converted_in_time_order(make_db):
    frame = null_paths(make_db(CASE))
    assert sessions(frame) == [("u2", "b1"), ("u2", "b2"), ("u2", "b3"), ("u3", "c1"), ("u3", "c2")]
    assert frame.row(0) == ("u2", "2023-09-01 10:00:00", "b1", "Paid Search Brand")


def test_a_range_keeps_only_the_sessions_inside_it(make_db):
    frame = null_paths(make_db(CASE), TimeRange.parse("2023-09-02", "2023-09-05"))
    assert sessions(frame) == [("u2", "b2"), ("u3", "c2")]


def test_lookback_keeps_the_last_days_before_each_users_last_session(make_db):
    # u2's last session is 09-05 10:00: two days back is 09-03 10:00, so b2 (at the threshold) stays, b1 goes.
    frame = null_paths(make_db(CASE), lookback_days=2)
    assert sessions(frame) == [("u2", "b2"), ("u2", "b3"), ("u3", "c2")]


def test_dropping_impressions_also_moves_the_lookback_anchor(make_db):
    # Without b3 (an impression), u2's last session is b2 at 09-03: two days back reaches b1 at 09-01.
    frame = null_paths(make_db(CASE), lookback_days=2, drop_impressions=True)
    assert sessions(frame) == [("u2", "b1"), ("u2", "b2"), ("u3", "c2")]


def test_a_warehouse_where_everyone_converted_has_no_null_paths(make_db):
    frame = null_paths(make_db(Case(sessions=CASE.sessions[:1], conversions=CASE.conversions[:1])))
    assert frame.is_empty() and frame.columns == ["path_id", "timestamp", "session_id", "channel_name"]


def test_conversion_paths_are_the_journeys_sessions(make_db):
    engine = connect(make_db(CASE))
    try:
        expected = pl.concat(journey_paths(chunk.journeys) for chunk in build_journeys(engine))
        assert build_conversion_paths(engine).equals(expected)
    finally:
        engine.dispose()


@pytest.mark.parametrize("model", ["markov", "shapley"])
def test_a_path_model_run_reads_each_page_of_journeys_once(make_db, tmp_path, monkeypatch, model):
    """Before, a run read every journey twice: once to learn the scores (``build_conversion_paths``), once to
    attribute them; a million orders meant two million sessions read for nothing."""
    pages: list[tuple[str, str, str]] = []

    def recorded(engine, statement, params, schema, **options):
        pages.append((params["after_date"], params["after_time"], params["after_id"]))
        return fetch_frame(engine, statement, params, schema, **options)

    monkeypatch.setattr(journeys, "fetch_frame", recorded)
    settings = load_settings(db=make_db(PAID), out=str(tmp_path), model=model, chunk_conversions=2)
    summary = run(settings)
    assert summary.attributed == summary.journeys > 2
    assert len(pages) > 2 and len(pages) == len(set(pages))  # several pages, each read once
