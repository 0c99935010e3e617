"""The whole pipeline on real databases: invariants, idempotent reruns, daily runs equal one full run."""

from __future__ import annotations

import itertools
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from attribution import IntegrityError, load_settings, run
from attribution.models import MODELS
from attribution.store.runs import now_text
from attribution.warehouse.engine import connect
from attribution.warehouse.tables import attribution_customer_journey as acj
from attribution.warehouse.tables import attribution_runs
from tests.cases import PAID
from tests.oracle import assert_close, check_invariants, read_tables

DAYS = ["2023-09-01", "2023-09-02", "2023-09-03", "2023-09-04", "2023-09-05", "2023-09-06"]


def run_pipeline(db: str, out: Path, **options):
    """One run; the HTML dashboard (tested on its own) is left out to keep these tests fast."""
    return run(load_settings(db=db, out=str(out), formats=("csv", "parquet"), **options))


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_keeps_the_invariants(make_db, tmp_path, model):
    db = make_db(PAID)
    summary = run_pipeline(db, tmp_path, model=model)
    check_invariants(PAID, db)
    assert (summary.conversions, summary.journeys, summary.without_sessions) == (5, 4, 1)
    assert summary.credit_total == pytest.approx(4)


def test_rerun_gives_identical_tables_and_byte_identical_csv(make_db, tmp_path):
    db = make_db(PAID)
    first = run_pipeline(db, tmp_path / "a")
    tables = read_tables(db)
    second = run_pipeline(db, tmp_path / "b")
    assert read_tables(db) == tables
    assert Path(first.report_paths["csv"]).read_bytes() == Path(second.report_paths["csv"]).read_bytes()
    assert (
        Path(first.report_paths["parquet"]).read_bytes() == Path(second.report_paths["parquet"]).read_bytes()
    )


def test_daily_runs_equal_one_run_over_all_days(make_db, tmp_path):
    daily, full = make_db(PAID), make_db(PAID)
    for day, next_day in itertools.pairwise(DAYS):
        run_pipeline(daily, tmp_path / "daily", start=day, end=next_day)
    run_pipeline(full, tmp_path / "full", start=DAYS[0], end=DAYS[-1])
    (daily_credits, daily_report), (full_credits, full_report) = read_tables(daily), read_tables(full)
    assert_close(daily_credits, full_credits)
    assert_close(daily_report, full_report)
    assert (tmp_path / "daily/channel_reporting.csv").read_bytes() == (
        tmp_path / "full/channel_reporting.csv"
    ).read_bytes()


def test_a_range_run_replaces_only_its_own_model_s_credit_of_its_conversions(make_db, tmp_path):
    db = make_db(PAID)
    for model in ("linear", "last-touch"):
        run_pipeline(db, tmp_path, model=model)
    for model in ("first-touch", "last-touch"):
        run_pipeline(db, tmp_path, model=model, start="2023-09-05", end="2023-09-06")
    credits = stored_credit(db)
    conversions = {model: {conv for m, conv, _ in credits if m == model} for model, _, _ in credits}
    assert conversions == {"linear": {"c1", "c2", "c4", "c5"}, "last-touch": {"c1", "c2", "c4", "c5"}, 
                           "first-touch": {"c2", "c5"}}  # fmt: skip
    assert credits[("first-touch", "c2", "a1")] == 1.0
    assert credits[("linear", "c2", "a1")] == pytest.approx(1 / 4)  # another model's credit stays
    assert credits[("last-touch", "c2", "a3")] == credits[("last-touch", "c1", "a2")] == 1.0


def stored_credit(db: str) -> dict[tuple[str, str, str], float]:
    engine = connect(db)
    with engine.connect() as conn:
        rows = conn.execute(select(acj.c.model, acj.c.conv_id, acj.c.session_id, acj.c.ihc)).all()
    engine.dispose()
    return {(model, conv, session): ihc for model, conv, session, ihc in rows}


def test_a_run_records_its_summary(make_db, tmp_path):
    db = make_db(PAID)
    summary = run_pipeline(db, tmp_path)
    engine = connect(db)
    with engine.connect() as conn:
        record = conn.execute(select(attribution_runs)).one()
    engine.dispose()
    assert (record.run_id, record.status, record.model) == (summary.run_id, "succeeded", "ihc")


