"""The inputs as every query reads them: the three canonical relations, found in the warehouse through the
source mapping and rendered as SQL.

Why one place: a query names ``session_sources``, ``conversions`` or ``session_costs`` only through
``Sources.relation`` (text SQL) or ``Sources.selectable`` (SQLAlchemy Core). Where the warehouse holds the
challenge's names and text columns, that is the bare table name, so the SQL is exactly what it always was.
Otherwise it is a subquery over the user's table, every identifier quoted by the dialect, that gives each
canonical column in the pipeline's form (ids and dates as text, ``YYYY-MM-DD`` and ``HH:MM:SS`` in UTC, flags
as integers, money as floats): typed ``DATE``, ``TIME``, ``TIMESTAMP`` (with or without time zone),
``BOOLEAN`` and ``NUMERIC`` columns, a single timestamp column, text timestamps with offsets and naive ones
in another zone are all read natively, and the rest of the pipeline's SQL stays one text for every input.

A converted column is also given as it is stored (``raw_<key>``), so the input checks test what its type
can hold wrongly (a NULL, a flag of 2, text that is no timestamp) and a filter by date can compare the stored
column against typed bounds, which an index on it serves (``day_range``).
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal, NamedTuple

from sqlalchemy import (
    TEXT,
    VARCHAR,
    Column,
    ColumnElement,
    Connection,
    Engine,
    FromClause,
    Index,
    MetaData,
    Table,
    cast,
    column,
    inspect,
    text,
)
from sqlalchemy import types as sqltypes

from attribution.errors import SchemaError
from attribution.timerange import zone_info
from attribution.warehouse.dialects import Profile, bound_date, plus_days, profile_of
from attribution.warehouse.engine import redact_url
from attribution.warehouse.source_mapping import (
    DATE_TIME_KEYS,
    DEFAULT_MAPPING,
    SOURCES_OPTION,
    TIMESTAMP_KEYS,
    SourceMapping,
)
from attribution.warehouse.tables import INPUT_TABLES
from attribution.warehouse.time_zones import UTC_NAME, literal

Kind = Literal[
    "text", "integer", "real", "numeric", "boolean", "date", "time", "timestamp", "timestamptz", "other"
]
"""What a stored column holds. On SQLite (a type is an affinity, any value fits any column) only ``text``,
``integer``, ``real``, ``numeric`` and ``other`` occur, and dates and times are always text."""
Role = Literal["id", "label", "date", "time", "timestamp", "flag", "money"]

TABLES = {table.name: table for table in INPUT_TABLES}
ROLES: dict[str, Role] = {
    "session_id": "id",
    "user_id": "id",
    "conv_id": "id",
    "channel_name": "label",
    "event_date": "date",
    "conv_date": "date",
    "event_time": "time",
    "conv_time": "time",
    "event_timestamp": "timestamp",
    "conv_timestamp": "timestamp",
    "holder_engagement": "flag",
    "closer_engagement": "flag",
    "impression_interaction": "flag",
    "revenue": "money",
    "cost": "money",
}
SOURCE = "src"
"""The alias of the user's table inside a relation's subquery."""
RAW = "raw_"
"""The prefix of a converted column's stored value in a relation."""


@dataclass(frozen=True)
class SourceColumn:
    """A column of the user's table: its name as the warehouse spells it, what it holds, and its type's name
    (for messages)."""

    name: str
    kind: Kind
    type_name: str = ""


