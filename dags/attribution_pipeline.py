"""attribution_pipeline: the attribution pipeline on a schedule, one task per step.

Wiring only: each task is a thin call into ``attribution.pipeline.staged`` (the pipeline's steps in batches). Tasks
hand each other the run's settings without secrets, batch ids and file URIs; journeys and credit stay in the
warehouse's staging tables, keyed by run. The package, connections and Variables are read inside tasks, never
while the scheduler parses this file. Configuration, ranges and the concurrency rule: docs/airflow.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import ModuleType
from typing import Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

log = logging.getLogger(__name__)

MODEL_NAMES = (
    "first-touch",
    "ihc",
    "last-non-direct",
    "last-touch",
    "linear",
    "markov",
    "position-based",
    "shapley",
    "time-decay",
    "ihc-api",
)
"""The ``model`` param's choices: ``attribution.models.MODELS`` and the IHC API. Written out because importing
the package while the scheduler parses this file would cost seconds per parse; a test keeps them equal."""
DATE_OR_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:?\d{2})?)?$"
OPTIONAL_TEXT = ["null", "string"]
ONE_DAY = timedelta(days=1)
"""What a run covers by default: the schedule's interval (``@daily``, UTC)."""
RUN_ONLY = ("run_key", "batch_journeys")
"""Keys of the run's settings that are not ``attribution.Settings`` fields."""
PARAMS = {
    "start": Param(
        None,
        type=OPTIONAL_TEXT,
        pattern=DATE_OR_TIMESTAMP,
        description="First conversion time included, UTC ISO date or timestamp. Empty: the run's day's start.",
    ),
    "end": Param(
        None,
        type=OPTIONAL_TEXT,
        pattern=DATE_OR_TIMESTAMP,
        description="First conversion time excluded. Empty: the run's day's end.",
    ),
    "model": Param(
        None,
        type=OPTIONAL_TEXT,
        enum=[None, *MODEL_NAMES],
        description="Empty: Variable attribution_model, else the project's default (ihc).",
    ),
    "conv_type_id": Param(
        None,
        type=OPTIONAL_TEXT,
        minLength=1,
        maxLength=200,
        description="IHC conversion type. Empty: Variable attribution_conv_type_id, else 'default'.",
    ),
    "on_bad_rows": Param(
        None,
        type=OPTIONAL_TEXT,
        enum=[None, "error", "skip"],
        description="Input rows a check finds bad: error (stop before writing) or skip (leave them out of "
        "journeys, counted). Empty: Variable attribution_on_bad_rows, else error.",
    ),
    "on_stale": Param(
        "error",
        type=OPTIONAL_TEXT,
        enum=[None, "error", "warn"],
        description="A date whose inputs look not yet landed (paid sessions without cost rows, no session in "
        "the day's last hours): error (stop before writing; the retry runs once they have landed) or warn.",
    ),
    "restate_days": Param(
        0,
        type="integer",
        minimum=0,
        maximum=90,
        description="Also look at the N days before the run's day and redo those whose inputs changed: spend "
        "the ad platforms restated, sessions and conversions that landed late; 3 suits a daily schedule "
        "(GA4's export admits events up to 72 hours late).",
    ),
    "batch_journeys": Param(5_000, type="integer", minimum=1, description="Journeys per attribute task."),
}


def record_failure(context: Any) -> None:
    """A task failed for good (no retry left, or an error retrying cannot fix): the run's record in
    ``attribution_runs`` says ``failed`` with the error's line, as a CLI run's does. Nothing to record if the
    first task failed: the run had not started."""
    from airflow.sdk.exceptions import AirflowFailException

    run = context["ti"].xcom_pull(task_ids="prepare_warehouse")
    error = context.get("exception")
    if run is None or not isinstance(error, BaseException):
        return
    if isinstance(error, AirflowFailException) and error.__cause__:  # _package's wrapper: the project's error
        error = error.__cause__
    with _package() as staged:
        staged.fail_run(_settings(run), run["run_key"], error)


