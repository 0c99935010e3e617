"""The groups a run's settings are made of: where it reads, which range, which model, where it writes, and
the policies it runs by (the IHC API's group is the client's own ``ClientConfig``).

Why groups: each part of the package takes the group it needs, and a reader finds a setting beside its
kin; the names users give (flags, ``ATTRIBUTION_*``, DAG params) map onto them in one table
(``pipeline.settings.OPTIONS``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Secret, SecretStr

from attribution.errors import ConfigError
from attribution.journeys import DEFAULT_CHUNK_CONVERSIONS, MAX_CHUNK_CONVERSIONS, MAX_LOOKBACK_DAYS
from attribution.objectstore import display
from attribution.pipeline.defaults import DEFAULT_DB, DEFAULT_MODEL, DEFAULT_OUT
from attribution.redaction import hide_credentials
from attribution.reporting.files import DEFAULT_FORMATS
from attribution.reporting.tableau import DEFAULT_TIMEOUT as DEFAULT_TABLEAU_TIMEOUT
from attribution.reporting.tableau import MAX_TIMEOUT as MAX_TABLEAU_TIMEOUT
from attribution.reporting.tableau import TableauTarget
from attribution.store.runs import DEFAULT_LEASE_SECONDS, MAX_LEASE_SECONDS, MIN_LEASE_SECONDS
from attribution.warehouse.bad_rows import Policy
from attribution.warehouse.engine import redact_url
from attribution.warehouse.freshness import StalePolicy
from attribution.warehouse.source_mapping import SourceMapping, load_source_mapping, parse_source_mapping

MAX_RESTATE_DAYS = 90
"""The longest restatement window: ad platforms restate spend for days to weeks, not seasons."""
TABLEAU_NEEDS = ("url", "project", "token_name", "token_secret")
"""What publishing to Tableau cannot do without (the site may be empty: the default site)."""


def _fspath(value: object) -> object:
    """A ``Path`` given for ``out`` as its text, so one field holds a directory or a URL."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _json_object(value: object) -> object:
    """Storage options given as JSON text (``ATTRIBUTION_STORAGE_OPTIONS``) or as a mapping."""
    return json.loads(value) if isinstance(value, str) else value


class Group(BaseModel):
    """A frozen group of settings that shows its locations without their credentials (``shown``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)
    shown: ClassVar[dict[str, Callable[[Any], str]]] = {}

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            hide = self.shown.get(name or "")
            yield name, hide(value) if hide and value is not None else value


class WarehouseSettings(Group):
    """Where the inputs are, how they read, and how result rows are loaded."""

    shown: ClassVar[dict[str, Callable[[Any], str]]] = {"db": redact_url}

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

    @property
    def sources(self) -> SourceMapping:
        """Where the inputs are and how their timestamps read: ``source_mapping``'s file (or the mapping given
        as text), else the challenge's names."""
        if self.source_mapping_toml is None:
            return load_source_mapping(self.source_mapping)
        if self.source_mapping:
            raise ConfigError("Give source_mapping (a file) or source_mapping_toml (its text), not both")
        return parse_source_mapping(self.source_mapping_toml, "(source_mapping_toml)")

    @property
    def safe_db(self) -> str:
        """The database as it may be shown: any password hidden."""
        return redact_url(self.db)


class RangeSettings(Group):
    """The conversions a run attributes, and how far back their journeys reach."""

    start: str | None = Field(None, description="first conversion time included (ISO date or timestamp)")
    end: str | None = Field(None, description="first conversion time excluded (ISO date or timestamp)")
    lookback_days: int | None = Field(None, ge=1, le=MAX_LOOKBACK_DAYS)
    drop_impressions: bool = False
    restate_days: int = Field(
        0,
        ge=0,
        le=MAX_RESTATE_DAYS,
        description="also redo those of the N days before start whose inputs changed since they were reported",
    )


