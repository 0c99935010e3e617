"""The batched pipeline the DAG calls, step by step, on SQLite and PostgreSQL: every step run twice gives
the pipeline's tables, overlapping runs cannot corrupt each other, remote batches resume."""

from __future__ import annotations

import json
import threading
import time
from contextlib import closing

import pytest
from sqlalchemy import func, select, text

from attribution import load_settings, run
from attribution.errors import IntegrityError
from attribution.pipeline import scheduled
from attribution.warehouse.engine import connect
from attribution.warehouse.locks import lock_writes
from attribution.warehouse.schema import create_output_tables
from attribution.warehouse.tables import (
    WORK_TABLES,
    attribution_runs,
    staged_journeys,
    staged_runs,
)
from tests.cases import PAID
from tests.oracle import assert_close, check_invariants, read_tables
from tests.servers import API_KEY

FIRST, LAST = "2023-09-01", "2023-09-06"


def settings_for(db: str, tmp_path, start: str = FIRST, end: str = LAST, **options):
    return load_settings(db=db, out=str(tmp_path / "reports"), start=start, end=end, **options)


def staged(settings, run_key: str, batch_journeys: int = 1) -> scheduled.StagePlan:
    scheduled.prepare_run(settings)
    plan = scheduled.stage_journeys(settings, run_key, batch_journeys)
    for batch_id in plan.batch_ids:
        scheduled.attribute_batch(settings, run_key, batch_id)
    return plan


def count(db: str, table, **where) -> int:
    engine = connect(db)
    with engine.connect() as conn:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        result = conn.scalar(query)
    engine.dispose()
    return result