class StoredMoment(NamedTuple):
    """Typed columns that order rows in time (``Sources.stored_moment``), and how a canonical date and time
    (``YYYY-MM-DD``, ``HH:MM:SS``: whole seconds) compare with them. Compared against a whole second, a stored
    value with a fraction is before it exactly when its canonical text is, so the comparison is exact."""

    columns: tuple[str, ...]
    kinds: tuple[Kind, ...]
    zone: str | None
    """A ``timestamptz``'s report zone, as a literal: a canonical text timestamp is a time there."""

    def of(self, date_text: str, time_text: str) -> tuple[str, ...]:
        """A canonical date and time as values of the stored columns' types."""
        if self.kinds == ("date", "time"):
            return f"CAST({date_text} AS DATE)", f"CAST({time_text} AS TIME)"
        return (self._at(f"CAST({date_text} || ' ' || {time_text} AS TIMESTAMP)"),)

    def days_before(self, timestamp_text: str, days: int) -> str:
        """``days`` days before a canonical text timestamp, comparable with ``instant`` (the days are taken
        from the report zone's clock, as ``Profile.days_before`` takes them from the text)."""
        return self._at(f"(CAST({timestamp_text} AS TIMESTAMP) - INTERVAL '{int(days)} days')")

    def _at(self, timestamp: str) -> str:
        return f"{timestamp} AT TIME ZONE {self.zone}" if self.zone else timestamp

    @property
    def instant(self) -> str:
        """The stored moment as one value (a date and a time added into a timestamp)."""
        return " + ".join(self.columns)


@dataclass(frozen=True)
class Relation:
    """One input as found: where it lives, its columns by key (canonical names, or the single timestamp's
    key), and how its timestamps read."""

    input: str
    schema: str | None
    table: str
    view: bool
    columns: Mapping[str, SourceColumn]
    zone: str = UTC_NAME
    offsets: bool = False

    @property
    def timestamp_key(self) -> str | None:
        """The key of its single timestamp column, if it has one instead of a date and a time."""
        key = TIMESTAMP_KEYS.get(self.input)
        return key if key in self.columns else None

    @property
    def day_key(self) -> str:
        """The key of the column that dates a row: its single timestamp, else its date."""
        return self.timestamp_key or DATE_TIME_KEYS[self.input][0]


def _challenge_relation(table: Table) -> Relation:
    """An input with the challenge's names and types (what ``attribution generate`` makes)."""
    kinds: dict[type, Kind] = {sqltypes.Text: "text", sqltypes.Integer: "integer"}
    columns = {c.name: SourceColumn(c.name, kinds.get(type(c.type), "real")) for c in table.columns}
    return Relation(table.name, None, table.name, False, columns)