@dag(
    dag_id="attribution_pipeline",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),  # @daily as intervals, not instants
    start_date=pendulum.datetime(2020, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "on_failure_callback": record_failure,
    },
    params=PARAMS,
    tags=["attribution"],
    doc_md=__doc__,
)
def attribution_pipeline() -> None:
    run = prepare_warehouse()
    attributed = attribute_batch.partial(run=run).expand(batch_id=stage_journeys(run))
    files = export_report(run)
    attributed >> store_credits(run) >> files
    publish_tableau(run, files)


@task
def prepare_warehouse() -> dict[str, Any]:
    """Resolve and check the run's settings, then check the inputs and create missing tables and indexes."""
    with _package() as staged:
        run = _run_settings()
        for note in staged.prepare_run(_settings(run)):
            log.warning(note)
    return run


@task
def stage_journeys(run: dict[str, Any]) -> list[int]:
    """Write the range's journeys into staging in batches; the batch ids."""
    from airflow.sdk import conf

    with _package() as staged:
        limit = conf.getint("core", "max_map_length")
        plan = staged.stage_journeys(_settings(run), run["run_key"], run["batch_journeys"], limit)
        return plan.batch_ids


@task(max_active_tis_per_dagrun=4)
def attribute_batch(run: dict[str, Any], batch_id: int) -> dict[str, int]:
    """Attribute one staged batch (mapped: batches run in parallel, each retried on its own)."""
    with _package() as staged:
        return staged.attribute_batch(_settings(run), run["run_key"], batch_id)


@task(trigger_rule="none_failed")  # after zero batches too: a day without conversions still gets its report
def store_credits(run: dict[str, Any]) -> dict[str, Any] | None:
    """Replace the range's credit and rebuild the report rows it touches, in one transaction."""
    with _package() as staged:
        summary = staged.finish_run(_settings(run), run["run_key"])
    return None if summary is None else vars(summary)


@task
def export_report(run: dict[str, Any]) -> dict[str, str]:
    """Write the report files (CSV and the project's other formats); their URIs."""
    with _package() as staged:
        return staged.export_files(_settings(run), run["run_key"])


