"""Bad input rows through a whole run: refused before anything is written (``on_bad_rows="error"``), or
left out of journeys and counted (``"skip"``) where the report stays true without them."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from attribution import InputError, IntegrityError, load_settings, run
from attribution.pipeline import scheduled
from attribution.reporting import channel_report
from attribution.timerange import TimeRange
from attribution.warehouse.engine import open_engine
from attribution.warehouse.input_checks import MAX_MONEY
from attribution.warehouse.tables import attribution_runs
from tests.builders import Case, Conversion, Session, write_case
from tests.cases import PAID
from tests.oracle import read_tables


def run_pipeline(db: str, out: Path, **options):
    return run(load_settings(db=db, out=str(out), formats=("csv",), **options))


def credit_per_conversion(db: str) -> dict[str, float]:
    credits, _ = read_tables(db)
    sums: dict[str, float] = {}
    for conv_id, _session, ihc in credits:
        sums[conv_id] = sums.get(conv_id, 0.0) + ihc
    return sums


def report_totals(db: str) -> tuple[float, float]:
    """The report's cost and credit over every row."""
    _, report = read_tables(db)
    return sum(row[2] for row in report), sum(row[3] for row in report)


DOUBLE_COST = replace(PAID, extra_costs=[("p1", 2.5)])
"""Issue item 5: p1's cost row twice."""
SHARED_CONV_ID = replace(PAID, conversions=[*PAID.conversions, Conversion("c4", "u9", "2023-09-05 06:00:00")])
"""Issue item 5: c4 for u3 and again for u9: their sessions merged into one journey."""
DOUBLE_SESSION = replace(
    PAID, sessions=[*PAID.sessions, Session("a2", "u1", "2023-09-02 10:00:00", closer=1, has_cost_row=False)]
)
"""Issue item 11: a2 twice, which gave 'Model returned ... credit rows for ... journey sessions'."""


@pytest.mark.parametrize(
    ("case", "line"),
    [
        (DOUBLE_COST, "session_costs: 1 session_id appears more than once (duplicate-cost-session-id): p1"),
        (SHARED_CONV_ID, "conversions: 1 conv_id appears more than once (duplicate-conv-id): c4"),
        (DOUBLE_SESSION, "session_sources: 1 session_id appears more than once (duplicate-session-id): a2"),
    ],
)
def test_duplicate_keys_stop_the_run_before_it_writes(make_db, tmp_path, case, line):
    db = make_db(case, keyed=False)
    with pytest.raises(InputError, match=re.escape(line)):
        run_pipeline(db, tmp_path)
    with open_engine(db) as engine:  # not even an output table or an index was created
        assert sorted(inspect(engine).get_table_names()) == [
            "conversions",
            "session_costs",
            "session_sources",
        ]
        assert not any(inspect(engine).get_indexes(table) for table in ("conversions", "session_sources"))


def test_a_duplicate_cost_row_is_refused_even_when_bad_rows_are_skipped(make_db, tmp_path):
    db = make_db(DOUBLE_COST, keyed=False)
    with pytest.raises(InputError, match=r"duplicate-cost-session-id.*cannot be skipped"):
        run_pipeline(db, tmp_path, on_bad_rows="skip")


def test_a_shared_conv_id_is_left_out_and_counted_under_skip(make_db, tmp_path):
    db = make_db(SHARED_CONV_ID, keyed=False)
    summary = run_pipeline(db, tmp_path, on_bad_rows="skip")
    assert (summary.skipped_conversions, summary.skipped_sessions) == (2, 0)
    sums = credit_per_conversion(db)
    assert sorted(sums) == ["c1", "c2", "c5"]
    assert all(total == pytest.approx(1) for total in sums.values())
    assert report_totals(db)[1] == pytest.approx(sum(sums.values()))
    with open_engine(db) as engine, engine.connect() as conn:
        recorded = conn.scalar(select(attribution_runs.c.summary))
    assert '"skipped_conversions": 2' in recorded


