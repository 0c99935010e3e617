"""One typed settings object for a run.

Precedence: explicit values (CLI flags, DAG params) > environment (``ATTRIBUTION_*``) > defaults.
Why typed: a bad value fails once, up front, with one line naming it, before any work is done.
Why one list of option names (``option_field``): pydantic matches a name in any case and by its aliases
(``IHC_API_KEY``), so a refusal that compared names as written could be got around by spelling one otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import date, timedelta
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    Secret,
    SecretStr,
    ValidationError,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine

from attribution.errors import ConfigError
from attribution.ihc_api.config import (
    ApiKey,
    Concurrency,
    ConnectionFailures,
    JourneysPerRequest,
    RequestQuota,
    RequestRate,
    Retries,
    SessionsPerRequest,
    Timeout,
)
from attribution.journeys import (
    DEFAULT_CHUNK_CONVERSIONS,
    MAX_CHUNK_CONVERSIONS,
    MAX_LOOKBACK_DAYS,
    JourneyOptions,
)
from attribution.models.names import REMOTE_MODELS
from attribution.objectstore import display
from attribution.pipeline.defaults import DEFAULT_DB, DEFAULT_MODEL, DEFAULT_OUT
from attribution.redaction import hide_credentials
from attribution.reporting.files import DEFAULT_FORMATS, check_formats
from attribution.reporting.tableau import DEFAULT_TIMEOUT as DEFAULT_TABLEAU_TIMEOUT
from attribution.reporting.tableau import MAX_TIMEOUT as MAX_TABLEAU_TIMEOUT
from attribution.reporting.tableau import TableauTarget
from attribution.store.runs import DEFAULT_LEASE_SECONDS, MAX_LEASE_SECONDS, MIN_LEASE_SECONDS
from attribution.timerange import TimeRange
from attribution.warehouse.bad_rows import Policy
from attribution.warehouse.engine import open_engine, redact_url
from attribution.warehouse.freshness import StalePolicy
from attribution.warehouse.redshift_copy import RedshiftCopy
from attribution.warehouse.source_mapping import SourceMapping, load_source_mapping, parse_source_mapping
from attribution.warehouse.tables import NO_CONV_TYPE, CreditLabel

DEFAULT_IHC_URL = "https://api.ihc-attribution.com"
DEFAULT_CONV_TYPE_ID = "default"
MAX_RESTATE_DAYS = 90
"""The longest restatement window: ad platforms restate spend for days to weeks, not seasons."""
CONNECTION_OPTIONS = frozenset(
    {"db", "ihc_api_key", "storage_options", "tableau_url", "tableau_token_name", "tableau_token_secret"}
)
"""Settings that hold a secret or pick a connection: set by the environment, a flag or a connection, never by
a mapping of options someone else may edit (the DAG's Variable ``attribution_options``). ``tableau_url`` is one:
whoever sets it chooses where the token's secret is sent."""
TABLEAU_NEEDS = ("tableau_url", "tableau_project", "tableau_token_name", "tableau_token_secret")
"""What publishing to Tableau cannot do without (the site may be empty: the default site)."""


def _fspath(value: object) -> object:
    """A ``Path`` given for ``out`` as its text, so one field holds a directory or a URL."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _json_object(value: object) -> object:
    """Storage options given as JSON text (``ATTRIBUTION_STORAGE_OPTIONS``) or as a mapping."""
    return json.loads(value) if isinstance(value, str) else value


def _env(name: str, *env_names: str) -> AliasChoices:
    """Accept a field by its own name (flags, DAG params) or by the given environment variable names."""
    return AliasChoices(name, *env_names)


class Settings(BaseSettings):
    """What a run reads, how it cuts journeys, which model it uses and where it writes."""

    model_config = SettingsConfigDict(
        env_prefix="ATTRIBUTION_",
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    db: str = Field(DEFAULT_DB, description="SQLite file path or SQLAlchemy URL")
    source_mapping: str | None = Field(
        None,
        description="TOML file naming the inputs' schema, tables, columns and time zones (docs/data.md)",
    )
    source_mapping_toml: str | None = Field(
        None,
        description="the source mapping itself, as TOML text (the DAG's Variable attribution_source_mapping)",
    )
    create_indexes: bool | None = Field(
        None, description="add the journey indexes to the input tables (default: on SQLite only)"
    )
    redshift_copy_url: str | None = Field(
        None, description="Redshift: stage result rows at this s3:// prefix and load them with COPY"
    )
    redshift_iam_role: str | None = Field(
        None, description="Redshift: the IAM role COPY reads the stage with"
    )
    start: str | None = Field(None, description="first conversion time included (ISO date or timestamp)")
    end: str | None = Field(None, description="first conversion time excluded (ISO date or timestamp)")
    model: str = DEFAULT_MODEL
    report_model: str | None = Field(
        None, description="the model the report and its files count (default: the run's model)"
    )
    out: Annotated[str, BeforeValidator(_fspath)] = Field(
        DEFAULT_OUT, description="report files: a directory, or a URL such as s3://bucket/prefix"
    )
    storage_options: Annotated[Secret[dict[str, Any]], BeforeValidator(_json_object)] = Field(
        default_factory=lambda: Secret({}),
        description="fsspec options for an out URL (key, secret, endpoint_url, config_kwargs); hidden",
    )
    formats: tuple[str, ...] = Field(DEFAULT_FORMATS, description="report files: csv, parquet, html, hyper")
    lookback_days: int | None = Field(None, ge=1, le=MAX_LOOKBACK_DAYS)
    drop_impressions: bool = False
    chunk_conversions: int = Field(DEFAULT_CHUNK_CONVERSIONS, ge=1, le=MAX_CHUNK_CONVERSIONS)
    force: bool = Field(False, description="ihc-api: re-send conversions that already hold credit")
    on_bad_rows: Policy = Field(
        "error", description="input rows a check finds bad: stop the run (error) or leave them out (skip)"
    )
    restate_days: int = Field(
        0,
        ge=0,
        le=MAX_RESTATE_DAYS,
        description="also redo those of the N days before start whose inputs changed since they were reported",
    )
    on_stale: StalePolicy = Field(
        "warn", description="a date whose inputs look not yet landed: stop the run (error) or warn (warn)"
    )
    run_lease_seconds: int = Field(
        DEFAULT_LEASE_SECONDS,
        ge=MIN_LEASE_SECONDS,
        le=MAX_LEASE_SECONDS,
        description="how long the run counts as alive after its last step boundary; past it, any later run "
        "closes its record as abandoned (and drops its IHC API claims)",
    )

    # Options of the local models; each applies to one model and is refused by the others.
    half_life_hours: float | None = Field(
        None,
        gt=0,
        le=MAX_LOOKBACK_DAYS * 24,
        allow_inf_nan=False,
        description="time-decay: half-life in hours",
    )
    markov_order: int | None = Field(None, ge=1, le=3, description="markov: order of the chain")
    direct_channels: tuple[str, ...] | None = Field(
        None, description="last-non-direct: channels that count as direct"
    )
    position_weights: tuple[float, float, float] | None = Field(
        None, description="position-based: first, middle, last"
    )

    # The IHC API client (``--model ihc-api``). The key is read from the environment only, never a flag.
    ihc_url: str = Field(
        DEFAULT_IHC_URL, validation_alias=_env("ihc_url", "IHC_API_URL", "ATTRIBUTION_IHC_URL")
    )
    ihc_api_key: ApiKey | None = Field(None, validation_alias=_env("ihc_api_key", "IHC_API_KEY"))
    conv_type_id: str = Field(
        DEFAULT_CONV_TYPE_ID,
        validation_alias=_env("conv_type_id", "IHC_CONV_TYPE_ID", "ATTRIBUTION_CONV_TYPE_ID"),
    )
    max_journeys: JourneysPerRequest | None = None
    max_sessions: SessionsPerRequest | None = None
    long_journey_policy: Literal["truncate", "skip"] | None = None
    concurrency: Concurrency | None = None
    rate_limit: RequestRate | None = None
    max_requests: RequestQuota | None = None
    max_retries: Retries | None = None
    max_connection_failures: ConnectionFailures | None = Field(
        None, description="ihc-api: connection failures in a row after which the run stops (default 8)"
    )
    request_timeout: Timeout | None = None

    # Publishing the Hyper extract to Tableau (``attribution publish-tableau``, the DAG's ``publish_tableau``).
    # The token's secret is read from the environment (or the DAG's connection) only, never a flag.
    tableau_url: str | None = Field(
        None, description="Tableau Server or Cloud, e.g. https://tableau.example.com"
    )
    tableau_site: str = Field("", description="the site's content URL (empty: the server's default site)")
    tableau_project: str | None = Field(None, description="the project published into: a name or a path A/B")
    tableau_datasource: str | None = Field(
        None, description="the published data source's name (default: the extract's, channel_reporting)"
    )
    tableau_token_name: str | None = Field(None, description="the personal access token's name")
    tableau_token_secret: SecretStr | None = Field(None, description="the personal access token's secret")
    tableau_timeout: float = Field(
        DEFAULT_TABLEAU_TIMEOUT,
        gt=0,
        le=MAX_TABLEAU_TIMEOUT,
        allow_inf_nan=False,
        description="seconds Tableau may take to answer a request (the publish waits while it takes the file)",
    )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """The fields as ``repr`` and ``str`` show them: locations without their credentials."""
        shown = {
            "db": self.safe_db,
            "out": display(self.out),
            "ihc_url": hide_credentials(self.ihc_url),
            "tableau_url": self.tableau_url and hide_credentials(self.tableau_url),
        }
        for name, value in super().__repr_args__():
            yield name, shown.get(name or "", value)

    @property
    def time_range(self) -> TimeRange:
        """The conversions the run attributes: ``[start, end)``, reaching back ``restate_days`` more days (a
        run's window plan narrows it to the days it redoes: ``pipeline.window``)."""
        return self.asked_range.reaching_back(self.restate_days)

    @property
    def asked_range(self) -> TimeRange:
        """``[start, end)`` as given, without the restatement window."""
        return TimeRange.parse(self.start, self.end, self.sources.report_time_zone)

    @property
    def restated_dates(self) -> list[str]:
        """The report dates the restatement window redoes before ``start`` (none without one)."""
        span = self.asked_range.date_span()
        if span is None:
            return []
        first = date.fromisoformat(span[0])
        return [(first - timedelta(days=back)).isoformat() for back in range(self.restate_days, 0, -1)]

    @property
    def journey_options(self) -> JourneyOptions:
        return JourneyOptions(
            lookback_days=self.lookback_days,
            drop_impressions=self.drop_impressions,
            only_unattributed=self.remote and not self.force,
            credit_label=self.credit_label,
            skip_bad_rows=self.on_bad_rows == "skip",
        )

    @property
    def remote(self) -> bool:
        """Whether credit comes from the IHC API (committed as answers arrive) rather than a local model."""
        return self.model in REMOTE_MODELS

    @property
    def credit_conv_type(self) -> str | None:
        """The conversion type recorded with the run's credit: the IHC models' only (the others have none)."""
        return self.label_of(self.model).conv_type_id or None

    @property
    def credit_label(self) -> CreditLabel:
        """What the run's credit is stored under, and all the run replaces."""
        return self.label_of(self.model)

    @property
    def report_label(self) -> CreditLabel:
        """Whose credit the report and its files count: ``report_model``'s (the model of record, with the
        run's conversion type where it takes one), else the run's own."""
        return self.label_of(self.report_model or self.model)

    def label_of(self, model: str) -> CreditLabel:
        """``model``'s credit label: with ``conv_type_id`` for the IHC models, which learn one per type."""
        return CreditLabel(model, self.conv_type_id if model in ("ihc", *REMOTE_MODELS) else NO_CONV_TYPE)

    def model_options(self) -> dict[str, object]:
        """Constructor options of the chosen local model, from the model flags that were given."""
        given: dict[str, object | None] = {
            "half_life_hours": self.half_life_hours,
            "order": self.markov_order,
            "direct_channels": self.direct_channels,
        }
        if self.position_weights:
            given.update(zip(("first", "middle", "last"), self.position_weights, strict=True))
        return {name: value for name, value in given.items() if value is not None}

    def ihc_client_options(self) -> dict[str, object]:
        """The IHC API client's settings that were given (the client's own defaults fill the rest)."""
        limits = {
            "max_journeys": self.max_journeys,
            "max_sessions": self.max_sessions,
            "long_journey_policy": self.long_journey_policy,
            "concurrency": self.concurrency,
            "rate_limit": self.rate_limit,
            "max_requests": self.max_requests,
            "max_retries": self.max_retries,
            "max_connection_failures": self.max_connection_failures,
            "timeout": self.request_timeout,
        }
        given = {name: value for name, value in limits.items() if value is not None}
        return {"base_url": self.ihc_url, "conv_type_id": self.conv_type_id, **given}

    @property
    def redshift_copy(self) -> RedshiftCopy | None:
        """How Redshift loads result rows from object storage, when both staging settings are given."""
        if not (self.redshift_copy_url or self.redshift_iam_role):
            return None
        if not (self.redshift_copy_url and self.redshift_iam_role):
            raise ConfigError("Set both redshift_copy_url and redshift_iam_role to load Redshift by COPY")
        return RedshiftCopy(
            self.redshift_copy_url, self.redshift_iam_role, self.storage_options.get_secret_value()
        )

    @property
    def tableau_target(self) -> TableauTarget:
        """Where the Hyper extract is published; a ``ConfigError`` naming what is missing (``TABLEAU_NEEDS``)."""
        if missing := [name for name in TABLEAU_NEEDS if not getattr(self, name)]:
            variables = ", ".join(f"ATTRIBUTION_{name.upper()}" for name in missing)
            raise ConfigError(
                f"Publishing to Tableau needs {variables} (or the flags of attribution publish-tableau; "
                "the token's secret from the environment only)"
            )
        return TableauTarget(
            url=self.tableau_url,
            site=self.tableau_site,
            project=self.tableau_project,
            datasource=self.tableau_datasource,
            token_name=self.tableau_token_name,
            token_secret=self.tableau_token_secret.get_secret_value(),
            timeout=self.tableau_timeout,
        )

    @property
    def sources(self) -> SourceMapping:
        """Where the inputs are and how their timestamps read: ``source_mapping``'s file (or the mapping given
        as text), else the challenge's names."""
        if self.source_mapping_toml is None:
            return load_source_mapping(self.source_mapping)
        if self.source_mapping:
            raise ConfigError("Give source_mapping (a file) or source_mapping_toml (its text), not both")
        return parse_source_mapping(self.source_mapping_toml, "(source_mapping_toml)")

    def warehouse(self) -> AbstractContextManager[Engine]:
        """The run's warehouse (``open_engine``), with its Redshift staging and source mapping."""
        return open_engine(self.db, redshift_copy=self.redshift_copy, sources=self.sources)

    @property
    def safe_db(self) -> str:
        """The database as it may be shown: any password hidden."""
        return redact_url(self.db)


def config_error(exc: ValidationError, what: str) -> ConfigError:
    """The first problem pydantic found, as the one-line error a user sees."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or what
    return ConfigError(f"Bad {what} {field}: {error['msg']}")


@cache
def _option_names() -> dict[str, str]:
    """Every name a setting answers to (its own and its aliases), lower-cased, and the field it sets."""
    names: dict[str, str] = {}
    for field, info in Settings.model_fields.items():
        aliases = info.validation_alias.choices if isinstance(info.validation_alias, AliasChoices) else []
        names.update((str(name).lower(), field) for name in (field, *aliases))
    return names


def option_field(name: str, where: str) -> str:
    """The field ``name`` sets, matched as pydantic matches it: in any case, by the field's name or an alias."""
    field = _option_names().get(name.lower())
    if field is None:
        raise ConfigError(f"Bad {where}: unknown option {name!r}")
    return field


def canonical_options(given: Mapping[str, object], where: str) -> dict[str, object]:
    """``given`` keyed by field names, so each setting is given once, under one name."""
    options: dict[str, object] = {}
    for name, value in given.items():
        field = option_field(name, where)
        if field in options:
            raise ConfigError(f"Bad {where}: {field!r} is given twice ({name!r})")
        options[field] = value
    return options


def public_options(given: object, where: str) -> dict[str, object]:
    """Options from a mapping someone else may edit, by field name: no spelling of a connection or secret
    setting (``CONNECTION_OPTIONS``) passes; the message names the option, never its value."""
    if not isinstance(given, Mapping):
        raise ConfigError(f"Bad {where}: expected a JSON object of option names and values")
    options = canonical_options(given, where)
    if refused := sorted(CONNECTION_OPTIONS & set(options)):
        raise ConfigError(
            f"{where} must not hold {', '.join(refused)} (in any spelling): set them by the connections"
        )
    return options


def load_settings(**explicit: object) -> Settings:
    """Settings from explicit values (``None`` means not given), the environment and the defaults."""
    given = canonical_options({key: value for key, value in explicit.items() if value is not None}, "setting")
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        raise config_error(exc, "setting") from None
    settings.time_range  # noqa: B018 - validate the range and the staging now, not half-way through a run
    settings.redshift_copy  # noqa: B018
    settings.sources  # noqa: B018
    check_formats(settings.formats)
    return settings
