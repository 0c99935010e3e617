"""A scheduled run's settings from params, Variables and connections given as plain mappings (no scheduler):
the precedence, the run's day, where each secret comes from and that it is masked in the log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from attribution.app import scheduled_settings as scheduled
from attribution.errors import ConfigError

PARAMS = {"restate_days": 0, "batch_journeys": 10}


@dataclass
class Lookups:
    """A scheduler's Variables and connections as dicts; what it was asked to mask."""

    variables: dict[str, Any] = field(default_factory=dict)
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    masked: list[str] = field(default_factory=list)

    def variable(self, name: str, default: Any = None, *, json: bool = False) -> Any:
        return self.variables.get(name, default)

    def connection(self, conn_id: str) -> dict[str, Any] | None:
        return self.connections.get(conn_id)

    def mask(self, secret: str) -> None:
        self.masked.append(secret)


@dataclass
class DagRun:
    run_type: str
    logical_date: datetime | None
    run_after: datetime = datetime(2023, 9, 2, 7, 30, tzinfo=UTC)
    dag_id: str = "attribution_pipeline"
    run_id: str = "manual__1"


def test_a_scheduled_run_covers_the_day_of_its_logical_date_a_manual_one_the_day_before():
    scheduled_run = DagRun("scheduled", datetime(2023, 9, 1, tzinfo=UTC))
    assert scheduled.run_day(scheduled_run) == ("2023-09-01T00:00:00+00:00", "2023-09-02T00:00:00+00:00")
    manual = DagRun("manual", datetime(2023, 9, 2, 5, tzinfo=UTC))
    assert scheduled.run_day(manual) == ("2023-09-01T00:00:00+00:00", "2023-09-02T00:00:00+00:00")
    without_date = DagRun("manual", None)
    assert scheduled.run_day(without_date) == ("2023-09-01T00:00:00+00:00", "2023-09-02T00:00:00+00:00")


def test_params_beat_variables_which_beat_the_defaults():
    lookups = Lookups(
        {"attribution_model": "markov", "attribution_on_bad_rows": "skip", "attribution_out": "/r"}
    )
    run = scheduled.run_options(
        {**PARAMS, "model": "linear"}, DagRun("scheduled", datetime(2023, 9, 1)), lookups
    )
    assert (run["model"], run["on_bad_rows"], run["out"]) == ("linear", "skip", "/r")
    assert run["run_key"] == "attribution_pipeline/manual__1" and run["batch_journeys"] == 10


def test_the_range_variables_count_for_manual_runs_only():
    lookups = Lookups({"attribution_start": "2023-08-01", "attribution_end": "2023-08-02"})
    manual = scheduled.run_options(PARAMS, DagRun("manual", datetime(2023, 9, 2)), lookups)
    assert (manual["start"], manual["end"]) == ("2023-08-01", "2023-08-02")
    daily = scheduled.run_options(PARAMS, DagRun("scheduled", datetime(2023, 9, 1, tzinfo=UTC)), lookups)
    assert daily["start"] == "2023-09-01T00:00:00+00:00"


def test_the_options_variable_never_sets_a_secret():
    lookups = Lookups({"attribution_options": {"IHC_API_KEY": "k3y"}})
    with pytest.raises(ConfigError, match="must not hold ihc_api_key"):
        scheduled.run_options(PARAMS, DagRun("manual", None), lookups)


def test_the_ihc_key_comes_from_the_connection_else_from_the_secret_variable_and_is_masked():
    connection = {
        "conn_id": "ihc_api",
        "conn_type": "http",
        "host": "https://ihc.example.com",
        "password": "k1",
    }
    lookups = Lookups(connections={"ihc_api": connection})
    assert scheduled.ihc_api(lookups) == {"ihc_api_key": "k1", "ihc_url": "https://ihc.example.com"}
    lookups = Lookups({"ihc_api_key": "k2"})
    assert scheduled.ihc_api(lookups) == {"ihc_api_key": "k2", "ihc_url": None}
    assert lookups.masked == ["k2"]


def test_the_database_comes_from_the_connection_else_from_a_variable_else_a_clear_error(monkeypatch):
    monkeypatch.delenv("ATTRIBUTION_DB", raising=False)
    sqlite = {"conn_id": "warehouse", "conn_type": "sqlite", "host": "/data/w.db"}
    by_id = {"attribution_db_conn_id": "warehouse"}
    assert scheduled.database_url(Lookups(by_id, {"warehouse": sqlite})) == "sqlite:////data/w.db"
    lookups = Lookups({**by_id, "attribution_db_url": "postgresql+psycopg://reader:pw@db/warehouse"})
    assert scheduled.database_url(lookups) == "postgresql+psycopg://reader:pw@db/warehouse"
    assert lookups.masked == ["pw"]
    with pytest.raises(ConfigError, match="No database: add the connection 'warehouse'"):
        scheduled.database_url(Lookups(by_id))


def test_the_storage_connection_gives_the_object_store_options_its_secrets_masked():
    aws = {"conn_id": "attribution_storage", "conn_type": "aws", "login": "AKIA", "password": "s3cret"}
    lookups = Lookups(connections={"attribution_storage": aws})
    assert scheduled.storage_options(lookups) == {"key": "AKIA", "secret": "s3cret"}
    assert lookups.masked == ["s3cret"] and scheduled.storage_options(Lookups()) == {}


def test_publishing_is_not_configured_without_the_tableau_connection():
    assert scheduled.tableau_options(Lookups()) == ("tableau_default", None)
    tableau = {"conn_id": "t", "conn_type": "generic", "host": "https://t.example", "login": "ci",
               "password": "pat", "extra": {"project": "P"}}  # fmt: skip
    conn_id, settings = scheduled.tableau_options(
        Lookups({"attribution_tableau_conn_id": "t"}, {"t": tableau})
    )
    assert conn_id == "t" and settings["tableau_token_secret"] == "pat"


def test_a_run_s_settings_hold_the_secrets_of_its_connections(tmp_path):
    ihc = {"conn_id": "ihc_api", "conn_type": "http", "host": "http://127.0.0.1:9", "password": "k3y"}
    db = {"conn_id": "attribution_db", "conn_type": "sqlite", "host": str(tmp_path / "w.db")}
    lookups = Lookups(connections={"ihc_api": ihc, "attribution_db": db})
    run = {
        "model": "ihc-api",
        "start": "2023-09-01",
        "end": "2023-09-02",
        "run_key": "k",
        "batch_journeys": 1,
    }
    settings = scheduled.run_settings(run, lookups)
    assert settings.ihc_api.api_key.get_secret_value() == "k3y" and settings.warehouse.db.endswith("w.db")
