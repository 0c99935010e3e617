"""``attribution calibrate-ihc`` end to end: a CSV of real answers in, a new stored version out (or one red line)."""

from __future__ import annotations

import polars as pl
import pytest

from attribution.models.ihc_calibration import calibrate
from attribution.store.parameters import list_conversion_types, load_parameters
from attribution.warehouse.engine import connect
from tests.cases import PAID
from tests.commands import attribution


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
