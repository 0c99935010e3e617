"""``attribution calibrate-ihc`` end to end: a CSV of real answers in, a new stored version out (or one red line)."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import polars as pl
import pytest
from pydantic import SecretStr

from attribution import load_settings, run
from attribution.models.ihc_calibration import calibrate
from attribution.sample_data.generate import generate_database
from attribution.store.parameters import list_conversion_types, load_parameters
from attribution.warehouse.engine import connect
from tests.cases import PAID
from tests.commands import attribution
from tests.servers import API_KEY


@pytest.fixture
def answers_csv(real_answers, tmp_path):
    path = tmp_path / "answers.csv"
    real_answers.write_csv(path)
    return path


def stored(db: str) -> pl.DataFrame:
    engine = connect(db)
    try:
        return list_conversion_types(engine, all_versions=True)
    finally:
        engine.dispose()


def test_the_command_stores_a_new_version_and_prints_the_cross_validated_error(
    make_sqlite, answers_csv, real_answers
):
    db = make_sqlite(PAID)
    for version in (1, 2):
        result = attribution(
            "calibrate-ihc", "--answers", str(answers_csv), "--conversion-type", "real", "--db", db
        )
        assert result.returncode == 0, result.stderr
        assert f"Stored IHC parameters 'real' version {version}" in result.stdout
        assert "Cross-validated mean absolute error" in result.stdout and "ihc 0.000" in result.stdout
    assert stored(db).select("conv_type_id", "version").rows() == [("real", 1), ("real", 2)]
    engine = connect(db)
    assert load_parameters(engine, "real") == calibrate(real_answers)
    engine.dispose()


def test_a_bad_answers_file_is_one_red_line_naming_the_journey_and_stores_nothing(
    make_sqlite, real_answers, tmp_path
):
    path = tmp_path / "bad.csv"
    real_answers.with_columns(pl.col("closer") * 0.9).write_csv(path)
    db = make_sqlite(PAID)
    result = attribution("calibrate-ihc", "--answers", str(path), "--conversion-type", "real", "--db", db)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "closer sums to" in result.stderr
    assert stored(db).is_empty()


def test_a_missing_answers_file_is_named(make_sqlite, tmp_path):
    result = attribution(
        "calibrate-ihc",
        "--answers",
        str(tmp_path / "none.csv"),
        "--conversion-type",
        "real",
        "--db",
        make_sqlite(PAID),
    )
    assert result.returncode == 1 and "none.csv not found" in result.stderr


def test_answers_stored_by_ihc_api_runs_calibrate_a_type_that_gives_the_services_credit(ihc_server, tmp_path):
    db = tmp_path / "sample.db"
    generate_database(db, sessions=20_000, conversions=1_000, days=5, seed=5)
    api = load_settings(db=str(db), out=str(tmp_path / "api"), model="ihc-api", ihc_url=ihc_server.url)
    run(api.replaced(ihc_api_key=SecretStr(API_KEY)))
    api_credit = credit_by_session(str(db), "ihc-api")
    result = attribution(
        "calibrate-ihc", "--db", str(db), "--conv-type-id", "offline", "--from-conv-type", "default"
    )
    assert result.returncode == 0, result.stderr
    assert "Stored IHC parameters 'offline' version 1" in result.stdout
    run(load_settings(db=str(db), out=str(tmp_path / "local"), model="ihc", conv_type_id="offline"))
    local_credit = credit_by_session(str(db), "ihc")
    assert local_credit.keys() == api_credit.keys()
    errors = [abs(local_credit[key] - api_credit[key]) for key in api_credit]
    assert sum(errors) / len(errors) < 0.002


def credit_by_session(db: str, model: str) -> dict[tuple[str, str], float]:
    """One model's stored credit (every model's is kept side by side)."""
    sql = "SELECT conv_id, session_id, ihc FROM attribution_customer_journey WHERE model = ?"
    with closing(sqlite3.connect(db)) as con:
        return {(c, s): ihc for c, s, ihc in con.execute(sql, (model,))}


def test_without_stored_answers_the_command_says_what_to_run_first(make_sqlite):
    result = attribution("calibrate-ihc", "--db", make_sqlite(PAID), "--conv-type-id", "offline")
    assert result.returncode == 1 and "No stored IHC API answers" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