def at_once(*calls: tuple) -> None:
    """Run each ``(function, *args)`` in its own thread, all started together, and wait for them."""
    threads = [threading.Thread(target=function, args=args) for function, *args in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def assert_one_run_over_both(db: str, twin: str, tmp_path) -> None:
    """Two succeeded runs whose tables equal one linear run over the whole range on ``twin``."""
    run(settings_for(twin, tmp_path, model="linear"))
    (credits, report), (twin_credits, twin_report) = read_tables(db), read_tables(twin)
    assert_close(credits, twin_credits)
    assert_close(report, twin_report)
    assert count(db, attribution_runs, status="succeeded") == 2


def test_every_step_run_twice_gives_the_pipeline_tables_and_a_byte_identical_csv(make_db, tmp_path):
    db, twin = make_db(PAID), make_db(PAID)
    settings = settings_for(db, tmp_path)
    scheduled.prepare_run(settings)
    scheduled.stage_journeys(settings, "run-1", batch_journeys=1)
    plan = staged(settings, "run-1", batch_journeys=1)
    assert (plan.batch_ids, plan.conversions, plan.journeys, plan.without_sessions) == ([0, 1, 2, 3], 5, 4, 1)
    for batch_id in plan.batch_ids:
        scheduled.attribute_batch(settings, "run-1", batch_id)
    summary = scheduled.finish_run(settings, "run-1")
    assert (summary.journeys, summary.unattributed, summary.credit_total) == (4, 0, pytest.approx(4))
    assert scheduled.finish_run(settings, "run-1") is None  # finished already: nothing changes
    scheduled.export_files(settings, "run-1")
    run(settings_for(twin, tmp_path / "twin"))
    assert read_tables(db) == read_tables(twin)
    csv = "reports/channel_reporting.csv"
    assert (tmp_path / csv).read_bytes() == (tmp_path / "twin" / csv).read_bytes()
    check_invariants(PAID, db, settings.time_range)
    assert all(count(db, table) == 0 for table in WORK_TABLES)
    assert count(db, attribution_runs, run_id="run-1", status="succeeded") == 1


def test_finishing_waits_for_another_run_that_is_finishing(make_db, tmp_path):
    db = make_db(PAID)
    settings = settings_for(db, tmp_path)
    staged(settings, "waiting")
    engine = connect(db)
    holder = engine.connect()
    lock_writes(holder)  # the lock every writer of the output tables takes first
    finisher = threading.Thread(target=scheduled.finish_run, args=(settings, "waiting"))
    try:
        finisher.start()
        time.sleep(1.5)
        assert finisher.is_alive() and count(db, staged_runs) == 1
    finally:
        holder.rollback()
        finisher.join(timeout=60)
        holder.close()
        engine.dispose()
    assert count(db, staged_runs) == 0
    assert count(db, attribution_runs, run_id="waiting", status="succeeded") == 1


def test_overlapping_runs_finishing_at_once_equal_one_run_over_both_ranges(make_db, tmp_path):
    db, twin = make_db(PAID), make_db(PAID)
    early = settings_for(db, tmp_path, end="2023-09-04", model="linear")
    late = settings_for(db, tmp_path, start="2023-09-03", model="linear")
    staged(early, "early")
    staged(late, "late")
    at_once((scheduled.finish_run, early, "early"), (scheduled.finish_run, late, "late"))
    assert_one_run_over_both(db, twin, tmp_path)


def test_a_cli_run_waits_for_the_write_lock_a_scheduled_run_holds(make_db, tmp_path):
    db = make_db(PAID)
    settings = settings_for(db, tmp_path, model="linear")
    engine = connect(db)
    create_output_tables(engine)
    holder = engine.connect()
    lock_writes(holder)
    runner = threading.Thread(target=run, args=(settings,))
    try:
        runner.start()
        time.sleep(1.5)
        assert runner.is_alive()  # waiting (a count here would wait too, for Redshift's table lock)
    finally:
        holder.rollback()
        runner.join(timeout=60)
        holder.close()
        engine.dispose()
    assert count(db, attribution_runs, status="succeeded") == 1


def test_a_cli_run_and_a_scheduled_run_at_once_on_overlapping_ranges_equal_one_run_over_both(
    make_db, tmp_path
):
    db, twin = make_db(PAID), make_db(PAID)
    early = settings_for(db, tmp_path, end="2023-09-04", model="linear")
    late = settings_for(db, tmp_path, start="2023-09-03", model="linear")
    staged(late, "late")
    at_once((run, early), (scheduled.finish_run, late, "late"))
    assert_one_run_over_both(db, twin, tmp_path)


def test_a_missing_batch_stops_the_finish_and_keeps_the_stored_credit(make_db, tmp_path):
    db = make_db(PAID)
    settings = settings_for(db, tmp_path)
    run(settings)
    tables = read_tables(db)
    scheduled.prepare_run(settings)
    plan = scheduled.stage_journeys(settings, "partial", batch_journeys=1)
    scheduled.attribute_batch(settings, "partial", plan.batch_ids[0])
    with pytest.raises(IntegrityError, match="3 staged journeys have no credit"):
        scheduled.finish_run(settings, "partial")
    assert read_tables(db) == tables


def test_a_failed_run_is_recorded_failed_and_a_committed_one_keeps_its_record(make_db, tmp_path):
    db = make_db(PAID)
    settings = settings_for(db, tmp_path)
    staged(settings, "dag/failing")
    scheduled.fail_run(settings, "dag/failing", IntegrityError("batch 0 went wrong"))
    staged(settings, "dag/exported")
    scheduled.finish_run(settings, "dag/exported")
    scheduled.fail_run(settings, "dag/exported", OSError("the export failed after the commit"))
    engine = connect(db)
    with engine.connect() as conn:
        records = conn.execute(
            select(attribution_runs.c.run_id, attribution_runs.c.status, attribution_runs.c.summary)
        )
        ended = {run_id: (status, json.loads(summary)) for run_id, status, summary in records}
    engine.dispose()
    assert ended["dag/failing"] == ("failed", {"error": "IntegrityError: batch 0 went wrong"})
    assert ended["dag/exported"][0] == "succeeded" and "error" not in ended["dag/exported"][1]


def test_more_batches_than_the_scheduler_maps_are_refused_and_nothing_is_staged(make_sqlite, tmp_path):
    db = make_sqlite(PAID)
    settings = settings_for(db, tmp_path)
    scheduled.prepare_run(settings)
    with pytest.raises(IntegrityError, match="4 batches exceed the scheduler's limit of 3"):
        scheduled.stage_journeys(settings, "big", batch_journeys=1, max_batches=3)
    assert count(db, staged_journeys) == 0


def test_remote_batches_hold_whole_requests_of_whole_journeys(make_sqlite, tmp_path):
    db = make_sqlite(PAID)
    settings = settings_for(db, tmp_path, model="ihc-api", ihc_api_key="unused", max_journeys=2)
    scheduled.prepare_run(settings)
    plan = scheduled.stage_journeys(settings, "packed", batch_journeys=2)
    assert plan.batch_ids == [0, 1]  # 4 journeys, 2 a request, 1 request a batch
    engine = connect(db)
    with closing(engine.connect()) as conn:
        spread = conn.execute(
            text("SELECT conv_id, COUNT(DISTINCT batch_id) FROM attribution_staged_journeys GROUP BY conv_id")
        ).fetchall()
    engine.dispose()
    assert sorted(spread) == [("c1", 1), ("c2", 1), ("c4", 1), ("c5", 1)]


def test_a_remote_batch_cut_short_sends_only_what_is_left_when_run_again(make_sqlite, ihc_servers, tmp_path):
    db = make_sqlite(PAID)
    remote = {
        "model": "ihc-api",
        "ihc_url": ihc_servers["clean"].url,
        "ihc_api_key": API_KEY,
        "max_journeys": 1,
    }
    settings = settings_for(db, tmp_path, **remote)
    scheduled.prepare_run(settings)
    plan = scheduled.stage_journeys(settings, "resumed", batch_journeys=4)
    assert plan.batch_ids == [0]
    with pytest.raises(scheduled.BatchUnsettledError, match="3 unsent"):
        scheduled.attribute_batch(settings_for(db, tmp_path, **remote, max_requests=1), "resumed", 0)
    assert scheduled.attribute_batch(settings, "resumed", 0)["requests"] == 3
    summary = scheduled.finish_run(settings, "resumed")
    assert (summary.journeys, summary.unattributed) == (4, 0)
    check_invariants(PAID, db, settings.time_range)