def test_sessions_with_bad_times_are_left_out_of_journeys_and_keep_their_cost(make_db, tmp_path):
    """Issue item 6: 09:30:00-05:00 is 14:30Z, after c2's 08:00Z, yet sorted before it as text."""
    late = Session("t1", "u1", "2023-09-05 07:30:00-05:00", "FB & IG Ads", closer=1, cost=3.0)
    short = Session("t2", "u9", "2023-09-04 9:30:00", "TikTok Ads", cost=1.5)
    db = make_db(replace(PAID, sessions=[*PAID.sessions, late, short]), keyed=False)
    with pytest.raises(InputError, match=r"session_sources: 2 rows .*\(bad-session-time\): t1, t2"):
        run_pipeline(db, tmp_path)
    summary = run_pipeline(db, tmp_path, on_bad_rows="skip")
    assert (summary.skipped_conversions, summary.skipped_sessions) == (0, 2)
    credits, _ = read_tables(db)
    assert not {"t1", "t2"} & {session for _conv, session, _ihc in credits}
    assert report_totals(db)[0] == pytest.approx(2.5 + 4.0 + 3.0 + 1.5)


def test_a_daily_run_does_not_refuse_a_bad_row_it_never_reads(make_db, tmp_path):
    far = Session("o1", "u3", "2023-09-02 9:30:00", has_cost_row=False)  # u3 converts on 09-03 only
    db = make_db(replace(PAID, sessions=[*PAID.sessions, far]), keyed=False)
    summary = run_pipeline(db, tmp_path, start="2023-09-05", end="2023-09-06")
    assert summary.conversions == 2
    with pytest.raises(InputError, match="bad-session-time"):
        run_pipeline(db, tmp_path, start="2023-09-03", end="2023-09-04")


def test_a_range_end_keeps_its_fraction_of_a_second(make_db, tmp_path):
    """Issue item 6: an end of 12:00:00.5 was cut to 12:00:00, leaving out c1 at 12:00:00."""
    assert TimeRange.parse(None, "2023-09-03T12:00:00.5").sql_bounds()[1] > "2023-09-03 12:00:00"
    summary = run_pipeline(make_db(PAID), tmp_path, start="2023-09-03", end="2023-09-03T12:00:00.5")
    assert summary.conversions == 2  # c4 at 00:00 and c1 at 12:00


def test_a_scheduled_run_skips_and_counts_as_the_in_process_run_does(make_db, tmp_path):
    in_process, batched = (make_db(SHARED_CONV_ID, keyed=False) for _ in range(2))
    expected = run_pipeline(in_process, tmp_path, on_bad_rows="skip")
    settings = load_settings(db=batched, out=str(tmp_path), formats=("csv",), on_bad_rows="skip")
    scheduled.prepare_run(settings)
    plan = scheduled.stage_journeys(settings, "run")
    for batch in plan.batch_ids:
        scheduled.attribute_batch(settings, "run", batch)
    summary = scheduled.finish_run(settings, "run")
    assert (summary.skipped_conversions, summary.skipped_sessions) == (2, 0)
    assert read_tables(batched) == read_tables(in_process)
    assert (expected.skipped_conversions, expected.journeys) == (2, summary.journeys)


@pytest.mark.parametrize("model", ["markov", "shapley"])
def test_models_learning_from_null_paths_check_the_sessions_of_the_range_s_dates(make_db, tmp_path, model):
    """A user who never converts: their 9:30:00 session sorted after their 10:30:00 one in the null path."""
    never = [
        Session("n1", "u7", "2023-09-05 9:30:00", "Referral"),
        Session("n2", "u7", "2023-09-05 10:30:00"),
    ]
    db = make_db(replace(PAID, sessions=[*PAID.sessions, *never]), keyed=False)
    day = {"start": "2023-09-05", "end": "2023-09-06", "model": model}
    with pytest.raises(InputError, match=r"\(bad-session-time\): n1"):
        run_pipeline(db, tmp_path, **day)
    assert run_pipeline(db, tmp_path, **day, on_bad_rows="skip").conversions == 2


def _with_revenue(*revenues: float) -> Case:
    extra = [Conversion(f"r{i}", "u9", "2023-09-05 00:00:00", revenue) for i, revenue in enumerate(revenues)]
    return replace(PAID, conversions=[*PAID.conversions, *extra])


def _with_cost(cost: float) -> Case:
    return replace(
        PAID, sessions=[*PAID.sessions, Session("x1", "u9", "2023-09-04 13:00:00", "TikTok Ads", cost=cost)]
    )


