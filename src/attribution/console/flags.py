"""The flags the commands share, as Typer parameter types: each says its setting, default and environment
variable. Most are ``None`` when not given, so the settings' precedence (flag > environment > default)
decides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attribution.errors import ConfigError
from attribution.models.names import MODEL_NAMES
from attribution.pipeline.defaults import DEFAULT_DB, DEFAULT_MODEL, DEFAULT_OUT
from attribution.sample_data import options as gen

Db = Annotated[
    str | None,
    typer.Option(
        "--db", help=f"SQLite file path or SQLAlchemy URL (env ATTRIBUTION_DB; default {DEFAULT_DB})."
    ),
]
Out = Annotated[
    str | None,
    typer.Option(
        "--out",
        help=f"Directory or URL (s3://bucket/prefix) for the report files (default {DEFAULT_OUT}/); "
        "object store credentials from the environment (AWS_*), never a flag.",
    ),
]
SourceMappingFile = Annotated[
    str | None,
    typer.Option(
        "--source-mapping",
        help="TOML file naming the inputs' schema, tables, columns and time zones (env "
        "ATTRIBUTION_SOURCE_MAPPING; default: the challenge's names; docs/data.md).",
    ),
]
CreateIndexes = Annotated[
    bool | None,
    typer.Option(
        help="Add the journey indexes to the input tables if missing (default: on SQLite only; "
        "env ATTRIBUTION_CREATE_INDEXES)."
    ),
]
Start = Annotated[
    str | None,
    typer.Option(
        help="First conversion time included: ISO date or timestamp (UTC, or the report time zone)."
    ),
]
End = Annotated[
    str | None,
    typer.Option(
        help="First conversion time excluded: ISO date or timestamp (UTC, or the report time zone)."
    ),
]
Model = Annotated[
    str | None,
    typer.Option(help=f"Attribution model: {', '.join(MODEL_NAMES)} (default {DEFAULT_MODEL})."),
]
ReportModel = Annotated[
    str | None,
    typer.Option(
        help="The model the report and its files count, the model of record (env ATTRIBUTION_REPORT_MODEL; "
        "default: the run's model)."
    ),
]
Lookback = Annotated[
    int | None, typer.Option(help="Only sessions at most this many days before the conversion.")
]
Formats = Annotated[
    list[str] | None,
    typer.Option("--format", help="Report file to write (repeatable): csv, parquet, html, hyper."),
]
DropImpressions = Annotated[bool | None, typer.Option(help="Leave impression-only sessions out of journeys.")]
OnBadRows = Annotated[
    str | None,
    typer.Option(
        help="Input rows an input check finds bad: error (stop before writing, naming them; the default) or "
        "skip (leave them out of journeys and count them; env ATTRIBUTION_ON_BAD_ROWS). "
        "`attribution check` lists them."
    ),
]

OnStale = Annotated[
    str | None,
    typer.Option(
        help="A date whose inputs look not yet landed (paid sessions without cost rows, no session in the "
        "range's last hours): error (stop before writing) or warn (the default; env ATTRIBUTION_ON_STALE)."
    ),
]
RestateDays = Annotated[
    int | None,
    typer.Option(
        help="Also redo those of the N days before --start whose inputs changed: spend restated at the "
        "source, sessions or conversions that landed late (env ATTRIBUTION_RESTATE_DAYS; 3 suits a daily "
        "schedule)."
    ),
]


def _option(kind: object, help_text: str, *flag: str) -> object:
    """An optional flag of ``kind`` (``None`` when not given: the settings' precedence decides)."""
    return Annotated[kind | None, typer.Option(*flag, help=help_text)]


HalfLife = _option(float, "time-decay: half-life in hours (default 168).")
MarkovOrder = _option(int, "markov: order 1 to 3 (default 1).")
DirectChannels = _option(
    list[str], "last-non-direct: a channel that counts as direct (repeatable).", "--direct-channel"
)
PositionWeights = _option(str, "position-based: first,middle,last weights (default 0.4,0.2,0.4).")
IhcUrl = _option(str, "ihc-api: base URL of the IHC API (env IHC_API_URL).")
ConvType = _option(str, "ihc-api: trained conversion type id (env IHC_CONV_TYPE_ID).")
LocalIhc = Annotated[
    bool, typer.Option(help="ihc-api: start the project's own IHC server for this run and use it.")
]
Force = _option(bool, "ihc-api: re-send conversions that already hold credit (default: resume).")
MaxJourneys = _option(int, "ihc-api: journeys per request (default 100).")
MaxSessions = _option(int, "ihc-api: sessions per request (default 3000; 200 for test accounts).")
Concurrency = _option(int, "ihc-api: requests in flight (default 4).")
RateLimit = _option(float, "ihc-api: requests per second (default: no limit).")
MaxRequests = _option(int, "ihc-api: stop cleanly after this many requests (the run's quota).")
MaxRetries = _option(int, "ihc-api: retries per request on timeouts, 429 and 5xx (default 6).")
MaxConnectionFailures = _option(
    int,
    "ihc-api: stop when this many connections in a row fail (refused, reset, connect timeout): the service is "
    "down; answered credit is kept (default 8; env ATTRIBUTION_MAX_CONNECTION_FAILURES).",
)
LongJourneys = _option(
    str, "ihc-api: journeys longer than --max-sessions: truncate (keep the latest) or skip."
)


TableauUrl = _option(str, "Tableau Server or Cloud: https://...")
TableauSite = _option(str, "Tableau: the site's content URL; empty for the default site.")
TableauProject = _option(str, "Tableau: the project to publish into: its name, or its path Parent/Child.")
TableauDatasource = _option(str, "Tableau: the data source's name (default channel_reporting).")
TableauTokenName = _option(str, "Tableau: the personal access token's name.")
TableauTimeout = _option(float, "Tableau: seconds it may take to answer a request (default 300).")


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