class ModelSettings(Group):
    """The run's model, the model of record, and the local models' options (each refused by the others)."""

    name: str = DEFAULT_MODEL
    report_model: str | None = Field(
        None, description="the model the report and its files count (default: the run's model)"
    )
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

    def options(self) -> dict[str, object]:
        """Constructor options of the chosen local model, from the model flags that were given."""
        given: dict[str, object | None] = {
            "half_life_hours": self.half_life_hours,
            "order": self.markov_order,
            "direct_channels": self.direct_channels,
        }
        if self.position_weights:
            given.update(zip(("first", "middle", "last"), self.position_weights, strict=True))
        return {name: value for name, value in given.items() if value is not None}


class TableauSettings(Group):
    """Publishing the Hyper extract to Tableau; the token's secret from the environment or a connection only."""

    shown: ClassVar[dict[str, Callable[[Any], str]]] = {"url": hide_credentials}

    url: str | None = Field(None, description="Tableau Server or Cloud, e.g. https://tableau.example.com")
    site: str = Field("", description="the site's content URL (empty: the server's default site)")
    project: str | None = Field(None, description="the project published into: a name or a path A/B")
    datasource: str | None = Field(
        None, description="the published data source's name (default: the extract's, channel_reporting)"
    )
    token_name: str | None = Field(None, description="the personal access token's name")
    token_secret: SecretStr | None = Field(None, description="the personal access token's secret")
    timeout: float = Field(
        DEFAULT_TABLEAU_TIMEOUT,
        gt=0,
        le=MAX_TABLEAU_TIMEOUT,
        allow_inf_nan=False,
        description="seconds Tableau may take to answer a request (the publish waits while it takes the file)",
    )

    def target(self, names: dict[str, str]) -> TableauTarget:
        """Where the extract is published; a ``ConfigError`` naming (by ``names``, what users set) what is
        missing."""
        if missing := [name for name in TABLEAU_NEEDS if not getattr(self, name)]:
            variables = ", ".join(f"ATTRIBUTION_{names[name].upper()}" for name in missing)
            raise ConfigError(
                f"Publishing to Tableau needs {variables} (or the flags of attribution publish-tableau; "
                "the token's secret from the environment only)"
            )
        return TableauTarget(
            url=self.url,
            site=self.site,
            project=self.project,
            datasource=self.datasource,
            token_name=self.token_name,
            token_secret=self.token_secret.get_secret_value(),
            timeout=self.timeout,
        )


class OutputSettings(Group):
    """Where the report files go, in which formats, and where the extract is published."""

    shown: ClassVar[dict[str, Callable[[Any], str]]] = {"out": display}

    out: Annotated[str, BeforeValidator(_fspath)] = Field(
        DEFAULT_OUT, description="report files: a directory, or a URL such as s3://bucket/prefix"
    )
    storage_options: Annotated[Secret[dict[str, Any]], BeforeValidator(_json_object)] = Field(
        default_factory=lambda: Secret({}),
        description="fsspec options for an out URL and Redshift's COPY stage (key, secret, endpoint_url); hidden",
    )
    formats: tuple[str, ...] = Field(DEFAULT_FORMATS, description="report files: csv, parquet, html, hyper")
    tableau: TableauSettings = Field(default_factory=TableauSettings)


class RunPolicies(Group):
    """How a run treats bad and late inputs, earlier credit, its chunks and its lease."""

    on_bad_rows: Policy = Field(
        "error", description="input rows a check finds bad: stop the run (error) or leave them out (skip)"
    )
    on_stale: StalePolicy = Field(
        "warn", description="a date whose inputs look not yet landed: stop the run (error) or warn (warn)"
    )
    force: bool = Field(False, description="ihc-api: re-send conversions that already hold credit")
    chunk_conversions: int = Field(DEFAULT_CHUNK_CONVERSIONS, ge=1, le=MAX_CHUNK_CONVERSIONS)
    run_lease_seconds: int = Field(
        DEFAULT_LEASE_SECONDS,
        ge=MIN_LEASE_SECONDS,
        le=MAX_LEASE_SECONDS,
        description="how long the run counts as alive after its last step boundary; past it, any later run "
        "closes its record as abandoned (and drops its IHC API claims)",
    )