DAY = {"start": "2023-09-04", "end": "2023-09-05"}
MONEY_AT_ITS_LIMITS = {
    "revenue infinite": (
        _with_revenue(math.inf),
        {},
        "conversions: 1 row has a revenue .*revenue-out-of-range.*: r0",
    ),
    "revenue 1.7e308 on two conversions": (
        _with_revenue(1.7e308, 1.7e308),
        {},
        "conversions: 2 rows have a revenue .*revenue-out-of-range.*: r0, r1",
    ),
    "a cost of 1e13, bounded run": (
        _with_cost(1e13),
        DAY,
        "session_costs: 1 row has a cost .*cost-out-of-range.*: x1",
    ),
    "a cost of infinity, bounded run": (
        _with_cost(math.inf),
        DAY,
        "session_costs: 1 row .*cost-out-of-range.*: x1",
    ),
    "a cost of 1e13, open range": (_with_cost(1e13), {}, "session_costs: 1 row .*cost-out-of-range.*: x1"),
}


@pytest.mark.parametrize("defect", sorted(MONEY_AT_ITS_LIMITS))
def test_money_beyond_what_the_report_sums_stops_the_run_naming_the_row(make_db, tmp_path, defect):
    """Issue 23 item 5: infinite revenue reached the report (``€inf``), a cost of 1e13 was stored as
    9,223,372,036,974.01 (a saturated cast), 1.7e308 twice overflowed ``math.fsum``."""
    case, options, line = MONEY_AT_ITS_LIMITS[defect]
    db = make_db(case, keyed=False)
    with pytest.raises(InputError, match=f"^Bad input rows in {line}"):
        run_pipeline(db, tmp_path, **options)
    with open_engine(db) as engine:
        assert "channel_reporting" not in inspect(engine).get_table_names()


def test_9e999_in_a_sqlite_file_is_named(make_sqlite, tmp_path):
    """SQLite reads ``9e999`` as an infinity, which the report printed as ``inf``."""
    db = make_sqlite(PAID)
    with open_engine(db) as engine, engine.begin() as conn:
        conn.execute(text("UPDATE conversions SET revenue = 9e999 WHERE conv_id = 'c5'"))
    with pytest.raises(InputError, match=r"\(revenue-out-of-range\): c5"):
        run_pipeline(db, tmp_path)


SUMMING_BEYOND = replace(
    PAID,
    sessions=[
        *PAID.sessions,
        *(Session(f"m{i}", "u4", "2023-09-03 10:00:00", "Display", cost=MAX_MONEY) for i in range(10)),
    ],
)
"""Ten costs at the bound on one date and channel: 10^19 millionths, beyond a signed 64-bit integer."""


@pytest.mark.parametrize("child_scan_rows", [0, channel_report.CHILD_SCAN_ROWS], ids=["columnar", "sql"])
@pytest.mark.parametrize(
    "options", [{}, {"start": "2023-09-03", "end": "2023-09-04"}], ids=["open", "bounded"]
)
def test_costs_summing_beyond_64_bits_of_millionths_stop_the_run_in_one_line(
    make_sqlite, tmp_path, monkeypatch, options, child_scan_rows
):
    """An open range's scan names the channel and date whichever sums them (the columnar scan, SQLite's join)."""
    monkeypatch.setattr(channel_report, "CHILD_SCAN_ROWS", child_scan_rows)
    db = make_sqlite(SUMMING_BEYOND)
    with pytest.raises(IntegrityError, match=r" 2023-09-03 is beyond ±9,223,372,036,854\.775807"):
        run_pipeline(db, tmp_path, **options)


def test_a_server_sums_costs_beyond_64_bits_of_millionths_exactly(postgres_url, tmp_path):
    """PostgreSQL sums ``BIGINT`` into a ``NUMERIC``: the total is exact."""
    write_case(postgres_url, SUMMING_BEYOND)
    run_pipeline(postgres_url, tmp_path)
    _, report = read_tables(postgres_url)
    assert {(channel, day): cost for channel, day, cost, *_ in report}[
        ("Display", "2023-09-03")
    ] == 10 * MAX_MONEY
