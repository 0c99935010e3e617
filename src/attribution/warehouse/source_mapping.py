"""The source mapping: where the three inputs live in a user's warehouse, under which names, and in which
time zone their naive timestamps are.

Why a file of its own (TOML, ``docs/data.md#the-source-mapping``): real warehouses keep sessions, orders and
spend in their own schemas, tables and column names; a mapping names them once, and every query reads the
inputs through it (``warehouse.sources``). Without one the pipeline reads the challenge's names.

    [session_sources]
    schema = "marketing"
    table = "Sessions"
    session_id = "SessionID"
    event_timestamp = "EventAt"   # one timestamp column instead of event_date and event_time
    time_zone = "Europe/Berlin"   # the zone of its naive timestamps (default: the file's, else UTC)

Every value is a name, never SQL: it reaches a query quoted by the warehouse's dialect.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
)

from attribution.errors import ConfigError
from attribution.warehouse.tables import INPUT_TABLES
from attribution.warehouse.time_zones import UTC_NAME

TIMESTAMP_KEYS = {"session_sources": "event_timestamp", "conversions": "conv_timestamp"}
"""The key of an input's single timestamp column, which stands for its date and time columns."""
DATE_TIME_KEYS = {"session_sources": ("event_date", "event_time"), "conversions": ("conv_date", "conv_time")}
"""The date and time columns a single timestamp column stands for."""
SOURCES_OPTION = "attribution_source_mapping"
"""The execution option that carries the mapping an engine was opened with (``engine.connect``)."""


def _zone(name: str) -> str:
    """An IANA time zone name (``Europe/Berlin``) or ``UTC``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (expected an IANA name such as Europe/Berlin, or UTC)"
        ) from None
    return name


Name = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
"""A schema, table or column name as the warehouse spells it (any case, spaces allowed; no control
characters)."""
Zone = Annotated[str, AfterValidator(_zone)]


class InputMapping(BaseModel):
    """Where one input lives; each column key defaults to the challenge's name."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_name: Name | None = Field(None, alias="schema")
    """The schema (``None``: the connection's default, e.g. PostgreSQL's ``search_path``)."""
    table: Name | None = None
    time_zone: Zone | None = None
    """The zone of this input's naive timestamps (``None``: the mapping's ``time_zone``)."""
    offsets: bool = False
    """Its text timestamps carry a UTC offset (``2023-09-01 10:00:00+02:00``), converted to UTC."""

    def column(self, key: str) -> str | None:
        """The column named for ``key``, if the mapping names one."""
        return getattr(self, key, None)


def _input_model(table: Any) -> type[InputMapping]:
    """The mapping of one input table: its columns' keys (and its single timestamp key) as optional names."""
    keys = [column.name for column in table.columns]
    if table.name in TIMESTAMP_KEYS:
        keys.append(TIMESTAMP_KEYS[table.name])
    fields: dict[str, Any] = {key: (Name | None, None) for key in keys}
    return create_model(f"{table.name}_mapping", __base__=InputMapping, **fields)


INPUT_MODELS = {table.name: _input_model(table) for table in INPUT_TABLES}
SessionSourcesMapping = INPUT_MODELS["session_sources"]
ConversionsMapping = INPUT_MODELS["conversions"]
SessionCostsMapping = INPUT_MODELS["session_costs"]


class SourceMapping(BaseModel):
    """The three inputs' places and names, the zone of naive timestamps (``time_zone``) and of the report's
    dates (``report_time_zone``), both UTC by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: Zone = UTC_NAME
    report_time_zone: Zone = UTC_NAME
    """The zone of the report's dates and of the pipeline's timestamps (``--start`` and ``--end`` without an
    offset too)."""
    session_sources: SessionSourcesMapping = Field(default_factory=SessionSourcesMapping)
    conversions: ConversionsMapping = Field(default_factory=ConversionsMapping)
    session_costs: SessionCostsMapping = Field(default_factory=SessionCostsMapping)

    def of(self, name: str) -> InputMapping:
        """The mapping of the input ``name``."""
        return getattr(self, name)

    def zone_of(self, name: str) -> str:
        """The zone ``name``'s naive timestamps are read in."""
        return self.of(name).time_zone or self.time_zone


DEFAULT_MAPPING = SourceMapping()
"""No mapping: the challenge's names, naive timestamps in UTC."""


def parse_source_mapping(text: str, where: str) -> SourceMapping:
    """A mapping from TOML text, or one line naming ``where`` and the first bad key."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Bad source mapping {where}: not TOML ({exc})") from None
    try:
        mapping = SourceMapping.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "(top)"
        message = error["msg"].removeprefix("Value error, ")
        raise ConfigError(f"Bad source mapping {where}: {key}: {message}") from None
    for name, key in TIMESTAMP_KEYS.items():
        given = mapping.of(name)
        if given.column(key) and any(given.column(part) for part in DATE_TIME_KEYS[name]):
            pair = " and ".join(DATE_TIME_KEYS[name])
            raise ConfigError(f"Bad source mapping {where}: {name}.{key}: give it or {pair}, not both")
    return mapping


def load_source_mapping(path: str | None) -> SourceMapping:
    """The mapping in the TOML file at ``path`` (``None``: ``DEFAULT_MAPPING``), or one line naming the file
    and the first bad key."""
    if not path:
        return DEFAULT_MAPPING
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read the source mapping {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"Bad source mapping {path}: not UTF-8 text") from None
    return parse_source_mapping(text, path)