@dataclass(frozen=True)
class Sources:
    """The three inputs of one warehouse, and how its queries read them."""

    profile: Profile
    relations: Mapping[str, Relation]
    quote: Callable[[str], str] = field(default=lambda name: name, compare=False)
    report_zone: str = UTC_NAME
    _values: dict[str, dict[str, str]] = field(init=False, repr=False, compare=False)
    """Each input's canonical columns as SQL (``_canonical``), written once: a zone's search is long."""

    def __post_init__(self) -> None:
        values = {name: self._canonical(relation) for name, relation in self.relations.items()}
        object.__setattr__(self, "_values", values)

    @classmethod
    def canonical(cls, profile: Profile) -> Sources:
        """The challenge's tables and types: every relation its bare name (the golden SQL files' case)."""
        return cls(profile, {name: _challenge_relation(table) for name, table in TABLES.items()})

    # -- the relations, as SQL -----------------------------------------------------------------------------

    def relation(self, name: str, alias: str | None = None, *, rowid: str | None = None) -> str:
        """The input ``name`` as a FROM item, aliased ``alias`` (unaliased: its own name); ``rowid``, a
        SQLite name of the table's rowid, adds it as the column ``scan_rowid`` (a bare table has its own)."""
        if self.is_bare(name):
            return name if alias in (None, name) else f"{name} {alias}"
        return f"({self.select_sql(name, rowid=rowid)}) {alias or name}"

    def is_bare(self, name: str) -> bool:
        """Whether the input is read as the table of its own name: the challenge's names (in any case where
        the warehouse matches names so) and no column converted."""
        relation, fold = self.relations[name], self.profile.fold
        return (
            relation.schema is None
            and fold(relation.table) == name
            and not self._converted(relation)
            and all(fold(c.name) == key for key, c in relation.columns.items())
        )

    def qualified(self, name: str) -> str:
        """The user's table of input ``name``, quoted, with its schema."""
        relation = self.relations[name]
        table = self.quote(relation.table)
        return f"{self.quote(relation.schema)}.{table}" if relation.schema else table

    def tables(self) -> list[str]:
        """The user's tables (not views) of the inputs, as ``qualified`` names them."""
        return [self.qualified(name) for name, relation in self.relations.items() if not relation.view]

    def select_sql(self, name: str, *, rowid: str | None = None) -> str:
        """The subquery that gives the input ``name`` its canonical columns, then the stored values of the
        converted ones (``raw_<key>``)."""
        relation = self.relations[name]
        values = self._values[name]
        items = [f"{values[c.name]} AS {c.name}" for c in TABLES[name].columns]
        items += [f"{self._column(relation, key)} AS {RAW}{key}" for key in sorted(self._converted(relation))]
        if rowid is not None:
            items.append(f"{SOURCE}.{rowid} AS scan_rowid")
        return f"SELECT {', '.join(items)} FROM {self.qualified(name)} {SOURCE}"

    def selectable(self, name: str) -> FromClause:
        """The input ``name`` for SQLAlchemy Core: its ``tables`` Table where it is bare, else the subquery
        with the same columns."""
        table = TABLES[name]
        if self.is_bare(name):
            return table
        columns = [column(c.name, c.type) for c in table.columns]
        return text(self.select_sql(name)).columns(*columns).subquery(name)

    # -- what the checks and filters ask ----------------------------------------------------------------------

    def kind(self, name: str, key: str) -> Kind | None:
        """What the column of ``key`` holds (``None``: the input has no such column, e.g. a date and a time
        where it has a single timestamp)."""
        source = self.relations[name].columns.get(key)
        return None if source is None else source.kind

    def value(self, name: str, key: str, t: str) -> str:
        """The stored value of ``key`` in the relation aliased ``t``: its canonical column, or ``raw_<key>``
        where that is converted (a SQLite date or time as text: ``_stored``); a date or time read from a
        single timestamp is the timestamp's."""
        relation = self.relations[name]
        key = self._source_key(relation, key)
        if key not in self._converted(relation):
            return f"{t}.{key}"
        return self._as_read(relation, key, f"{t}.{RAW}{key}")

    def text_of(self, name: str, key: str, t: str) -> str:
        """The id ``key`` of input ``name`` aliased ``t``, as text where rows leave SQL: SQLite compares ids as
        stored (an expression on the right of a LEFT JOIN keeps any index from serving it), so an id stored
        as a number is made text only here; elsewhere the relation reads every id as text already."""
        sqlite, kind = self.profile.name == "sqlite", self.kind(name, key)
        return f"CAST({t}.{key} AS TEXT)" if sqlite and kind not in (None, "text") else f"{t}.{key}"

    def text_item(self, name: str, key: str, t: str) -> str:
        """``text_of`` as a select item named ``key``."""
        value = self.text_of(name, key, t)
        return value if value == f"{t}.{key}" else f"{value} AS {key}"

    def column_name(self, name: str, key: str) -> str:
        """The user's name of the column ``key`` of input ``name`` is read from (a date or time: the single
        timestamp's), for messages."""
        relation = self.relations[name]
        return relation.columns[self._source_key(relation, key)].name

    def timestamp_key(self, name: str) -> str | None:
        return self.relations[name].timestamp_key

    def offsets(self, name: str) -> bool:
        return self.relations[name].offsets

    def day_range(self, name: str, t: str, low: str, high: str) -> str:
        """An ``AND`` term that an index on the stored date or timestamp column serves, for a filter of the
        relation aliased ``t`` to the dates from ``low`` to ``high`` (bound values): ``""`` where the canonical
        date is the stored one (the filter itself is served). Exact where the stored values are in the report's
        zone (or know their instant); a day wider on each side otherwise (the filter itself stays exact)."""
        relation = self.relations[name]
        key = relation.day_key
        if key not in self._converted(relation):
            return ""
        kind, stored = relation.columns[key].kind, f"{t}.{RAW}{key}"
        stored = f"CAST({stored} AS TEXT)" if self._indexed_as_text(relation, key) else stored
        exact = self._exact(relation)
        before, after = (0, 1) if exact else (-1, 2)
        if self.profile.name == "sqlite" or kind == "text":
            first = low if exact else self.profile.day_text(low, before)
            return f" AND {stored} >= {first} AND {stored} < {self.profile.day_text(high, after)}"
        first, last = plus_days(bound_date(low), before), plus_days(bound_date(high), after)
        if kind == "timestamptz":  # midnight in the report's zone, as an instant
            zone = literal(self.report_zone)
            first = f"CAST({first} AS TIMESTAMP) AT TIME ZONE {zone}"
            last = f"CAST({last} AS TIMESTAMP) AT TIME ZONE {zone}"
        return f" AND {stored} >= {first} AND {stored} < {last}"

    def dated(self, name: str, t: str, low: str, high: str) -> str:
        """A filter of the relation aliased ``t`` to the rows whose canonical date is from ``low`` to ``high``
        (bound values): ``day_range``'s comparisons of the stored column, alone where they are exact on a
        type that holds only real days and instants (a server's ``DATE`` or ``TIMESTAMP`` in the report's
        zone, or a ``timestamptz``), else followed by the canonical date's, which keep it exact.

        Why: the canonical date is text made of the column, which the planner has no statistics of (it
        guessed one session in 200 of a day's, and looped over the costs) and which is made for every row a
        scan reads; compared after the stored value, a row of another date is turned away before it is made."""
        date_key = DATE_TIME_KEYS[name][0]
        canonical = f"{t}.{date_key} >= {low} AND {t}.{date_key} <= {high}"
        served = self.day_range(name, t, low, high).removeprefix(" AND ")
        if not served:
            return canonical
        relation = self.relations[name]
        typed = self.profile.name != "sqlite" and relation.columns[relation.day_key].kind != "text"
        return served if typed and self._exact(relation) else f"{served} AND {canonical}"

    def stored_moment(self, name: str, t: str) -> StoredMoment | None:
        """The stored columns of input ``name`` aliased ``t`` that order its rows in time as its canonical date
        and time do, where a server holds them typed with no conversion (a ``DATE`` and a ``TIME``, or a
        ``TIMESTAMP``, in the report's zone; a ``timestamptz``). ``None`` elsewhere (SQLite, text, another zone).

        Why: a join that compares the canonical text makes it of both columns for every pair it tries (at 10M
        sessions, most of a typed first run's journey step); the stored columns compare as they are, and an
        index on them serves the comparison."""
        relation = self.relations[name]
        key = relation.day_key
        if self.profile.name == "sqlite" or key not in self._converted(relation) or not self._exact(relation):
            return None
        keys = (key,) if relation.timestamp_key else DATE_TIME_KEYS[name]
        kinds = tuple(relation.columns[k].kind for k in keys)
        if kinds not in (("date", "time"), ("timestamp",), ("timestamptz",)):
            return None
        zone = literal(self.report_zone) if kinds == ("timestamptz",) else None
        return StoredMoment(tuple(f"{t}.{RAW}{k}" for k in keys), kinds, zone)

    def newest_sql(self, name: str) -> str:
        """The largest stored value of the date or timestamp column of input ``name``, as its index holds it:
        a maximum the index serves, where the largest canonical date, made of the column, is a scan of the
        whole table. ``newest_days`` gives the canonical dates of the newest rows from it."""
        relation = self.relations[name]
        key = relation.day_key
        column = self._column(relation, key)
        stored = f"CAST({column} AS TEXT)" if self._indexed_as_text(relation, key) else column
        return f"SELECT MAX({stored}) FROM {self.qualified(name)} {SOURCE}"

    def newest_days(self, name: str, newest: object) -> tuple[str, str] | None:
        """The first and last canonical date the rows of the largest canonical date of input ``name`` can be
        on, given the largest stored value ``newest`` (``newest_sql``; not ``None``): its day where that is
        its canonical date (``_exact``), else a day either side. ``None`` where ``newest`` is text that names
        no day."""
        if isinstance(newest, datetime) and newest.tzinfo is not None:  # an instant: its report date
            newest = newest.astimezone(zone_info(self.report_zone))
        try:
            day = date.fromisoformat(str(newest)[:10])
        except ValueError:
            return None
        if self._exact(self.relations[name]):
            return day.isoformat(), day.isoformat()
        before = day - timedelta(days=1) if day > date.min else day
        after = day + timedelta(days=1) if day < date.max else day
        return before.isoformat(), after.isoformat()

    def declared_keys(self, bind: Engine | Connection) -> set[tuple[str, str]]:
        """(input, key) pairs a primary key or a unique constraint of one column keeps unique (a view declares
        none); a converted id too (a cast to text keeps distinct integers distinct)."""
        inspector, keys = inspect(bind), set()
        for name, relation in self.relations.items():
            if relation.view:
                continue
            primary = inspector.get_pk_constraint(relation.table, relation.schema).get("constrained_columns")
            with (
                warnings.catch_warnings()
            ):  # SQLite's reflection skips, saying so, the pipeline's expression indexes
                warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
                found = inspector.get_unique_constraints(relation.table, relation.schema)
            uniques = [u["column_names"] for u in found]
            single = {columns[0] for columns in (primary or [], *uniques) if len(columns) == 1}
            keys |= {(name, key) for key, source in relation.columns.items() if source.name in single}
        return keys

    def indexes(self, wanted: tuple[Index, ...]) -> list[Index]:
        """The pipeline's indexes of ``wanted`` on the tables (not views) they belong to: as defined where the
        input is bare, else on the user's table, each canonical column as the relation reads it where that is
        a cast (an id read as text: the joins by id compare the cast, which only an index on it serves), else
        its stored column (a converted date or timestamp serves ``day_range``; a single timestamp once)."""
        made = []
        for index in wanted:
            name = index.table.name
            relation = self.relations[name]
            if relation.view:
                continue
            if self.is_bare(name):
                made.append(index)
                continue
            keys = [self._source_key(relation, c.name) for c in index.columns]
            stored = dict.fromkeys(relation.columns[key].name for key in keys)
            table = Table(relation.table, MetaData(), *(Column(n) for n in stored), schema=relation.schema)
            elements = dict.fromkeys(
                self._indexed(relation, key, table.c[relation.columns[key].name]) for key in keys
            )
            made.append(Index(index.name, *elements))
        return made

    def _indexed(self, relation: Relation, key: str, stored: ColumnElement) -> ColumnElement:
        """What an index holds for ``key``: the cast the relation reads an id (or a SQLite date or time) as,
        else the stored column."""
        if key not in self._converted(relation) or key == relation.timestamp_key:
            return stored
        role, kind = ROLES[key], relation.columns[key].kind
        if role in ("id", "label") and kind != "text":
            return cast(stored, VARCHAR)
        return cast(stored, TEXT) if self._indexed_as_text(relation, key) else stored

    def _exact(self, relation: Relation) -> bool:
        """Whether the day of a stored date or timestamp is its canonical date: stored in the report's zone
        without offsets, or an instant (a ``timestamptz``, compared and read in the report's zone)."""
        kind = relation.columns[relation.day_key].kind
        return (relation.zone == self.report_zone and not relation.offsets) or kind == "timestamptz"

    def _indexed_as_text(self, relation: Relation, key: str) -> bool:
        """Whether the index holds the converted date or time ``key`` as the text SQLite reads it as (in the
        report's zone, a canonical date or time is that text: the range filters compare it, so must
        ``day_range``)."""
        timely = ROLES[key] in ("date", "time") and key != relation.timestamp_key
        converted = key in self._converted(relation)
        return timely and converted and self.profile.name == "sqlite" and relation.zone == self.report_zone

    # -- how each canonical column is read -------------------------------------------------------------------

    def _column(self, relation: Relation, key: str) -> str:
        return f"{SOURCE}.{self.quote(relation.columns[key].name)}"

    def _stored(self, relation: Relation, key: str) -> str:
        """The stored value of ``key`` as the relation reads it (``_as_read``)."""
        return self._as_read(relation, key, self._column(relation, key))

    def _as_read(self, relation: Relation, key: str, column: str) -> str:
        """The column ``column`` of ``key`` as read: a SQLite date or time in a column of another affinity than
        text as text (compared with text, a value in a column of numeric affinity is compared as a number:
        ``'10:00:00' < '24'`` is false there)."""
        timely = ROLES[key] in ("date", "time", "timestamp")
        if self.profile.name == "sqlite" and timely and relation.columns[key].kind != "text":
            return f"CAST({column} AS TEXT)"
        return column

    @staticmethod
    def _source_key(relation: Relation, key: str) -> str:
        """The key of the column a canonical column is read from (a date or time: the single timestamp's)."""
        return relation.timestamp_key if key not in relation.columns and relation.timestamp_key else key

    def _converted(self, relation: Relation) -> set[str]:
        """The keys whose canonical value is not the stored one."""
        values = self._values[relation.input]
        stored = {key: self._column(relation, key) for key in relation.columns}
        converted = {key for key in relation.columns if key in values and values[key] != stored[key]}
        if relation.timestamp_key:
            converted.add(relation.timestamp_key)
        return converted

    def _canonical(self, relation: Relation) -> dict[str, str]:
        """Each canonical column's SQL over the user's table (aliased ``SOURCE``)."""
        values = {
            key: _read(self.profile, ROLES[key], source, self._stored(relation, key))
            for key, source in relation.columns.items()
            if ROLES[key] not in ("date", "time", "timestamp")
        }
        if relation.input in DATE_TIME_KEYS:
            values.update(self._times(relation))
        return values

    def _times(self, relation: Relation) -> dict[str, str]:
        """The canonical date and time: in the report's zone, ``YYYY-MM-DD`` and ``HH:MM:SS``."""
        profile, date_key, time_key = self.profile, *DATE_TIME_KEYS[relation.input]
        same_zone = relation.zone == self.report_zone
        if ts_key := relation.timestamp_key:
            stored, kind = self._stored(relation, ts_key), relation.columns[ts_key].kind
            if profile.name == "sqlite" or kind == "text":
                timestamp = _text_timestamp(profile, stored, relation, self.report_zone)
            else:
                moved = not same_zone or kind == "timestamptz"
                timestamp = (
                    profile.moved(stored, relation.zone, self.report_zone, typed=kind)
                    if moved
                    else profile.typed_text(stored, "timestamp")
                )
            return {date_key: f"SUBSTR({timestamp}, 1, 10)", time_key: f"SUBSTR({timestamp}, 12, 8)"}
        date, time = relation.columns[date_key], relation.columns[time_key]
        stored_date, stored_time = self._stored(relation, date_key), self._stored(relation, time_key)
        typed = profile.name != "sqlite"
        date_text = profile.typed_text(stored_date, "date") if typed and date.kind == "date" else stored_date
        time_text = profile.typed_text(stored_time, "time") if typed and time.kind == "time" else stored_time
        if same_zone:
            return {date_key: date_text, time_key: time_text}
        if typed and (date.kind, time.kind) == ("date", "time"):
            timestamp = profile.moved(
                f"({stored_date} + {stored_time})", relation.zone, self.report_zone, typed="timestamp"
            )
        else:
            valid = f"{profile.is_date(date_text)} AND {profile.is_time(time_text)}"
            joined = profile.moved(f"{date_text} || ' ' || {time_text}", relation.zone, self.report_zone)
            timestamp = f"CASE WHEN {valid} THEN {joined} END"
        return {date_key: f"SUBSTR({timestamp}, 1, 10)", time_key: f"SUBSTR({timestamp}, 12, 8)"}


