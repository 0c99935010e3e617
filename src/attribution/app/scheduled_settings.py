"""A scheduled run's settings: the DAG's params, the scheduler's Variables and connections, the run's day.

Why here and not in the DAG file: the DAG only wires; these rules are tested without a scheduler, through
``Lookups`` (the Variables, the connections as mappings and the log's masking), which the DAG implements.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from attribution.app.connections import Connection, connection_url, http_url, s3_options, tableau_settings
from attribution.errors import ConfigError

ONE_DAY = timedelta(days=1)
"""What a run covers by default: the schedule's interval (``@daily``, UTC)."""
RUN_ONLY = ("run_key", "batch_journeys")
"""Keys of the run's settings that are not settings of the package."""
FROM_VARIABLES = ("model", "conv_type_id", "on_bad_rows", "on_stale")
"""Params that fall back on the Variable ``attribution_<name>`` when empty."""


class Lookups(Protocol):
    """What a scheduler gives: its Variables, its connections (``None`` when missing), its log's masking."""

    def variable(self, name: str, default: Any = None, *, json: bool = False) -> Any: ...

    def connection(self, conn_id: str) -> Connection | None: ...

    def mask(self, secret: str) -> None: ...


class DagRun(Protocol):
    """The fields of a scheduler's run that decide its day and its key."""

    dag_id: str
    run_id: str
    run_type: str
    logical_date: datetime | None
    run_after: datetime


def run_options(params: Mapping[str, Any], dag_run: DagRun, lookups: Lookups) -> dict[str, Any]:
    """The run's settings without secrets, resolved once for all its tasks: params > Variables > the run's day
    and the project's defaults. The range Variables count for manual runs only."""
    from attribution.pipeline.settings import load_settings, public_options

    manual = dag_run.run_type == "manual"

    def given(name: str, variable: bool = True) -> Any:
        return params.get(name) or (variable and lookups.variable(f"attribution_{name}")) or None

    where = "Variable attribution_options"
    options = public_options(lookups.variable("attribution_options", {}, json=True), where)
    start, end = run_day(dag_run)
    explicit = {
        **options,
        "start": given("start", manual) or start,
        "end": given("end", manual) or end,
        **{name: given(name) for name in FROM_VARIABLES},
        "restate_days": params["restate_days"],
        "out": lookups.variable("attribution_out") or _default_out(),
    }
    if formats := lookups.variable("attribution_formats"):
        explicit["formats"] = [name.strip() for name in formats.split(",") if name.strip()]
    if mapping := lookups.variable("attribution_source_mapping"):
        explicit["source_mapping_toml"] = mapping  # the TOML text: every task reads the same mapping
    model = load_settings(**explicit).model.name  # a bad range, format or option fails here, before any work
    run_key = f"{dag_run.dag_id}/{dag_run.run_id}"
    return {**explicit, "model": model, "run_key": run_key, "batch_journeys": params["batch_journeys"]}


def run_day(dag_run: DagRun) -> tuple[str, str]:
    """The UTC day a run covers, from its logical date: for a scheduled or backfill run the day starting at
    it (its data interval), for a manual run the last whole day before it (before the run's start without one).

    Why not the data interval the scheduler hands the task: for a manual run ``airflow dags trigger -l`` infers
    it from the time of the trigger, not from the logical date, and a backfill that reruns a day a manual run
    held keeps that run's interval.
    """
    logical = dag_run.logical_date
    if dag_run.run_type == "manual" or logical is None:
        end = _utc_day(logical or dag_run.run_after)
        start = end - ONE_DAY
    else:
        start = _utc_day(logical)
        end = start + ONE_DAY
    return start.isoformat(), end.isoformat()


def _utc_day(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC day, as a plain ``datetime``."""
    utc = datetime.fromtimestamp(moment.timestamp(), UTC)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


def _default_out() -> str:
    return os.path.join(os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow")), "reports")


def run_settings(run: Mapping[str, Any], lookups: Lookups, **connection: Any) -> Any:
    """The package's settings of the run, with its secrets: the database URL, for the IHC API the key, and
    the settings a task read from a ``connection`` of its own (Tableau)."""
    from attribution.pipeline.settings import load_settings

    values = {name: value for name, value in run.items() if name not in RUN_ONLY} | connection
    if run["model"] == "ihc-api":
        values.update((name, value) for name, value in ihc_api(lookups).items() if value is not None)
    values["storage_options"] = storage_options(lookups)  # for an object-store out and Redshift's COPY
    return load_settings(**values, db=database_url(lookups))


def database_url(lookups: Lookups) -> str | None:
    """From the connection named by Variable ``attribution_db_conn_id`` (default ``attribution_db``), else
    Variable ``attribution_db_url``, else the environment's ``ATTRIBUTION_DB``."""
    from sqlalchemy.engine import make_url

    conn_id = lookups.variable("attribution_db_conn_id", "attribution_db")
    if (conn := lookups.connection(conn_id)) is not None:
        return connection_url(conn)
    url = lookups.variable("attribution_db_url")
    if url is None and "ATTRIBUTION_DB" not in os.environ:
        raise ConfigError(f"No database: add the connection {conn_id!r} or the Variable attribution_db_url")
    if url and "://" in url and (password := make_url(url).password):
        lookups.mask(password)
    return url


def ihc_api(lookups: Lookups) -> dict[str, str | None]:
    """The IHC API key and base URL from the connection named by Variable ``attribution_ihc_conn_id`` (default
    ``ihc_api``: password and host), else the key from the secret Variable ``ihc_api_key``."""
    conn = lookups.connection(lookups.variable("attribution_ihc_conn_id", "ihc_api"))
    if conn is None:
        key, url = lookups.variable("ihc_api_key"), None
    else:
        key, url = conn.get("password"), http_url(conn)
    if key:
        lookups.mask(key)
    return {"ihc_api_key": key or None, "ihc_url": url}


def storage_options(lookups: Lookups) -> dict[str, Any]:
    """Credentials and endpoint for an object-store ``out`` and for the files Redshift's ``COPY`` reads,
    from the connection named by Variable ``attribution_storage_conn_id`` (default ``attribution_storage``);
    without it, what the worker's environment gives s3fs (``AWS_*`` variables, an instance or pod role)."""
    conn = lookups.connection(lookups.variable("attribution_storage_conn_id", "attribution_storage"))
    if conn is None:
        return {}
    options = s3_options(conn)
    for secret in (options.get("secret"), options.get("token")):
        if secret:
            lookups.mask(secret)
    return options


def tableau_options(lookups: Lookups) -> tuple[str, dict[str, Any] | None]:
    """The Tableau connection's id (Variable ``attribution_tableau_conn_id``, default ``tableau_default``) and
    its settings, its secret masked in logs; ``None`` without the connection (publishing not configured)."""
    conn_id = lookups.variable("attribution_tableau_conn_id", "tableau_default")
    conn = lookups.connection(conn_id)
    if conn is None:
        return conn_id, None
    if conn.get("password"):
        lookups.mask(conn["password"])
    return conn_id, tableau_settings(conn)
