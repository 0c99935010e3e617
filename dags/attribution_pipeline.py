"""attribution_pipeline: the attribution pipeline on a schedule, one task per step.

Wiring only: each task is a thin call into ``attribution.pipeline.scheduled`` (the pipeline's steps in
batches); the run's settings come from ``attribution.app.scheduled_settings``, given the scheduler's params,
Variables and connections (``_Airflow``). Tasks hand each other the run's settings without secrets, batch ids
and file URIs; journeys and credit stay in the warehouse's staging tables, keyed by run. The package,
connections and Variables are read inside tasks, never while the scheduler parses this file. Configuration,
ranges and the concurrency rule: docs/airflow.md.
"""

from __future__ import annotations

import logging
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
    with _package() as scheduled:
        scheduled.fail_run(_settings(run), run["run_key"], error)


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
    with _package() as scheduled:
        run = _run_settings()
        for note in scheduled.prepare_run(_settings(run)):
            log.warning(note)
    return run


@task
def stage_journeys(run: dict[str, Any]) -> list[int]:
    """Write the range's journeys into staging in batches; the batch ids."""
    from airflow.sdk import conf

    with _package() as scheduled:
        limit = conf.getint("core", "max_map_length")
        plan = scheduled.stage_journeys(_settings(run), run["run_key"], run["batch_journeys"], limit)
        return plan.batch_ids


@task(max_active_tis_per_dagrun=4)
def attribute_batch(run: dict[str, Any], batch_id: int) -> dict[str, int]:
    """Attribute one staged batch (mapped: batches run in parallel, each retried on its own)."""
    with _package() as scheduled:
        return scheduled.attribute_batch(_settings(run), run["run_key"], batch_id)


@task(trigger_rule="none_failed")  # after zero batches too: a day without conversions still gets its report
def store_credits(run: dict[str, Any]) -> dict[str, Any] | None:
    """Replace the range's credit and rebuild the report rows it touches, in one transaction."""
    with _package() as scheduled:
        summary = scheduled.finish_run(_settings(run), run["run_key"])
    return None if summary is None else vars(summary)


@task
def export_report(run: dict[str, Any]) -> dict[str, str]:
    """Write the report files (CSV and the project's other formats); their URIs."""
    with _package() as scheduled:
        return scheduled.export_files(_settings(run), run["run_key"])


@task
def publish_tableau(run: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """Publish the run's Hyper extract to Tableau, replacing the data source of that name; skipped when the
    Tableau connection is not there (publishing not configured)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from attribution.app.scheduled_settings import tableau_options

    with _package() as scheduled:
        conn_id, tableau = tableau_options(_Airflow())
        if tableau is None:
            raise AirflowSkipException(f"No connection {conn_id!r}: publishing to Tableau is not configured")
        return scheduled.publish_extract(_settings(run, **tableau), files)


@contextmanager
def _package() -> Iterator[ModuleType]:
    """``attribution.pipeline.scheduled``, imported in the task. Errors retrying cannot fix (``TerminalError``: a bad
    setting, a missing table) fail the task at once instead of after its retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from attribution.errors import TerminalError
    from attribution.pipeline import scheduled

    try:
        yield scheduled
    except TerminalError as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


class _Airflow:
    """The scheduler's Variables, connections (as plain mappings) and log masking, for
    ``attribution.app.scheduled_settings``: what a run's settings are made of."""

    def variable(self, name: str, default: Any = None, *, json: bool = False) -> Any:
        from airflow.sdk import Variable

        return Variable.get(name, default=default, deserialize_json=json)

    def connection(self, conn_id: str) -> dict[str, Any] | None:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            return None
        fields = ("conn_id", "conn_type", "host", "port", "login", "password", "schema")
        return {name: getattr(conn, name) for name in fields} | {"extra": conn.extra_dejson}

    def mask(self, secret: str) -> None:
        from airflow.sdk.log import mask_secret

        mask_secret(secret)


def _run_settings() -> dict[str, Any]:
    """The run's settings without secrets, resolved once for all its tasks."""
    from attribution.app.scheduled_settings import run_options

    context = get_current_context()
    return run_options(context["params"], context["dag_run"], _Airflow())


def _settings(run: dict[str, Any], **connection: Any) -> Any:
    """The package's settings of the run, with its secrets (the database URL, the IHC API key)."""
    from attribution.app.scheduled_settings import run_settings

    return run_settings(run, _Airflow(), **connection)


attribution_pipeline()