def _read(profile: Profile, role: Role, source: SourceColumn, stored: str) -> str:
    """A stored id, label, flag or money value as the pipeline's canonical column holds it."""
    kind, sqlite = source.kind, profile.name == "sqlite"
    if role == "id" and sqlite:
        return stored  # compared as stored (SQLite converts by affinity), made text where rows leave: as_text
    if role in ("id", "label"):
        return stored if kind == "text" else f"CAST({stored} AS VARCHAR)"
    if role == "flag":
        if kind == "integer":
            return stored
        if kind == "boolean":
            return f"CASE WHEN {stored} THEN 1 WHEN NOT {stored} THEN 0 END"
        if kind == "text" and not sqlite:
            return f"CASE {stored} WHEN '1' THEN 1 WHEN '0' THEN 0 END"
        return f"CAST({stored} AS INTEGER)"
    # money
    if kind == "real":
        return stored
    if sqlite:
        return f"CAST({stored} AS REAL)"
    number = f"CAST({stored} AS DOUBLE PRECISION)"
    return f"CASE WHEN {profile.is_number(stored)} THEN {number} END" if kind == "text" else number


def valid_timestamp(profile: Profile, stored: str, offsets: bool) -> str:
    """Whether the text ``stored`` is ``YYYY-MM-DD HH:MM:SS`` (or with a ``T``), a real day and time, without
    a fraction; with ``offsets`` followed by its UTC offset (``Z``, ``+HH``, ``+HHMM`` or ``+HH:MM``)."""
    head = (
        f"SUBSTR({stored}, 11, 1) IN (' ', 'T') AND {profile.is_date(f'SUBSTR({stored}, 1, 10)')} "
        f"AND {profile.is_time(f'SUBSTR({stored}, 12, 8)')}"
    )
    if not offsets:
        return f"(LENGTH({stored}) = 19 AND {head})"
    suffix = f"SUBSTR({stored}, 20)"
    forms = " OR ".join(
        profile.matches(suffix, pattern)
        for pattern in ("[-+][0-1][0-9]", "[-+][0-1][0-9][0-5][0-9]", "[-+][0-1][0-9]:[0-5][0-9]")
    )
    return f"(LENGTH({stored}) IN (20, 22, 24, 25) AND {head} AND ({suffix} = 'Z' OR {forms}))"


