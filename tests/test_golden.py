"""Golden files: the SQL every warehouse dialect gets (journeys, paths, report, report inputs, work tables, run
records) and the CSV of a known case, so a change of either shows up in review as a diff of ``tests/golden/``.

Refresh after an intended change with ``ATTRIBUTION_UPDATE_GOLDEN=1 pytest tests/test_golden.py`` and review
the diff like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateTable

from attribution import load_settings, run
from attribution.journeys import JourneyOptions, journey_sql
from attribution.paths import null_paths_sql
from attribution.reporting.channel_report import cost_sql, credit_sql
from attribution.reporting.report_inputs import inputs_sql
from attribution.warehouse.dialects import PROFILES
from attribution.warehouse.schema import add_column_sql
from attribution.warehouse.sources import Sources
from attribution.warehouse.tables import WORK_TABLES, attribution_runs
from tests.cases import PAID

GOLDEN = Path(__file__).parent / "golden"
OPTIONS = {
    "plain": JourneyOptions(),
    "lookback-drop-impressions-unattributed": JourneyOptions(
        lookback_days=30, drop_impressions=True, only_unattributed=True
    ),
    "skip-bad-rows": JourneyOptions(skip_bad_rows=True),
}


def _dialects() -> dict[str, object]:
    from sqlalchemy_redshift.dialect import RedshiftDialect_redshift_connector

    return {
        "sqlite": sqlite.dialect(),
        "postgresql": postgresql.dialect(),
        "redshift": RedshiftDialect_redshift_connector(),
    }


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("ATTRIBUTION_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with ATTRIBUTION_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(), f"{name} differs from its golden file"


def sql_cases() -> list[tuple[str, str]]:
    cases = []
    for dialect, profile in PROFILES.items():
        sources = Sources.canonical(profile)  # the challenge's tables, as a warehouse without a mapping
        for label, options in OPTIONS.items():
            cases.append((f"sql/{dialect}/journeys-{label}.sql", journey_sql(sources, options)))
            cases.append((f"sql/{dialect}/null-paths-{label}.sql", null_paths_sql(sources, options)))
            cases.append((f"sql/{dialect}/report-inputs-{label}.sql", inputs_sql(sources, options)))
    sources = Sources.canonical(PROFILES["sqlite"])
    for dated in (False, True):
        cases.append((f"sql/report-credit{'-dated' if dated else ''}.sql", credit_sql(sources, dated=dated)))
    cases.append(("sql/report-cost-dated.sql", cost_sql(sources)))
    return cases


@pytest.mark.parametrize(("name", "text"), sql_cases(), ids=[name for name, _ in sql_cases()])
def test_each_dialect_gets_the_reviewed_sql(name, text):
    assert_golden(name, text.strip() + "\n")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "redshift"])
def test_each_dialect_gets_the_reviewed_staging_tables(dialect):
    compiled = _dialects()[dialect]
    ddl = "\n".join(
        str(CreateTable(table).compile(dialect=compiled)).strip() + ";\n" for table in WORK_TABLES
    )
    assert_golden(f"sql/{dialect}/staging-tables.sql", ddl)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "redshift"])
def test_each_dialect_gets_the_reviewed_run_records_and_their_upgrade_to_leases(dialect):
    compiled = _dialects()[dialect]
    lease = [attribution_runs.c.heartbeat_at, attribution_runs.c.lease_seconds]
    ddl = [str(CreateTable(attribution_runs).compile(dialect=compiled)).strip()]
    ddl += [add_column_sql(column, compiled) for column in lease]  # a table made by an earlier version
    assert_golden(f"sql/{dialect}/run-records.sql", ";\n\n".join(ddl) + ";\n")


def test_the_csv_of_a_known_case_is_the_reviewed_one(make_sqlite, tmp_path):
    db = make_sqlite(PAID)
    run(load_settings(db=db, out=str(tmp_path), formats=("csv",), model="linear"))
    assert_golden("channel_reporting-linear.csv", (tmp_path / "channel_reporting.csv").read_text())
