"""One typed settings object for a run, in groups, and the one table of the names users give it.

Precedence: explicit values (CLI flags, DAG params) > environment (``ATTRIBUTION_*``, and the IHC API's own
``IHC_API_*`` names) > defaults. Why typed: a bad value fails once, up front, with one line naming it (as the
user named it), before any work is done. Why one table (``OPTIONS``): flags, environment variables, DAG params
and mappings of options all map onto the groups through it, matched as pydantic matched them before: in any
case, by a setting's name or its aliases, so a refusal (``public_options``) cannot be got around by spelling
a name otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import date, timedelta
from functools import cache
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine

from attribution.errors import ConfigError
from attribution.ihc_api.config import ClientConfig
from attribution.journeys import JourneyOptions
from attribution.models.names import REMOTE_MODELS
from attribution.pipeline.setting_groups import (
    ModelSettings,
    OutputSettings,
    RangeSettings,
    RunPolicies,
    WarehouseSettings,
)
from attribution.reporting.files import check_formats
from attribution.reporting.tableau import TableauTarget
from attribution.timerange import TimeRange
from attribution.warehouse.engine import open_engine
from attribution.warehouse.redshift_copy import RedshiftCopy
from attribution.warehouse.tables import NO_CONV_TYPE, CreditLabel


class Option(NamedTuple):
    """Where a name users give goes in ``Settings``, its environment variables when not ``ATTRIBUTION_<NAME>``
    (also accepted as its name), and whether its environment value is JSON (a list or a mapping)."""

    path: tuple[str, ...]
    env: tuple[str, ...] = ()
    json: bool = False


def _in(group: str, *names: str) -> dict[str, Option]:
    return {name: Option((group, name)) for name in names}


OPTIONS: dict[str, Option] = {
    **_in("warehouse", "db", "source_mapping", "source_mapping_toml", "create_indexes"),
    **_in("warehouse", "redshift_copy_url", "redshift_iam_role"),
    **_in("range", "start", "end", "lookback_days", "drop_impressions", "restate_days"),
    "model": Option(("model", "name")),
    **_in("model", "report_model", "half_life_hours", "markov_order"),
    "direct_channels": Option(("model", "direct_channels"), json=True),
    "position_weights": Option(("model", "position_weights"), json=True),
    "ihc_url": Option(("ihc_api", "base_url"), env=("IHC_API_URL", "ATTRIBUTION_IHC_URL")),
    "ihc_api_key": Option(("ihc_api", "api_key"), env=("IHC_API_KEY",)),
    "conv_type_id": Option(("ihc_api", "conv_type_id"), env=("IHC_CONV_TYPE_ID", "ATTRIBUTION_CONV_TYPE_ID")),
    **_in("ihc_api", "max_journeys", "max_sessions", "long_journey_policy", "concurrency", "rate_limit"),
    **_in("ihc_api", "max_requests", "max_retries", "max_connection_failures"),
    "request_timeout": Option(("ihc_api", "timeout")),
    **_in("output", "out"),
    "storage_options": Option(("output", "storage_options"), json=True),
    "formats": Option(("output", "formats"), json=True),
    **{f"tableau_{name}": Option(("output", "tableau", name)) for name in ("url", "site", "project")},
    **{f"tableau_{name}": Option(("output", "tableau", name)) for name in ("datasource", "timeout")},
    **{f"tableau_{name}": Option(("output", "tableau", name)) for name in ("token_name", "token_secret")},
    **_in("policies", "on_bad_rows", "on_stale", "force", "chunk_conversions", "run_lease_seconds"),
}
"""Every name a setting is given by (flags, DAG params, ``ATTRIBUTION_<NAME>``, mappings of options): the one
table from the names users know to the groups."""
CONNECTION_OPTIONS = frozenset(
    {"db", "ihc_api_key", "storage_options", "tableau_url", "tableau_token_name", "tableau_token_secret"}
)
"""Settings that hold a secret or pick a connection: set by the environment, a flag or a connection, never by
a mapping of options someone else may edit (the DAG's Variable ``attribution_options``). ``tableau_url`` is one:
whoever sets it chooses where the token's secret is sent."""


class Settings(BaseModel):
    """What a run reads, which range and model it uses, the IHC API, where it writes and how it runs."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)
    range: RangeSettings = Field(default_factory=RangeSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    ihc_api: ClientConfig = Field(default_factory=ClientConfig)
    output: OutputSettings = Field(default_factory=OutputSettings)
    policies: RunPolicies = Field(default_factory=RunPolicies)

    def replaced(self, **given: object) -> Settings:
        """A copy with the settings ``given`` by their names (``OPTIONS``) replaced, unchecked."""
        copy = self
        for name, value in given.items():
            copy = _replaced_at(copy, OPTIONS[option_field(name, "setting")].path, value)
        return copy

    @property
    def time_range(self) -> TimeRange:
        """The conversions the run attributes: ``[start, end)``, reaching back ``restate_days`` more days (a
        run's window plan narrows it to the days it redoes: ``pipeline.window``)."""
        return self.asked_range.reaching_back(self.range.restate_days)

    @property
    def asked_range(self) -> TimeRange:
        """``[start, end)`` as given, without the restatement window."""
        return TimeRange.parse(self.range.start, self.range.end, self.warehouse.sources.report_time_zone)

    @property
    def restated_dates(self) -> list[str]:
        """The report dates the restatement window redoes before ``start`` (none without one)."""
        span = self.asked_range.date_span()
        if span is None:
            return []
        first = date.fromisoformat(span[0])
        return [(first - timedelta(days=back)).isoformat() for back in range(self.range.restate_days, 0, -1)]

    @property
    def journey_options(self) -> JourneyOptions:
        return JourneyOptions(
            lookback_days=self.range.lookback_days,
            drop_impressions=self.range.drop_impressions,
            only_unattributed=self.remote and not self.policies.force,
            credit_label=self.credit_label,
            skip_bad_rows=self.policies.on_bad_rows == "skip",
        )

    @property
    def remote(self) -> bool:
        """Whether credit comes from the IHC API (committed as answers arrive) rather than a local model."""
        return self.model.name in REMOTE_MODELS

    @property
    def credit_label(self) -> CreditLabel:
        """What the run's credit is stored under, and all the run replaces."""
        return self.label_of(self.model.name)

    @property
    def report_label(self) -> CreditLabel:
        """Whose credit the report and its files count: ``report_model``'s (the model of record, with the
        run's conversion type where it takes one), else the run's own."""
        return self.label_of(self.model.report_model or self.model.name)

    def label_of(self, model: str) -> CreditLabel:
        """``model``'s credit label: with the conversion type for the IHC models, which learn one per type."""
        conv_type = self.ihc_api.conv_type_id if model in ("ihc", *REMOTE_MODELS) else NO_CONV_TYPE
        return CreditLabel(model, conv_type)

    @property
    def redshift_copy(self) -> RedshiftCopy | None:
        """How Redshift loads result rows from object storage, when both staging settings are given; the
        runners hand it to every function that writes rows (``bulk_insert``'s ``redshift_copy``)."""
        url, role = self.warehouse.redshift_copy_url, self.warehouse.redshift_iam_role
        if not (url or role):
            return None
        if not (url and role):
            raise ConfigError("Set both redshift_copy_url and redshift_iam_role to load Redshift by COPY")
        return RedshiftCopy(url, role, self.output.storage_options.get_secret_value())

    @property
    def tableau_target(self) -> TableauTarget:
        """Where the Hyper extract is published; a ``ConfigError`` naming the settings that are missing."""
        return self.output.tableau.target(
            {path[-1]: name for name, path in _paths().items() if "tableau" in path}
        )

    def open_warehouse(self) -> AbstractContextManager[Engine]:
        """The run's warehouse (``open_engine``), with its source mapping."""
        return open_engine(self.warehouse.db, sources=self.warehouse.sources)


def _replaced_at(model: BaseModel, path: tuple[str, ...], value: object) -> Any:
    head, *rest = path
    inner = _replaced_at(getattr(model, head), tuple(rest), value) if rest else value
    return model.model_copy(update={head: inner})


@cache
def _paths() -> dict[str, tuple[str, ...]]:
    return {name: option.path for name, option in OPTIONS.items()}


@cache
def _option_names() -> dict[str, str]:
    """Every name a setting answers to (its own and its extra environment names), lower-cased, and the
    setting's name."""
    return {alias.lower(): name for name, option in OPTIONS.items() for alias in (name, *option.env)}


def option_field(name: str, where: str) -> str:
    """The setting ``name`` sets, matched in any case, by the setting's name or an alias."""
    field = _option_names().get(name.lower())
    if field is None:
        raise ConfigError(f"Bad {where}: unknown option {name!r}")
    return field


def canonical_options(given: Mapping[str, object], where: str) -> dict[str, object]:
    """``given`` keyed by setting names, so each setting is given once, under one name."""
    options: dict[str, object] = {}
    for name, value in given.items():
        field = option_field(name, where)
        if field in options:
            raise ConfigError(f"Bad {where}: {field!r} is given twice ({name!r})")
        options[field] = value
    return options


def public_options(given: object, where: str) -> dict[str, object]:
    """Options from a mapping someone else may edit, by setting name: no spelling of a connection or secret
    setting (``CONNECTION_OPTIONS``) passes; the message names the option, never its value."""
    if not isinstance(given, Mapping):
        raise ConfigError(f"Bad {where}: expected a JSON object of option names and values")
    options = canonical_options(given, where)
    if refused := sorted(CONNECTION_OPTIONS & set(options)):
        raise ConfigError(
            f"{where} must not hold {', '.join(refused)} (in any spelling): set them by the connections"
        )
    return options


def environment_options(environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    """The settings the environment gives (names matched in any case), JSON decoded where ``OPTIONS`` says."""
    lowered = {name.lower(): value for name, value in environ.items()}
    options: dict[str, object] = {}
    for name, option in OPTIONS.items():
        for variable in option.env or (f"ATTRIBUTION_{name}",):
            if (value := lowered.get(variable.lower())) is not None:
                options[name] = _decoded(name, value) if option.json else value
                break
    return options


def _decoded(name: str, value: str) -> object:
    try:
        return json.loads(value)
    except ValueError:
        raise ConfigError(f"Bad setting {name}: expected JSON in its environment variable") from None


def config_error(exc: ValidationError, what: str) -> ConfigError:
    """The first problem pydantic found, as the one-line error a user sees, naming the setting as users do."""
    error = exc.errors()[0]
    loc = tuple(str(part) for part in error["loc"])
    names = {path: name for name, path in _paths().items()}
    known = next((loc[:end] for end in range(len(loc), 0, -1) if loc[:end] in names), ())
    field = ".".join([names[known], *loc[len(known) :]] if known else loc) or what
    return ConfigError(f"Bad {what} {field}: {error['msg']}")


def nested(flat: Mapping[str, object]) -> dict[str, Any]:
    """Settings given by their names (``OPTIONS``) as the groups' nested mapping."""
    groups: dict[str, Any] = {}
    for name, value in flat.items():
        *outer, last = OPTIONS[name].path
        inner = groups
        for part in outer:
            inner = inner.setdefault(part, {})
        inner[last] = value
    return groups


def load_settings(**explicit: object) -> Settings:
    """Settings from explicit values by name (``None`` means not given), the environment and the defaults."""
    given = canonical_options({key: value for key, value in explicit.items() if value is not None}, "setting")
    try:
        settings = Settings.model_validate(nested({**environment_options(), **given}))
    except ValidationError as exc:
        raise config_error(exc, "setting") from None
    settings.time_range  # noqa: B018 - validate the range and the staging now, not half-way through a run
    settings.redshift_copy  # noqa: B018
    check_formats(settings.output.formats)
    return settings