def _text_timestamp(profile: Profile, stored: str, relation: Relation, report_zone: str) -> str:
    """A text timestamp column as the naive text timestamp in ``report_zone`` (NULL where it is none)."""
    head = f"SUBSTR({stored}, 1, 10) || ' ' || SUBSTR({stored}, 12, 8)"
    if relation.offsets:
        suffix = f"SUBSTR({stored}, 20)"
        # as +HH:MM, which SQLite reads; no literal has a colon before a word (SQLAlchemy would bind it)
        offset = (
            f"CASE LENGTH({suffix}) WHEN 3 THEN {suffix} || ':' || '00' "
            f"WHEN 5 THEN SUBSTR({suffix}, 1, 3) || ':' || SUBSTR({suffix}, 4, 2) ELSE {suffix} END"
        )
        converted = profile.with_offset(f"{head} || {offset}", report_zone)
    elif relation.zone != report_zone:
        converted = profile.moved(head, relation.zone, report_zone)
    else:
        return stored  # its date and time are its first ten characters and the eight after the separator
    return f"CASE WHEN {valid_timestamp(profile, stored, relation.offsets)} THEN {converted} END"


# -- finding the inputs ----------------------------------------------------------------------------------------


def _kind(profile: Profile, kind: sqltypes.TypeEngine) -> Kind:
    """What a reflected column holds (on SQLite: its affinity)."""
    order: list[tuple[type, Kind]] = [
        (sqltypes.Boolean, "boolean"),
        (sqltypes.Integer, "integer"),
        (sqltypes.Float, "real"),
        (sqltypes.Numeric, "numeric"),
        (sqltypes.DateTime, "timestamp"),
        (sqltypes.Date, "date"),
        (sqltypes.Time, "time"),
        (sqltypes.String, "text"),
    ]
    found: Kind = next((name for cls, name in order if isinstance(kind, cls)), "other")
    if profile.name == "sqlite":  # an affinity: BOOLEAN, DATE, DATETIME and DECIMAL are NUMERIC
        return found if found in ("integer", "real", "text", "other") else "numeric"
    if found == "timestamp" and getattr(kind, "timezone", False):
        return "timestamptz"
    if found == "time" and getattr(kind, "timezone", False):
        return "other"  # a time with a zone but no day: its instant is unknown
    return found


