"""The flags the commands share, as Typer parameter types: each says its setting, default and environment
variable. Most are ``None`` when not given, so the settings' precedence (flag > environment > default)
decides.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from attribution.errors import ConfigError
from attribution.models.names import MODEL_NAMES
from attribution.pipeline.defaults import DEFAULT_DB, DEFAULT_MODEL, DEFAULT_OUT
from attribution.sample_data import options as gen

Command = Callable[..., Any]


def _option(kind: object, help_text: str, *flag: str) -> object:
    """An optional flag of ``kind`` (``None`` when not given: the settings' precedence decides)."""
    return Annotated[kind | None, typer.Option(*flag, help=help_text)]


LocalIhc = Annotated[
    bool, typer.Option(help="ihc-api: start the project's own IHC server for this run and use it.")
]


SETTING_FLAGS: dict[str, object] = {
    "db": Annotated[
        str | None,
        typer.Option(
            "--db", help=f"SQLite file path or SQLAlchemy URL (env ATTRIBUTION_DB; default {DEFAULT_DB})."
        ),
    ],
    "source_mapping": Annotated[
        str | None,
        typer.Option(
            "--source-mapping",
            help="TOML file naming the inputs' schema, tables, columns and time zones (env "
            "ATTRIBUTION_SOURCE_MAPPING; default: the challenge's names; docs/data.md).",
        ),
    ],
    "create_indexes": Annotated[
        bool | None,
        typer.Option(
            help="Add the journey indexes to the input tables if missing (default: on SQLite only; "
            "env ATTRIBUTION_CREATE_INDEXES)."
        ),
    ],
    "start": Annotated[
        str | None,
        typer.Option(
            help="First conversion time included: ISO date or timestamp (UTC, or the report time zone)."
        ),
    ],
    "end": Annotated[
        str | None,
        typer.Option(
            help="First conversion time excluded: ISO date or timestamp (UTC, or the report time zone)."
        ),
    ],
    "model": Annotated[
        str | None,
        typer.Option(help=f"Attribution model: {', '.join(MODEL_NAMES)} (default {DEFAULT_MODEL})."),
    ],
    "report_model": Annotated[
        str | None,
        typer.Option(
            help="The model the report and its files count, the model of record (env ATTRIBUTION_REPORT_MODEL; "
            "default: the run's model)."
        ),
    ],
    "out": Annotated[
        str | None,
        typer.Option(
            "--out",
            help=f"Directory or URL (s3://bucket/prefix) for the report files (default {DEFAULT_OUT}/); "
            "object store credentials from the environment (AWS_*), never a flag.",
        ),
    ],
    "formats": Annotated[
        list[str] | None,
        typer.Option("--format", help="Report file to write (repeatable): csv, parquet, html, hyper."),
    ],
    "lookback_days": Annotated[
        int | None, typer.Option(help="Only sessions at most this many days before the conversion.")
    ],
    "drop_impressions": Annotated[
        bool | None, typer.Option(help="Leave impression-only sessions out of journeys.")
    ],
    "on_bad_rows": Annotated[
        str | None,
        typer.Option(
            help="Input rows an input check finds bad: error (stop before writing, naming them; the default) or "
            "skip (leave them out of journeys and count them; env ATTRIBUTION_ON_BAD_ROWS). "
            "`attribution check` lists them."
        ),
    ],
    "on_stale": Annotated[
        str | None,
        typer.Option(
            help="A date whose inputs look not yet landed (paid sessions without cost rows, no session in the "
            "range's last hours): error (stop before writing) or warn (the default; env ATTRIBUTION_ON_STALE)."
        ),
    ],
    "restate_days": Annotated[
        int | None,
        typer.Option(
            help="Also redo those of the N days before --start whose inputs changed: spend restated at the "
            "source, sessions or conversions that landed late (env ATTRIBUTION_RESTATE_DAYS; 3 suits a daily "
            "schedule)."
        ),
    ],
    "half_life_hours": _option(float, "time-decay: half-life in hours (default 168)."),
    "markov_order": _option(int, "markov: order 1 to 3 (default 1)."),
    "direct_channels": _option(
        list[str], "last-non-direct: a channel that counts as direct (repeatable).", "--direct-channel"
    ),
    "position_weights": _option(str, "position-based: first,middle,last weights (default 0.4,0.2,0.4)."),
    "ihc_url": _option(str, "ihc-api: base URL of the IHC API (env IHC_API_URL)."),
    "conv_type_id": _option(str, "ihc-api: trained conversion type id (env IHC_CONV_TYPE_ID)."),
    "force": _option(bool, "ihc-api: re-send conversions that already hold credit (default: resume)."),
    "max_journeys": _option(int, "ihc-api: journeys per request (default 100)."),
    "max_sessions": _option(int, "ihc-api: sessions per request (default 3000; 200 for test accounts)."),
    "long_journey_policy": _option(
        str, "ihc-api: journeys longer than --max-sessions: truncate (keep the latest) or skip."
    ),
    "concurrency": _option(int, "ihc-api: requests in flight (default 4)."),
    "rate_limit": _option(float, "ihc-api: requests per second (default: no limit)."),
    "max_requests": _option(int, "ihc-api: stop cleanly after this many requests (the run's quota)."),
    "max_retries": _option(int, "ihc-api: retries per request on timeouts, 429 and 5xx (default 6)."),
    "max_connection_failures": _option(
        int,
        "ihc-api: stop when this many connections in a row fail (refused, reset, connect timeout): the service is "
        "down; answered credit is kept (default 8; env ATTRIBUTION_MAX_CONNECTION_FAILURES).",
    ),
}
"""The flag of each setting a run takes, by the setting's name (``pipeline.settings.OPTIONS``): declared once,
here; a command lists the settings it takes (``takes``)."""
TABLEAU_FLAGS: dict[str, object] = {
    "tableau_url": _option(str, "Tableau Server or Cloud: https://..."),
    "tableau_site": _option(str, "Tableau: the site's content URL; empty for the default site."),
    "tableau_project": _option(
        str, "Tableau: the project to publish into: its name, or its path Parent/Child."
    ),
    "tableau_datasource": _option(str, "Tableau: the data source's name (default channel_reporting)."),
    "tableau_token_name": _option(str, "Tableau: the personal access token's name."),
    "tableau_timeout": _option(float, "Tableau: seconds it may take to answer a request (default 300)."),
}
"""The flags of a Tableau publication (``publish-tableau``); the token's secret only from the environment."""


NewDb = Annotated[Path, typer.Option("--db", help="Path of the new SQLite file (must not exist).")]
DemoDb = Annotated[Path, typer.Option("--db", help="The demo database (generated when missing).")]
Sessions = Annotated[int, typer.Option(help="Number of sessions.")]
Conversions = Annotated[int, typer.Option(help="Number of conversions.")]
Users = Annotated[int | None, typer.Option(help="Number of users (default: derived from sessions).")]
Days = Annotated[int, typer.Option(help="Number of days of traffic.")]
Seed = Annotated[int, typer.Option(help="Random seed: the same seed gives the same file.")]
Layout = Annotated[
    gen.Layout,
    typer.Option(
        help="Row order: arrival (by user and time, as real exports; ids in random order) or sorted "
        "(by id: every key lookup sequential, flattering; for comparisons)."
    ),
]
TrainedType = Annotated[str, typer.Option(help="Name to store the trained parameters under.")]
Answers = Annotated[
    Path | None,
    typer.Option(help="CSV of the IHC service's answers, one row per session (default: stored answers)."),
]
StoredType = Annotated[
    str | None,
    typer.Option("--conv-type-id", "--conversion-type", help="Name to store the parameters under."),
]
FromType = Annotated[
    str | None,
    typer.Option(help="Without --answers: the conversion type whose stored ihc-api answers to fit."),
]
Compared = Annotated[list[str] | None, typer.Option("--model", help="A model to compare (repeatable).")]
Value = Annotated[str, typer.Option(help="credit or revenue.")]
Split = Annotated[
    str,
    typer.Option(
        help="journey: each journey's credit to its own channels, as stored; global: Markov's and Shapley's "
        "channel shares of all conversions, as ChannelAttribution reports them (docs/models.md)."
    ),
]
Source = Annotated[str, typer.Option("--from", help="Database to read: SQLite path or SQLAlchemy URL.")]
Target = Annotated[
    str, typer.Option("--to", help="Database to fill, e.g. postgresql+psycopg://user@host/db.")
]
Html = Annotated[bool, typer.Option("--html", help="Also write the HTML dashboard.")]
StoredReportModel = Annotated[
    str | None,
    typer.Option(
        help="Make the stored report count this model's stored credit, then export it (env "
        "ATTRIBUTION_REPORT_MODEL; default: the model the stored report counts)."
    ),
]
CompareModels = Annotated[
    bool,
    typer.Option(
        "--compare-models", help="Print every stored model's credit per channel side by side; no file."
    ),
]
Debug = Annotated[bool, typer.Option(help="Show tracebacks on errors.")]


def takes(*names: str) -> Callable[[Command], Command]:
    """Give a command the flags of the settings ``names`` (``SETTING_FLAGS``, ``TABLEAU_FLAGS``), each ``None``
    when not given, after its own parameters: Typer reads a command's flags from its signature, and this
    writes them there, so a setting's flag is declared once and a command only names what it takes."""
    declared = {name: {**SETTING_FLAGS, **TABLEAU_FLAGS}[name] for name in names}

    def with_flags(command: Command) -> Command:
        own = [
            p
            for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.kind != p.VAR_KEYWORD
        ]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
            for name, kind in declared.items()
        ]
        wrapped = functools.wraps(command)(lambda **given: command(**given))
        wrapped.__signature__ = inspect.Signature([*own, *added])
        wrapped.__annotations__ = {parameter.name: parameter.annotation for parameter in [*own, *added]}
        return wrapped

    return with_flags


def settings_flags(given: dict[str, object]) -> dict[str, object]:
    """A command's flags as settings take them: repeatable flags as tuples (none given: ``None``), the
    position weights as numbers."""
    flags = dict(given)
    for name in ("formats", "direct_channels"):
        flags[name] = tuple(flags[name]) if flags.get(name) else None
    flags["position_weights"] = numbers(flags.get("position_weights"), "position weights")
    return flags


def numbers(text: object, what: str) -> tuple[float, ...] | None:
    """``0.4,0.2,0.4`` as numbers; a ``ConfigError`` naming ``what`` otherwise."""
    if text is None:
        return None
    try:
        return tuple(float(part) for part in str(text).split(","))
    except ValueError:
        raise ConfigError(
            f"Bad {what} {text!r}: expected numbers separated by commas, e.g. 0.4,0.2,0.4"
        ) from None
