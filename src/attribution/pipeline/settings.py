"""One typed settings object for a run.

Precedence: explicit values (CLI flags, DAG params) > environment (``ATTRIBUTION_*``) > defaults.
Why typed: a bad value fails once, up front, with one line naming it, before any work is done.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    PositiveFloat,
    PositiveInt,
    Secret,
    ValidationError,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from attribution.errors import ConfigError
from attribution.ihc_api.config import ApiKey
from attribution.journeys import DEFAULT_CHUNK_CONVERSIONS, JourneyOptions
from attribution.models.names import REMOTE_MODELS
from attribution.objectstore import display
from attribution.pipeline.defaults import DEFAULT_DB, DEFAULT_MODEL, DEFAULT_OUT
from attribution.reporting.files import DEFAULT_FORMATS, check_formats
from attribution.timerange import TimeRange
from attribution.warehouse.bad_rows import Policy
from attribution.warehouse.engine import redact_url
from attribution.warehouse.redshift_copy import StagedCopy
from attribution.warehouse.tables import NO_CONV_TYPE, CreditLabel

DEFAULT_IHC_URL = "https://api.ihc-attribution.com"
DEFAULT_CONV_TYPE_ID = "default"


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
    lookback_days: PositiveInt | None = None
    drop_impressions: bool = False
    chunk_conversions: PositiveInt = DEFAULT_CHUNK_CONVERSIONS
    force: bool = Field(False, description="ihc-api: re-send conversions that already hold credit")
    on_bad_rows: Policy = Field(
        "error", description="input rows a check finds bad: stop the run (error) or leave them out (skip)"
    )

    # Options of the local models; each applies to one model and is refused by the others.
    half_life_hours: PositiveFloat | None = Field(None, description="time-decay: half-life in hours")
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
    max_journeys: PositiveInt | None = None
    max_sessions: PositiveInt | None = None
    long_journey_policy: Literal["truncate", "skip"] | None = None
    concurrency: PositiveInt | None = None
    rate_limit: PositiveFloat | None = None
    max_requests: PositiveInt | None = None
    max_retries: int | None = Field(None, ge=0)
    max_connection_failures: PositiveInt | None = Field(
        None, description="ihc-api: connection failures in a row after which the run stops (default 8)"
    )
    request_timeout: PositiveFloat | None = None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """The fields as ``repr`` and ``str`` show them: locations without their passwords."""
        shown = {"db": self.safe_db, "out": display(self.out)}
        for name, value in super().__repr_args__():
            yield name, shown.get(name or "", value)

    @property
    def time_range(self) -> TimeRange:
        return TimeRange.parse(self.start, self.end)

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
    def staged_copy(self) -> StagedCopy | None:
        """How Redshift loads result rows from object storage, when both staging settings are given."""
        if not (self.redshift_copy_url or self.redshift_iam_role):
            return None
        if not (self.redshift_copy_url and self.redshift_iam_role):
            raise ConfigError("Set both redshift_copy_url and redshift_iam_role to load Redshift by COPY")
        return StagedCopy(
            self.redshift_copy_url, self.redshift_iam_role, self.storage_options.get_secret_value()
        )

    @property
    def safe_db(self) -> str:
        """The database as it may be shown: any password hidden."""
        return redact_url(self.db)


def config_error(exc: ValidationError, what: str) -> ConfigError:
    """The first problem pydantic found, as the one-line error a user sees."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or what
    return ConfigError(f"Bad {what} {field}: {error['msg']}")


def load_settings(**explicit: object) -> Settings:
    """Settings from explicit values (``None`` means not given), the environment and the defaults."""
    given = {key: value for key, value in explicit.items() if value is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        raise config_error(exc, "setting") from None
    settings.time_range  # noqa: B018 - validate the range and the staging now, not half-way through a run
    settings.staged_copy  # noqa: B018
    check_formats(settings.formats)
    return settings