ACCEPTED: dict[Role, tuple[Kind, ...]] = {
    "id": ("text", "integer", "numeric", "other"),
    "label": ("text",),
    "date": ("text", "date"),
    "time": ("text", "time"),
    "timestamp": ("text", "timestamp", "timestamptz"),
    "flag": ("integer", "boolean", "real", "numeric", "text"),
    "money": ("real", "numeric", "integer", "text"),
}
"""The kinds each role is read from on PostgreSQL and Redshift (SQLite reads any)."""


def _match(names: list[str], wanted: str, fold: bool = True) -> str | None:
    """The one of ``names`` spelled ``wanted``, else the one equal to it in any case (``None``: none, or
    several that differ only in case)."""
    if wanted in names:
        return wanted
    same = [name for name in names if name.lower() == wanted.lower()]
    return same[0] if fold and len(same) == 1 else None


def resolve_sources(bind: Engine | Connection, mapping: SourceMapping = DEFAULT_MAPPING) -> Sources:
    """Find the three inputs in the warehouse (``mapping``'s schema, table and column names, each in any case
    where the name alone is ambiguous in none), or fail with one line naming the first missing table or
    column, or a column whose type cannot hold its values."""
    profile, inspector = profile_of(bind), inspect(bind)
    relations = {}
    for name, table in TABLES.items():
        given = mapping.of(name)
        schema = given.schema_name
        tables, views = inspector.get_table_names(schema), inspector.get_view_names(schema)
        found = _match([*tables, *views], given.table or name)
        if found is None:
            where = f" (schema {schema})" if schema else ""
            raise SchemaError(f"Input table '{given.table or name}' is missing from {_where(bind)}{where}")
        reflected = inspector.get_columns(found, schema)
        present = [c["name"] for c in reflected]
        types = {c["name"]: c["type"] for c in reflected}
        keys = [c.name for c in table.columns]
        if name in TIMESTAMP_KEYS and _single_timestamp(given, present, name):
            pair = DATE_TIME_KEYS[name]
            keys = [key for key in keys if key not in pair] + [TIMESTAMP_KEYS[name]]
        columns = {}
        for key in keys:
            wanted = given.column(key) or key
            column_name = _match(present, wanted)
            if column_name is None:
                expected = ", ".join(given.column(c.name) or c.name for c in table.columns)
                raise SchemaError(f"Input table '{found}' has no column '{wanted}' (expected: {expected})")
            kind = _kind(profile, types[column_name])
            if profile.name != "sqlite" and kind not in ACCEPTED[ROLES[key]]:
                raise SchemaError(
                    f"Input column '{found}.{column_name}' is {types[column_name]}, which cannot hold a "
                    f"{ROLES[key]} (read as {key}): expected {' or '.join(ACCEPTED[ROLES[key]])}"
                )
            columns[key] = SourceColumn(column_name, kind, str(types[column_name]))
        relations[name] = Relation(
            name, schema, found, found in views, columns, mapping.zone_of(name), given.offsets
        )
    quote = bind.dialect.identifier_preparer.quote
    return Sources(profile, relations, quote, mapping.report_time_zone)


def _single_timestamp(given, present: list[str], name: str) -> bool:
    """Whether the input is read from a single timestamp column: the mapping names one, or it names neither
    a date nor a time and the table has the timestamp key's column but no date column."""
    if given.column(TIMESTAMP_KEYS[name]):
        return True
    if any(given.column(key) for key in DATE_TIME_KEYS[name]):
        return False
    return (
        _match(present, DATE_TIME_KEYS[name][0]) is None and _match(present, TIMESTAMP_KEYS[name]) is not None
    )


def _where(bind: Engine | Connection) -> str:
    return redact_url(str(bind.engine.url))


# -- one resolution per engine and mapping -------------------------------------------------------------------

_resolved: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def sources_of(bind: Engine | Connection) -> Sources:
    """The inputs of the warehouse ``bind`` talks to, through the mapping it was opened with (default: the
    challenge's names); found once per engine (its pool) and mapping."""
    mapping = bind.get_execution_options().get(SOURCES_OPTION) or DEFAULT_MAPPING
    pool = bind.engine.pool
    with _lock:
        known = _resolved.setdefault(pool, {}).get(mapping)
    if known is not None:
        return known
    found = resolve_sources(bind, mapping)
    with _lock:
        _resolved[pool][mapping] = found
    return found
