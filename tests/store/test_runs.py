"""Run records and their leases, on SQLite, PostgreSQL and Redshift's SQL: a record whose owner is gone (a
process of this host that ended, or any run, of any host or a scheduler's, whose lease ran out) is closed as
``abandoned`` by the next run, with one line; a live owner renews its lease at step boundaries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, MetaData, Table, insert, inspect, select, update

from attribution import load_settings, run
from attribution.pipeline import scheduled
from attribution.store.runs import Heartbeat, now_text
from attribution.warehouse.engine import connect
from attribution.warehouse.tables import attribution_runs
from tests.cases import PAID

FIRST, LAST = "2023-09-01", "2023-09-06"
LEASE_COLUMNS = ("heartbeat_at", "lease_seconds")


def later_run(db: str, tmp_path) -> None:
    """A run of a local model over the whole range: any run, on any host, closes what is gone."""
    run(load_settings(db=db, out=str(tmp_path / "later"), formats=("csv",), model="linear"))


def records(db: str) -> dict[str, tuple[str, dict | None]]:
    """Each run record's status and summary."""
    engine = connect(db)
    with engine.connect() as conn:
        rows = conn.execute(
            select(attribution_runs.c.run_id, attribution_runs.c.status, attribution_runs.c.summary)
        )
        found = {run_id: (status, summary and json.loads(summary)) for run_id, status, summary in rows}
    engine.dispose()
    return found


def stamp(ago: timedelta) -> str:
    return (datetime.now(UTC) - ago).strftime("%Y-%m-%d %H:%M:%S")


def plant(db: str, table: Table, **runs: dict) -> None:
    engine = connect(db)
    with engine.begin() as conn:
        for run_id, values in runs.items():
            conn.execute(insert(table).values(run_id=run_id, status="running", model="ihc-api", **values))
    engine.dispose()


def test_the_next_run_closes_the_runs_of_any_host_whose_lease_ran_out_and_keeps_the_live_ones(
    make_db, tmp_path
):
    db = make_db(PAID)
    later_run(db, tmp_path)  # the tables exist
    elsewhere = {"host": "another-host", "pid": 4242, "lease_seconds": 3600}
    silent, recent = stamp(timedelta(hours=2)), stamp(timedelta(minutes=30))
    plant(
        db,
        attribution_runs,
        elsewhere_silent={**elsewhere, "started_at": stamp(timedelta(hours=4)), "heartbeat_at": silent},
        elsewhere_alive={**elsewhere, "started_at": silent, "heartbeat_at": stamp(timedelta(minutes=1))},
        scheduled_silent={"started_at": silent, "heartbeat_at": silent, "lease_seconds": 3600},
        scheduled_long_lease={"started_at": silent, "heartbeat_at": silent, "lease_seconds": 3 * 3600},
        scheduled_recent={"started_at": recent, "heartbeat_at": recent, "lease_seconds": 3600},
    )
    later_run(db, tmp_path)
    found = records(db)
    assert {
        run_id: found[run_id][0] for run_id in sorted(found) if not run_id.isalnum()
    } == {  # the later runs: hex ids
        "elsewhere_alive": "running",
        "elsewhere_silent": "abandoned",
        "scheduled_long_lease": "running",
        "scheduled_recent": "running",
        "scheduled_silent": "abandoned",
    }
    error = found["elsewhere_silent"][1]["error"]
    assert "\n" not in error and "another-host" in error and "lease of 3600 s" in error, error


def test_an_older_runs_table_gets_the_lease_columns_and_its_silent_records_are_closed(make_db, tmp_path):
    db = make_db(PAID)
    old = Table(
        attribution_runs.name,
        MetaData(),
        *(Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
          for c in attribution_runs.columns if c.name not in LEASE_COLUMNS),
    )  # fmt: skip
    engine = connect(db)
    old.create(engine)
    engine.dispose()
    plant(
        db,
        old,
        elsewhere_old={"host": "another-host", "pid": 4242, "started_at": stamp(timedelta(hours=3))},
        scheduled_old={"started_at": stamp(timedelta(hours=3))},
        scheduled_new={"started_at": stamp(timedelta(minutes=5))},
    )
    later_run(db, tmp_path)
    engine = connect(db)
    columns = {column["name"] for column in inspect(engine).get_columns(attribution_runs.name)}
    engine.dispose()
    assert set(LEASE_COLUMNS) <= columns
    found = records(db)
    assert [found[run_id][0] for run_id in ("elsewhere_old", "scheduled_old", "scheduled_new")] == [
        "abandoned",
        "abandoned",
        "running",
    ]


def test_a_scheduled_runs_tasks_renew_its_lease_and_one_closed_meanwhile_is_open_again(make_db, tmp_path):
    db = make_db(PAID)
    settings = load_settings(db=db, out=str(tmp_path / "reports"), start=FIRST, end=LAST, model="linear")
    scheduled.prepare_run(settings)
    plan = scheduled.stage_journeys(settings, "dag/queued", batch_journeys=2)
    backdate(db, "dag/queued", timedelta(hours=2))  # its tasks waited longer than its lease
    later_run(db, tmp_path)
    assert records(db)["dag/queued"][0] == "abandoned"
    scheduled.attribute_batch(settings, "dag/queued", plan.batch_ids[0])  # its owner is alive after all
    assert records(db)["dag/queued"] == ("running", None)
    backdate(db, "dag/queued", timedelta(minutes=50))
    scheduled.attribute_batch(settings, "dag/queued", plan.batch_ids[1])
    backdate(db, "dag/queued", timedelta(minutes=20), since_renewal=True)
    later_run(db, tmp_path)  # 70 minutes after its stage, 20 after its last task
    assert records(db)["dag/queued"][0] == "running"
    assert scheduled.finish_run(settings, "dag/queued").status == "succeeded"
    assert records(db)["dag/queued"][0] == "succeeded"


def backdate(db: str, run_id: str, ago: timedelta, since_renewal: bool = False) -> None:
    """Move a record's heartbeat ``ago`` into the past (its start too, unless ``since_renewal``)."""
    values = (
        {"heartbeat_at": stamp(ago)}
        if since_renewal
        else {"heartbeat_at": stamp(ago), "started_at": stamp(ago)}
    )
    engine = connect(db)
    with engine.begin() as conn:
        conn.execute(update(attribution_runs).where(attribution_runs.c.run_id == run_id).values(**values))
    engine.dispose()


def test_a_heartbeat_renews_the_lease_once_a_quarter_of_it_has_passed(make_db, tmp_path):
    db = make_db(PAID)
    later_run(db, tmp_path)
    planted = stamp(timedelta(minutes=30))
    plant(db, attribution_runs, owned={"started_at": planted, "heartbeat_at": planted, "lease_seconds": 3600})
    clock = [0.0]
    engine = connect(db)
    heartbeat = Heartbeat(engine, "owned", 3600, clock=lambda: clock[0])
    clock[0] = 899.0
    heartbeat.beat()
    assert heartbeat_of(engine, "owned") == planted
    before = now_text()
    clock[0] = 900.0
    heartbeat.beat()
    assert heartbeat_of(engine, "owned") >= before
    engine.dispose()


def heartbeat_of(engine, run_id: str) -> str:
    with engine.connect() as conn:
        return conn.scalar(select(attribution_runs.c.heartbeat_at).where(attribution_runs.c.run_id == run_id))