@task
def publish_tableau(run: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """Publish the run's Hyper extract to Tableau, replacing the data source of that name; skipped when the
    Tableau connection is not there (publishing not configured)."""
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowSkipException

    conn_id = Variable.get("attribution_tableau_conn_id", default="tableau_default")
    with _package() as staged:
        tableau = _tableau(conn_id)
        if tableau is None:
            raise AirflowSkipException(f"No connection {conn_id!r}: publishing to Tableau is not configured")
        return staged.publish_extract(_settings(run, **tableau), files)


@contextmanager
def _package() -> Iterator[ModuleType]:
    """``attribution.pipeline.staged``, imported in the task. Errors retrying cannot fix (``TerminalError``: a bad
    setting, a missing table) fail the task at once instead of after its retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from attribution.errors import TerminalError
    from attribution.pipeline import staged

    try:
        yield staged
    except TerminalError as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def _run_settings() -> dict[str, Any]:
    """The run's settings without secrets, resolved once for all its tasks: params > Variables > the run's day
    and the project's defaults. The range Variables count for manual runs only."""
    from airflow.sdk import Variable

    from attribution.pipeline.settings import load_settings, public_options

    context = get_current_context()
    params, dag_run = context["params"], context["dag_run"]
    manual = dag_run.run_type == "manual"

    def given(name: str, variable: bool = True) -> Any:
        return params.get(name) or (variable and Variable.get(f"attribution_{name}", default=None)) or None

    where = "Variable attribution_options"
    options = public_options(Variable.get("attribution_options", default={}, deserialize_json=True), where)
    start, end = run_day(dag_run)
    explicit = {
        **options,
        "start": given("start", manual) or start,
        "end": given("end", manual) or end,
        "model": given("model"),
        "conv_type_id": given("conv_type_id"),
        "on_bad_rows": given("on_bad_rows"),
        "on_stale": given("on_stale"),
        "restate_days": params["restate_days"],
        "out": Variable.get("attribution_out", default=None) or _default_out(),
    }
    if formats := Variable.get("attribution_formats", default=None):
        explicit["formats"] = [name.strip() for name in formats.split(",") if name.strip()]
    if mapping := Variable.get("attribution_source_mapping", default=None):
        explicit["source_mapping_toml"] = mapping  # the TOML text: every task reads the same mapping
    model = load_settings(**explicit).model  # a bad range, format or option fails here, before any work
    run_key = f"{dag_run.dag_id}/{dag_run.run_id}"
    return {**explicit, "model": model, "run_key": run_key, "batch_journeys": params["batch_journeys"]}


def run_day(dag_run: Any) -> tuple[str, str]:
    """The UTC day a run covers, from its logical date: for a scheduled or backfill run the day starting at
    it (its data interval), for a manual run the last whole day before it (before the run's start without one).

    Why not the data interval Airflow hands the task: for a manual run ``airflow dags trigger -l`` infers it
    from the time of the trigger, not from the logical date, and a backfill that reruns a day a manual run
    held keeps that run's interval.
    """
    logical = dag_run.logical_date
    if dag_run.run_type == "manual" or logical is None:
        end = pendulum.instance(logical or dag_run.run_after).in_timezone("UTC").start_of("day")
        start = end - ONE_DAY
    else:
        start = pendulum.instance(logical).in_timezone("UTC").start_of("day")
        end = start + ONE_DAY
    return start.isoformat(), end.isoformat()


def _default_out() -> str:
    return os.path.join(os.path.expanduser(os.environ.get("AIRFLOW_HOME", "~/airflow")), "reports")


def _settings(run: dict[str, Any], **connection: Any) -> Any:
    """``attribution.Settings`` of the run, with its secrets: the database URL, for the IHC API the key, and
    the settings a task read from a ``connection`` of its own (Tableau)."""
    from attribution.pipeline.settings import load_settings

    values = {name: value for name, value in run.items() if name not in RUN_ONLY} | connection
    if run["model"] == "ihc-api":
        values.update((name, value) for name, value in _ihc_api().items() if value is not None)
    values["storage_options"] = _storage_options()  # for an object-store out and Redshift's staged COPY
    return load_settings(**values, db=_database_url())


def _database_url() -> str | None:
    """From the connection named by Variable ``attribution_db_conn_id`` (default ``attribution_db``), else
    Variable ``attribution_db_url``, else the environment's ``ATTRIBUTION_DB``."""
    from airflow.sdk import BaseHook, Variable
    from airflow.sdk.exceptions import AirflowNotFoundException
    from airflow.sdk.log import mask_secret
    from sqlalchemy.engine import make_url

    from attribution.errors import ConfigError

    conn_id = Variable.get("attribution_db_conn_id", default="attribution_db")
    try:
        return connection_url(BaseHook.get_connection(conn_id))
    except AirflowNotFoundException:
        url = Variable.get("attribution_db_url", default=None)
    if url is None and "ATTRIBUTION_DB" not in os.environ:
        raise ConfigError(f"No database: add the connection {conn_id!r} or the Variable attribution_db_url")
    if url and "://" in url and make_url(url).password:
        mask_secret(make_url(url).password)
    return url


def connection_url(conn: Any) -> str:
    """A SQLAlchemy URL from an Airflow connection of type ``sqlite`` (host: the file), ``postgres`` or
    ``redshift``.

    Why not Airflow's own URI: it percent-encodes a SQLite path and names no driver for psycopg.
    """
    from sqlalchemy.engine import URL

    from attribution.errors import ConfigError

    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host or conn.schema}"
    drivers = {
        "postgres": "postgresql+psycopg",
        "postgresql": "postgresql+psycopg",
        "redshift": "redshift+redshift_connector",
    }
    if conn.conn_type in drivers:
        parts = (conn.login, conn.password, conn.host, conn.port, conn.schema)
        url = URL.create(drivers[conn.conn_type], *(part or None for part in parts))
        return url.render_as_string(hide_password=False)
    raise ConfigError(
        f"Connection {conn.conn_id!r} has type {conn.conn_type!r}: add it by URI as sqlite:////path/to.db or "
        "postgresql://user:password@host:5432/database, or use a postgres or redshift connection, or set the "
        "Variable attribution_db_url"
    )