def test_a_range_without_conversions_says_which_dates_hold_them(make_db, tmp_path):
    db = make_db(PAID)
    summary = run_pipeline(db, tmp_path, start="2024-01-01", end="2024-01-02")
    assert (summary.conversions, summary.status) == (0, "succeeded")
    note = (
        "No conversions in [2024-01-01 00:00:00, 2024-01-02 00:00:00): the warehouse's conversions are "
        "dated 2023-09-02 to 2023-09-05"
    )
    assert note in summary.notes  # beside a server warehouse's note on missing indexes
    later = run_pipeline(db, tmp_path, start="2023-09-02", end="2023-09-03").notes
    assert not any(text.startswith("No conversions") for text in later)


def test_a_failing_model_leaves_the_previous_tables(make_db, tmp_path, monkeypatch):
    db = make_db(PAID)
    run_pipeline(db, tmp_path, model="linear")
    before = read_tables(db)
    monkeypatch.setattr(
        MODELS["last-touch"],
        "attribute",
        lambda self, journeys: journeys.select("conv_id", "session_id", ihc=0.5),
    )
    with pytest.raises(IntegrityError):
        run_pipeline(db, tmp_path, model="last-touch")
    assert read_tables(db) == before
    engine = connect(db)
    with engine.connect() as conn:
        statuses = sorted(conn.scalars(select(attribution_runs.c.status)))
    engine.dispose()
    assert statuses == ["failed", "succeeded"]


def test_a_run_waits_for_another_process_s_exclusive_lock(make_sqlite, tmp_path):
    """The busy timeout (30 s) covers every statement, the session settings included: a lock held for 7 s
    (longer than sqlite3's own 5 s default) is waited for."""
    db = make_sqlite(PAID)
    locked, held_seconds = threading.Event(), 7.0

    def hold_lock() -> None:
        with closing(sqlite3.connect(db, isolation_level=None)) as other:
            other.execute("BEGIN EXCLUSIVE")
            locked.set()
            time.sleep(held_seconds)
            other.execute("COMMIT")

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait()
    began = time.monotonic()
    try:
        summary = run_pipeline(db, tmp_path, model="linear")
    finally:
        holder.join()
    assert time.monotonic() - began >= held_seconds - 1
    assert summary.credit_total == pytest.approx(4)
    check_invariants(PAID, db)


def test_the_next_run_marks_a_killed_run_abandoned_and_leaves_a_live_one_running(make_db, tmp_path):
    db = make_db(PAID)
    run_pipeline(db, tmp_path)
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    started = {
        "started_at": now_text(),  # within its lease: only its process tells
        "status": "running",
        "model": "ihc",
        "host": socket.gethostname(),
    }
    engine = connect(db)
    with engine.begin() as conn:
        conn.execute(insert(attribution_runs).values(run_id="killed", pid=int(ended.stdout), **started))
        conn.execute(insert(attribution_runs).values(run_id="alive", pid=os.getpid(), **started))
    run_pipeline(db, tmp_path)
    with engine.connect() as conn:
        statuses = dict(conn.execute(select(attribution_runs.c.run_id, attribution_runs.c.status)).all())
    engine.dispose()
    assert (statuses["killed"], statuses["alive"]) == ("abandoned", "running")


def test_progress_names_prepares_phases_and_every_counted_step_reaches_its_total(make_sqlite, tmp_path):
    calls: list[tuple[str, int, int | None]] = []
    settings = load_settings(
        db=make_sqlite(PAID), out=str(tmp_path), formats=("csv", "parquet"), model="markov"
    )
    summary = run(settings, lambda step, done, total: calls.append((step, done, total)))
    steps = list(dict.fromkeys(step for step, _, _ in calls))
    assert steps == [
        "prepare: input checks",
        "prepare: freshness",
        "prepare: index builds",
        "prepare: output tables",
        "prepare: learning the model",
        "attribute_conversions",
        "store",
        "report",
        "export",
    ]
    last = {step: (done, total) for step, done, total in calls}
    assert last["attribute_conversions"] == (summary.conversions, summary.conversions)
    assert last["store"][0] == last["store"][1] >= 1
    assert last["export"] == (2, 2)
    for step, done, total in calls:  # counters never run backwards or past their totals
        assert total is None or 0 <= done <= total, (step, done, total)
