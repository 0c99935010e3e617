"""Property tests: on random small databases, every model keeps the invariants, and daily runs add up."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution import load_settings, run
from attribution.models import MODELS
from attribution.timerange import TimeRange
from tests.builders import Case, write_case
from tests.oracle import check_invariants, read_tables
from tests.strategies import TIMES, cases

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