def _ihc_api() -> dict[str, str | None]:
    """The IHC API key and base URL from the connection named by Variable ``attribution_ihc_conn_id`` (default
    ``ihc_api``: password and host), else the key from the secret Variable ``ihc_api_key``."""
    from airflow.sdk import BaseHook, Variable
    from airflow.sdk.exceptions import AirflowNotFoundException
    from airflow.sdk.log import mask_secret

    conn_id = Variable.get("attribution_ihc_conn_id", default="ihc_api")
    try:
        conn = BaseHook.get_connection(conn_id)
        key, url = conn.password, http_url(conn)
    except AirflowNotFoundException:
        key, url = Variable.get("ihc_api_key", default=None), None
    if key:
        mask_secret(key)
    return {"ihc_api_key": key or None, "ihc_url": url}


def _storage_options() -> dict[str, Any]:
    """Credentials and endpoint for an object-store ``out`` and for the files Redshift's ``COPY`` reads,
    from the connection named by Variable ``attribution_storage_conn_id`` (default ``attribution_storage``);
    without it, what the worker's environment gives s3fs (``AWS_*`` variables, an instance or pod role)."""
    from airflow.sdk import BaseHook, Variable
    from airflow.sdk.exceptions import AirflowNotFoundException
    from airflow.sdk.log import mask_secret

    conn_id = Variable.get("attribution_storage_conn_id", default="attribution_storage")
    try:
        options = s3_options(BaseHook.get_connection(conn_id))
    except AirflowNotFoundException:
        return {}
    for secret in (options.get("secret"), options.get("token")):
        if secret:
            mask_secret(secret)
    return options


def s3_options(conn: Any) -> dict[str, Any]:
    """s3fs options from an ``aws`` connection: login = access key id, password = secret key, extra
    ``endpoint_url``, ``region_name`` and ``aws_session_token``; only what is given, so the environment
    fills the rest."""
    from attribution.errors import ConfigError

    if conn.conn_type not in ("aws", "s3"):
        raise ConfigError(
            f"Connection {conn.conn_id!r} has type {conn.conn_type!r}: give the object store as type aws "
            "(login: access key id, password: secret key, extra: endpoint_url, region_name)"
        )
    extra = conn.extra_dejson
    region = extra.get("region_name")
    options = {
        "key": conn.login,
        "secret": conn.password,
        "token": extra.get("aws_session_token"),
        "endpoint_url": extra.get("endpoint_url"),
        "client_kwargs": {"region_name": region} if region else None,
    }
    return {name: value for name, value in options.items() if value}


def _tableau(conn_id: str) -> dict[str, Any] | None:
    """The Tableau settings of the connection ``conn_id``, its password masked in logs; ``None`` without it."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException
    from airflow.sdk.log import mask_secret

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    if conn.password:
        mask_secret(conn.password)
    return tableau_settings(conn)


def tableau_settings(conn: Any) -> dict[str, Any]:
    """Settings from a Tableau connection: host = the server's URL, login = the personal access token's name,
    password = its secret, extra ``site`` (the site's content URL; none: the default site), ``project`` and
    ``datasource`` (default: ``channel_reporting``)."""
    from attribution.errors import ConfigError

    extra = conn.extra_dejson
    settings = {
        "tableau_url": http_url(conn),
        "tableau_token_name": conn.login,
        "tableau_token_secret": conn.password,
        "tableau_site": extra.get("site"),
        "tableau_project": extra.get("project"),
        "tableau_datasource": extra.get("datasource"),
    }
    needed = {
        "tableau_url": "host",
        "tableau_token_name": "login",
        "tableau_token_secret": "password",
        "tableau_project": 'extra "project"',
    }
    if missing := [where for name, where in needed.items() if not settings[name]]:
        raise ConfigError(
            f"Connection {conn.conn_id!r} lacks its {', '.join(missing)}: host = the Tableau server's URL, "
            'login = the personal access token\'s name, password = its secret, extra {"site": ..., "project": ...}'
        )
    return {name: value for name, value in settings.items() if value is not None}


def http_url(conn: Any) -> str | None:
    """The base URL an HTTP connection names: its host if that is a URL, else scheme, host and port."""
    if not conn.host or "://" in conn.host:
        return conn.host or None
    scheme = conn.schema or (conn.conn_type if conn.conn_type in ("http", "https") else "https")
    return f"{scheme}://{conn.host}{f':{conn.port}' if conn.port else ''}"


attribution_pipeline()
