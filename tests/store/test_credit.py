"""Replacing a model's whole stored credit, on every backend: the table emptied at once where it held that
model's credit alone (SQLite's truncate optimisation, PostgreSQL's ``TRUNCATE``), its date index built again
after the load, and the report an open range sums from the credit it holds equal to the stored credit's."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from attribution import load_settings, run
from attribution.reporting.channel_report import credit_by_channel_date, exact_sums
from attribution.store.credit import replace_credit
from attribution.timerange import TimeRange
from attribution.warehouse.dialects import profile_of
from attribution.warehouse.engine import connect
from attribution.warehouse.schema import index_names
from attribution.warehouse.tables import CreditLabel, attribution_customer_journey
from tests.cases import PAID

LINEAR, LAST_TOUCH = CreditLabel("linear"), CreditLabel("last-touch")


def run_model(db: str, out: Path, model: str) -> None:
    run(load_settings(db=db, out=str(out), formats=("csv",), model=model))


def credit_count(conn) -> int:
    return conn.execute(text("SELECT COUNT(*) FROM attribution_customer_journey")).scalar_one()


def test_an_open_range_empties_the_table_only_when_it_holds_the_model_s_credit_alone(make_db, tmp_path):
    db = make_db(PAID)
    run_model(db, tmp_path / "1", "linear")
    engine = connect(db)
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            emptied = replace_credit(conn, TimeRange(), LINEAR, whole_range=True, incoming=[])
            left = credit_count(conn)
            transaction.rollback()
        assert (emptied, left) == (profile_of(engine).empty_table is not None, 0)  # Redshift: row by row
        run_model(db, tmp_path / "2", "last-touch")
        with engine.connect() as conn, conn.begin() as transaction:
            last_touch = credit_count(conn) / 2
            emptied = replace_credit(conn, TimeRange(), LINEAR, whole_range=True, incoming=[])
            assert (emptied, credit_count(conn)) == (False, last_touch)  # the other model's credit stays
            transaction.rollback()
    finally:
        engine.dispose()


def test_a_rerun_builds_the_date_index_again_and_reports_the_stored_credit_s_sums(make_db, tmp_path):
    db = make_db(PAID)
    for attempt in range(2):
        run_model(db, tmp_path / str(attempt), "linear")
    engine = connect(db)
    try:
        indexes = {ix.name for ix in attribution_customer_journey.indexes}
        if profile_of(engine).indexes:
            assert indexes <= index_names(engine, attribution_customer_journey.name)
        with engine.connect() as conn:
            stored = credit_by_channel_date(conn, None, None, LINEAR)
            reported = conn.execute(
                text("SELECT channel_name, date, ihc, ihc_revenue FROM channel_reporting")
            )
            reported = {(channel, day): (ihc, revenue) for channel, day, ihc, revenue in reported}
    finally:
        engine.dispose()
    assert stored.height and exact_sums(stored).equals(stored)  # already one row per channel and date
    for channel, day, ihc, revenue in stored.iter_rows():
        assert reported[(channel, day)] == (ihc, revenue)  # bit for bit
