"""Property tests: on random small databases, every model keeps the invariants, and daily runs add up; on
random defective ones, a run either keeps them or ends in one line and changes nothing."""

from __future__ import annotations

import itertools
import tempfile
from collections import defaultdict
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, text

from attribution import load_settings, run
from attribution.models import MODELS
from attribution.timerange import TimeRange
from attribution.warehouse.engine import open_engine
from tests.builders import Case, write_case
from tests.commands import attribution_in_process
from tests.oracle import check_invariants, read_tables, session_cost_by_date
from tests.strategies import TIMES, cases, defective_cases

CSV_ONLY = ("csv",)  # the dashboard and Parquet files have tests of their own; here they only cost time
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fresh_db(case: Case, folder: Path, name: str) -> str:
    db = str(folder / f"{name}.db")
    write_case(db, case)
    return db


@PROPERTY_SETTINGS
@given(case=cases(), model=st.sampled_from(sorted(MODELS)))
def test_any_database_gives_credit_summing_to_one_and_a_true_report(case, model):
    with tempfile.TemporaryDirectory() as folder:
        db = fresh_db(case, Path(folder), "db")
        run(load_settings(db=db, out=folder, model=model, formats=CSV_ONLY))
        check_invariants(case, db)


@PROPERTY_SETTINGS
@given(case=cases(), bounds=st.lists(st.sampled_from(TIMES), min_size=2, max_size=2, unique=True).map(sorted))
def test_a_range_run_keeps_the_invariants_for_its_range(case, bounds):
    with tempfile.TemporaryDirectory() as folder:
        db = fresh_db(case, Path(folder), "db")
        run(load_settings(db=db, out=folder, start=bounds[0], end=bounds[1], formats=CSV_ONLY))
        check_invariants(case, db, TimeRange.parse(*bounds))


@PROPERTY_SETTINGS
@given(case=cases())
def test_daily_runs_give_the_same_tables_as_one_run(case):
    days = ["2023-09-01", "2023-09-02", "2023-09-03", "2023-09-04", "2023-09-05"]
    with tempfile.TemporaryDirectory() as folder:
        daily, full = fresh_db(case, Path(folder), "daily"), fresh_db(case, Path(folder), "full")
        for day, next_day in itertools.pairwise(days):
            run(load_settings(db=daily, out=folder, start=day, end=next_day, formats=CSV_ONLY))
        run(load_settings(db=full, out=folder, start=days[0], end=days[-1], formats=CSV_ONLY))
        (daily_credits, daily_report), (full_credits, full_report) = read_tables(daily), read_tables(full)
        assert [r[:2] for r in daily_credits] == [r[:2] for r in full_credits]
        assert [r[:2] for r in daily_report] == [r[:2] for r in full_report]
        for a, b in zip(daily_credits + daily_report, full_credits + full_report, strict=True):
            assert all(abs(x - y) < 1e-9 for x, y in zip(a[2:], b[2:], strict=True))


def _everything(db: str) -> dict[str, list[str]]:
    """Every table's rows, as sorted text: what "nothing changed" compares."""
    with open_engine(db) as engine, engine.connect() as conn:
        return {
            name: sorted(repr(tuple(row)) for row in conn.execute(text(f"SELECT * FROM {name}")))
            for name in inspect(engine).get_table_names()
        }


def _assert_consistent(case: Case, db: str) -> None:
    """Credit sums to 1 per conversion; the report's credit is the stored credit by session date and
    channel, and its cost the session cost of each reported date."""
    with open_engine(db) as engine, engine.connect() as conn:
        credits = conn.execute(
            text("SELECT conv_id, event_date, channel_name, ihc FROM attribution_customer_journey")
        ).all()
        report = conn.execute(text("SELECT channel_name, date, cost, ihc FROM channel_reporting")).all()
    per_conversion, per_row = defaultdict(float), defaultdict(float)
    for conv_id, day, channel, ihc in credits:
        per_conversion[conv_id] += ihc
        per_row[(channel, day)] += ihc
    assert all(abs(total - 1) < 1e-9 for total in per_conversion.values())
    reported = {(channel, day): ihc for channel, day, _cost, ihc in report}
    assert all(abs(reported.get(key, 0.0) - ihc) < 1e-9 for key, ihc in per_row.items())
    cost_by_date = defaultdict(float)
    for _channel, day, cost, _ihc in report:
        cost_by_date[day] += cost
    expected = session_cost_by_date(case)
    assert all(abs(cost - expected.get(day, 0.0)) < 1e-9 for day, cost in cost_by_date.items())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(defective=defective_cases(), model=st.sampled_from(["last-touch", "linear", "ihc"]))
def test_a_defective_database_gives_a_true_report_or_one_line_and_no_change(defective, model):
    """Under either policy: exit 0 with consistent tables, or exit 1 with one line and the database as it
    was (no output table, no run record)."""
    kind, case = defective
    for policy in ("error", "skip"):
        with tempfile.TemporaryDirectory() as folder:
            db = str(Path(folder) / "db.db")
            write_case(db, case, keyed=False)
            before = _everything(db)
            options = ("--format", "csv", "--model", model, "--on-bad-rows", policy)
            code, stderr = attribution_in_process("run", "--db", db, "--out", folder, *options)
            event(f"{kind}: {'ran' if code == 0 else 'refused'} under {policy}")
            if code == 0:
                _assert_consistent(case, db)
            else:
                assert code == 1 and len(stderr.strip().splitlines()) == 1, stderr
                assert "Traceback" not in stderr
                assert _everything(db) == before
