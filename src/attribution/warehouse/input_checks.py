"""Input checks: named SQL queries that find the input rows a run cannot use, each with a count and the
first ids, on every warehouse (the few non-portable fragments come from the dialect's ``Profile``), over the
inputs as ``warehouse.sources`` finds them: each check tests what the column's type can hold wrongly.

Why named rows: a duplicate or a malformed timestamp used to surface far from its cause ("Model returned
884 credit rows for 884 journey sessions", a Polars or driver traceback) or not at all (a report cost
15.5% too high). Why bounded: a run over a bounded range checks the rows it reads, not the history: the
range's conversions, their users' sessions (the user index), the sessions of the range's dates (the date
index) and those sessions' costs (the cost index). A run over an open range reads every row, and so does
``attribution check``.

Timestamps with an offset (``09:30:00-05:00``) are refused, not normalised: converted to UTC a session
may move to another date, which the report groups by; such text is best converted where it is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from functools import partial

from sqlalchemy import Connection, Engine, text

from attribution.timerange import TimeRange
from attribution.warehouse.dialects import hash_joined
from attribution.warehouse.sources import Sources, sources_of, valid_timestamp

Predicate = Callable[[Sources, str, str], str | None]
"""A check's SQL over an input (``Sources``, the input's name, its alias), true for a bad row; ``None`` where
the input's column types cannot hold a bad value (a typed ``DATE`` is always a day)."""

FIRST_IDS = 5
MAX_MONEY = 10**12
"""The largest revenue or cost, either sign, a row may hold. The report sums cost in whole millionths as a
signed 64-bit integer, whose largest value is 9,223,372,036,854,775,807: 9,223,372,036,854.775807 in money.
A row beyond it cannot be summed at all (SQLite's cast saturates, PostgreSQL's fails), and one just within
it leaves no room for a second row. At 10^12 (10^18 millionths) nine rows at the bound still sum, and
realistic ones (below a million each) by the million. The same bound keeps revenue far from the float range
its exact sums (``math.fsum``) overflow in; infinities and NaN are beyond it."""
CHECK_THREADS = 2
"""Check queries run at once on an engine: the two scans of the session table, on a laptop's two cores."""
SCAN_CACHE_KIB = 8 * 1024
"""SQLite's page cache for a check's read: a scan reads each page once, so the connections' usual cache
(``warehouse.engine``) only held memory, 256 MiB per check thread that stayed with the process."""
FLAGS = ("holder_engagement", "closer_engagement", "impression_interaction")


def _any(terms: list[str | None]) -> str | None:
    """The terms joined by ``OR`` (``None`` where none applies)."""
    found = [term for term in terms if term]
    return " OR ".join(found) if found else None


def _nulls(*keys: str) -> Predicate:
    """A NULL in the stored column of any of ``keys`` (a single timestamp once, for its date and time)."""
    return lambda sources, table, t: " OR ".join(
        f"{value} IS NULL" for value in dict.fromkeys(sources.value(table, key, t) for key in keys)
    )


def _malformed(key: str, kind: str) -> Predicate:
    """Text in the column of ``key`` that is no ``YYYY-MM-DD`` date (``kind`` ``date``) or ``HH:MM:SS``
    time (``time``); where the input has a single timestamp instead, text that is no timestamp (under the
    date's check, leaving the time's none). A typed column holds no malformed value."""

    def bad(sources: Sources, table: str, t: str) -> str | None:
        profile, text_only = sources.profile, sources.profile.name == "sqlite"
        if timestamp := sources.timestamp_key(table):
            if kind == "time" or not (text_only or sources.kind(table, timestamp) == "text"):
                return None
            value = sources.value(table, timestamp, t)
            return f"({value} IS NOT NULL AND NOT {valid_timestamp(profile, value, sources.offsets(table))})"
        if not text_only and sources.kind(table, key) == kind:
            return None
        valid, value = profile.is_date if kind == "date" else profile.is_time, sources.value(table, key, t)
        return f"({value} IS NOT NULL AND NOT ({valid(value)}))"

    return bad


def _not_number(key: str) -> Predicate:
    """A money value that is not a number: SQLite keeps text typed into a numeric column as text; a server's
    float or text column is matched as the text it casts to; a NUMERIC or integer one holds only numbers."""

    def bad(sources: Sources, table: str, t: str) -> str | None:
        if sources.profile.name != "sqlite" and sources.kind(table, key) in ("numeric", "integer"):
            return None
        value = sources.value(table, key, t)
        return f"({value} IS NOT NULL AND NOT ({sources.profile.is_number(value)}))"

    return bad


def _beyond_money(key: str) -> Predicate:
    """A number (so text is left to ``_not_number``) whose size is not within ``MAX_MONEY``: infinite or NaN
    too (NaN is within no bound)."""

    def bad(sources: Sources, table: str, t: str) -> str | None:
        profile, value = sources.profile, sources.value(table, key, t)
        if profile.name != "sqlite" and sources.kind(table, key) in ("numeric", "integer"):
            return f"NOT (ABS({value}) <= {MAX_MONEY})"
        return (
            f"CASE WHEN {profile.is_number(value)} "
            f"THEN NOT (ABS(CAST({value} AS DOUBLE PRECISION)) <= {MAX_MONEY}) ELSE FALSE END"
        )

    return bad


def _not_flags(*keys: str) -> Predicate:
    """A flag other than 0 or 1, as its column holds it: an integer (or text) as the text it casts to, a
    float or decimal by value (1.0), a SQLite value of any type either way; a ``BOOLEAN`` is always one."""

    def flag(sources: Sources, table: str, key: str, t: str) -> str | None:
        kind, value = sources.kind(table, key), sources.value(table, key, t)
        as_text = f"CAST({value} AS VARCHAR) NOT IN ('0', '1')"
        if kind == "boolean":
            return None
        if kind == "integer" or (kind == "text" and sources.profile.name != "sqlite"):
            return as_text
        if sources.profile.name == "sqlite":
            return f"NOT ({value} IN (0, 1) OR CAST({value} AS VARCHAR) IN ('0', '1'))"
        return f"{value} NOT IN (0, 1)"

    return lambda sources, table, t: _any([flag(sources, table, key, t) for key in keys])


def _either(*predicates: Predicate) -> Predicate:
    return lambda sources, table, t: _any(
        [f"({found})" for predicate in predicates if (found := predicate(sources, table, t))]
    )


@dataclass(frozen=True)
class Check:
    """One rule: the rows of ``table`` that break it (``bad``; ``None``: rows sharing their ``key``), shown
    by ``key``, and whether a run may leave them out of journeys (``skippable``). ``problem`` says what a bad
    row has, each ``{key, ...}`` in it naming those columns as the warehouse does (``Named``);
    ``timestamp_problem`` instead where the input has a single timestamp column.

    Not skippable are the rows the report reads whatever the journeys: a session's id, date and channel,
    and its cost. Leaving such a session out of journeys still leaves a report that is wrong or fails.
    """

    name: str
    table: str
    key: str
    problem: str
    skippable: bool
    bad: Predicate | None = None
    timestamp_problem: str | None = None

    def bad_rows(self, sources: Sources, t: str) -> str | None:
        """SQL true for a bad row of the input aliased ``t`` (``None``: its types hold none)."""
        return None if self.bad is None else self.bad(sources, self.table, t)


_KEYS = re.compile(r"\{([a-z_, ]+)\}")
"""A ``{key, ...}`` of a check's problem."""


@dataclass(frozen=True)
class Named:
    """A check's table, key and problem as the user's warehouse names them (the source mapping's names)."""

    table: str
    key: str
    problem: str

    @classmethod
    def of(cls, check: Check, sources: Sources | None = None) -> Named:
        """``check`` under the names ``sources`` found (``None``: the challenge's)."""
        if sources is None:
            return cls(
                check.table, check.key, _KEYS.sub(lambda keys: _listed(keys[1].split(", ")), check.problem)
            )
        table = sources.relations[check.table]
        problem = check.timestamp_problem if sources.timestamp_key(check.table) else None
        name = partial(sources.column_name, check.table)
        return cls(
            f"{table.schema}.{table.table}" if table.schema else table.table,
            name(check.key),
            _KEYS.sub(
                lambda keys: _listed([name(key) for key in keys[1].split(", ")]), problem or check.problem
            ),
        )


def _listed(names: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``: each name once (a single timestamp stands for a date and a time)."""
    names = list(dict.fromkeys(names))
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


CHECKS: tuple[Check, ...] = (
    Check("duplicate-conv-id", "conversions", "conv_id", "appears more than once", True),
    Check(
        "missing-conversion-value",
        "conversions",
        "conv_id",
        "a NULL {conv_id, user_id, conv_date, conv_time, revenue}",
        True,
        _nulls("conv_id", "user_id", "conv_date", "conv_time", "revenue"),
    ),
    Check(
        "bad-conversion-timestamp",
        "conversions",
        "conv_id",
        "a {conv_date} not YYYY-MM-DD or a {conv_time} not HH:MM:SS (no fraction or offset)",
        True,
        _either(_malformed("conv_date", "date"), _malformed("conv_time", "time")),
        "a {conv_timestamp} that is no timestamp (YYYY-MM-DD HH:MM:SS, no fraction)",
    ),
    Check(
        "non-numeric-revenue",
        "conversions",
        "conv_id",
        "a {revenue} that is not a number",
        True,
        _not_number("revenue"),
    ),
    Check(
        "revenue-out-of-range",
        "conversions",
        "conv_id",
        f"a {{revenue}} beyond ±{MAX_MONEY:,}, infinite or NaN",
        True,
        _beyond_money("revenue"),
    ),
    Check("duplicate-session-id", "session_sources", "session_id", "appears more than once", False),
    Check(
        "missing-session-key",
        "session_sources",
        "session_id",
        "a NULL {session_id, event_date, channel_name}",
        False,
        _nulls("session_id", "event_date", "channel_name"),
    ),
    Check(
        "missing-session-value",
        "session_sources",
        "session_id",
        "a NULL {user_id, event_time, holder_engagement, closer_engagement, impression_interaction}",
        True,
        _nulls("user_id", "event_time", *FLAGS),
    ),
    Check(
        "bad-session-date",
        "session_sources",
        "session_id",
        "an {event_date} not YYYY-MM-DD",
        False,
        _malformed("event_date", "date"),
        "an {event_timestamp} that is no timestamp (YYYY-MM-DD HH:MM:SS, no fraction)",
    ),
    Check(
        "bad-session-time",
        "session_sources",
        "session_id",
        "an {event_time} not HH:MM:SS (no fraction or offset)",
        True,
        _malformed("event_time", "time"),
    ),
    Check(
        "bad-engagement-flag",
        "session_sources",
        "session_id",
        f"a {{{', '.join(FLAGS)}}} other than 0 or 1",
        True,
        _not_flags(*FLAGS),
    ),
    Check("duplicate-cost-session-id", "session_costs", "session_id", "appears more than once", False),
    Check(
        "non-numeric-cost",
        "session_costs",
        "session_id",
        "a {cost} that is not a number",
        False,
        _not_number("cost"),
    ),
    Check(
        "cost-out-of-range",
        "session_costs",
        "session_id",
        f"a {{cost}} beyond ±{MAX_MONEY:,}, infinite or NaN",
        False,
        _beyond_money("cost"),
    ),
)
"""Every check, by table: what ``attribution check`` prints, in this order."""


@dataclass(frozen=True)
class CheckResult:
    """How many rows (or, for a duplicate key, ids) break a check, and the first of their ids."""

    check: Check
    count: int
    first_ids: tuple[str, ...] = ()
    named: Named | None = None
    """The check under the warehouse's names (``None``: the challenge's)."""

    @property
    def table(self) -> str:
        """The checked table as the warehouse names it (with its schema, where the mapping gives one)."""
        return (self.named or Named.of(self.check)).table

    def line(self) -> str:
        """``table: count what (check): ids`` under the warehouse's names, the ids that were not shown
        counted as ``…``."""
        check, one, named = self.check, self.count == 1, self.named or Named.of(self.check)
        if check.bad is None:
            what = f"{named.key}{'' if one else 's'} appear{'s' if one else ''} more than once"
        else:
            what = f"row{'' if one else 's'} {'has' if one else 'have'} {named.problem}"
        more = ", …" if self.count > len(self.first_ids) else ""
        return f"{named.table}: {self.count} {what} ({check.name}): {', '.join(self.first_ids)}{more}"


# -- where a run looks: the rows it reads (every row for an open range) ------------------------------------


def conversions_in_range(sources: Sources, t: str, *, dated: bool = False) -> str:
    """The conversions (aliased ``t``) in the range bound as ``:range_start`` and ``:range_end``; ``dated``
    (a bounded range, which also binds its first and last date as ``:first_date`` and ``:last_date``): a
    typed date or timestamp column also compared with typed bounds (``Sources.day_range``), which its index
    serves (the text made of it is a function of the column, which no index serves)."""
    timestamp = f"{t}.conv_date || ' ' || {t}.conv_time"
    dates = sources.day_range("conversions", t, ":first_date", ":last_date") if dated else ""
    return f"{timestamp} >= :range_start AND {timestamp} < :range_end{dates}"


def _scope(
    sources: Sources, table: str, time_range: TimeRange, *, journeys_only: bool = False
) -> tuple[str, str]:
    """The rows of ``table`` a run over ``time_range`` reads, as a FROM item aliased ``t`` and a filter: the
    journeys read the range's conversions and their users' sessions (the user index, index-only); the report
    also reads the sessions of the range's dates (the date index) and their costs (the dates before keep
    their reported cost). ``journeys_only`` leaves out what only the report reads: a check of what journeys
    alone read (the skippable session checks) never looks a session up in the table. A typed date or
    timestamp column is also compared with typed bounds first (``Sources.dated``), which its index serves."""
    relation = sources.relation(table, "t")
    if not time_range.is_bounded:
        return relation, "1 = 1"
    if table == "conversions":
        return relation, _conversions_scope(sources, "t")
    if table == "session_sources":
        users = f"SELECT v.user_id FROM {sources.relation('conversions', 'v')} WHERE {_conversions_scope(sources, 'v')}"
        return (
            (relation, f"t.user_id IN ({users})")
            if journeys_only
            else (_users_or_dates(sources, users), "1 = 1")
        )
    # a bounded run reads the cost of its own dates' sessions only (the dates before keep their reported cost)
    dates = sources.dated("session_sources", "s", ":first_date", ":last_date")
    return (
        relation,
        f"t.session_id IN (SELECT s.session_id FROM {sources.relation('session_sources', 's')} WHERE {dates})",
    )


def _conversions_scope(sources: Sources, t: str) -> str:
    """The range's conversions (aliased ``t``): the dates let the time index serve the range."""
    in_range = conversions_in_range(sources, t, dated=True)
    return f"{t}.conv_date >= :first_date AND {t}.conv_date <= :last_date AND {in_range}"


def _users_or_dates(sources: Sources, users: str) -> str:
    """The sessions of the range's ``users`` or of its dates, each once, as a FROM item aliased ``t``: the
    sessions of the dates by the date index, then the users' sessions of other dates (or none: a NULL date)
    by the user index.

    Why two reads: no one index serves the ``OR`` of the two, so PostgreSQL read every session for it (9-10 s
    of a daily run at 10 million sessions)."""
    sessions = sources.relation("session_sources", "s")
    dates = sources.dated("session_sources", "s", ":first_date", ":last_date")
    return (
        f"(SELECT * FROM {sessions} WHERE {dates} UNION ALL "
        f"SELECT * FROM {sessions} WHERE s.user_id IN ({users}) AND CASE WHEN {dates} THEN 0 ELSE 1 END = 1) t"
    )


def range_params(time_range: TimeRange) -> dict[str, str]:
    """What the scopes bind: the range's bounds, its first and last date."""
    range_start, range_end = time_range.sql_bounds()
    first_date, last_date = time_range.date_span() or ("", "")
    return {
        "range_start": range_start,
        "range_end": range_end,
        "first_date": first_date,
        "last_date": last_date,
    }


def duplicates_sql(check: Check, relation: str, where: str) -> str:
    """The ids of ``check.key`` that repeat among the rows of ``relation`` (aliased ``t``) that ``where``
    keeps."""
    key = f"t.{check.key}"
    return (
        f"SELECT {key} AS id FROM {relation} WHERE {where} AND {key} IS NOT NULL "
        f"GROUP BY {key} HAVING COUNT(*) > 1"
    )


# -- running them ----------------------------------------------------------------------------------------


def run_checks(
    bind: Engine | Connection,
    time_range: TimeRange = TimeRange(),
    *,
    null_paths: bool = False,
    hash_joins: bool = False,
) -> list[CheckResult]:
    """Every check over the rows a run over ``time_range`` reads (the default: every row), in ``CHECKS``
    order; ``null_paths``: the run's model also reads every session of the range's dates (Markov, Shapley).
    A key the table declares unique cannot repeat: its duplicate check reads nothing; nor does a check whose
    columns' types hold no bad value. ``hash_joins``: no user index serves the range's users' sessions, so
    they are joined by hashing, never by a loop (``dialects.hash_joined``)."""
    sources, params = sources_of(bind), range_params(time_range)
    unique = sources.declared_keys(bind)
    reads: list[Callable[[Connection], dict[str, CheckResult]]] = []
    for check in CHECKS:
        if check.bad is None and (check.table, check.key) not in unique:
            sql = duplicates_sql(check, *_scope(sources, check.table, time_range))
            reads.append(partial(_duplicates, sql=sql, check=check, params=params))
    for table in dict.fromkeys(check.table for check in CHECKS):
        for journeys_only in (False, True):
            checks = [
                c
                for c in CHECKS
                if c.table == table and c.bad_rows(sources, "t") and _journeys_only(c) == journeys_only
            ]
            relation, where = _scope(
                sources, table, time_range, journeys_only=journeys_only and not null_paths
            )
            if checks:
                scoped = {"relation": relation, "where": where, "params": params}
                reads.append(partial(_row_checks, sources=sources, checks=checks, **scoped))
    results = {check.name: CheckResult(check, 0) for check in CHECKS}
    hashed = [partial(_hash_joined, read=read, hash_joins=hash_joins) for read in reads]
    for found in _concurrently(bind, hashed):
        results |= found
    return [replace(results[check.name], named=Named.of(check, sources)) for check in CHECKS]


def _hash_joined(conn: Connection, *, read, hash_joins: bool) -> dict[str, CheckResult]:
    """``read`` on ``conn``, without nested loops where ``hash_joins``."""
    with hash_joined(conn, hash_joins):
        return read(conn)


def _concurrently(
    bind: Engine | Connection, reads: list[Callable[[Connection], dict[str, CheckResult]]]
) -> Iterator[dict[str, CheckResult]]:
    """Each read's results: on ``CHECK_THREADS`` connections of an engine at once (each read is a scan the
    warehouse runs without the GIL, so a second core halves prepare), one after the other on a caller's
    connection."""
    if isinstance(bind, Connection):
        yield from (read(bind) for read in reads)
        return

    def on_own_connection(read: Callable[[Connection], dict[str, CheckResult]]) -> dict[str, CheckResult]:
        with bind.connect() as conn:
            if conn.dialect.name != "sqlite":
                return read(conn)
            before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
            conn.exec_driver_sql(f"PRAGMA cache_size = {-SCAN_CACHE_KIB}")
            try:
                return read(conn)
            finally:
                conn.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")

    with ThreadPoolExecutor(CHECK_THREADS) as pool:
        yield from pool.map(on_own_connection, reads)


def _duplicates(conn: Connection, *, sql: str, check: Check, params: dict) -> dict[str, CheckResult]:
    """A duplicate-key check over one scope (``sql``: ``duplicates_sql``)."""
    return {check.name: _found(conn, f"SELECT id FROM ({sql}) d", params, check)}


def _row_checks(
    conn: Connection, *, sources: Sources, relation: str, where: str, checks: list[Check], params: dict
) -> dict[str, CheckResult]:
    """The row checks of one table over one scope (``relation`` aliased ``t``, ``where``): their counts in
    one read, the ids of those that fail."""
    bad = {check.name: check.bad_rows(sources, "t") for check in checks}
    sums = ", ".join(f"SUM(CASE WHEN {bad[check.name]} THEN 1 ELSE 0 END)" for check in checks)
    counts = conn.execute(text(f"SELECT {sums} FROM {relation} WHERE {where}"), params).one()
    results = {}
    for check, count in zip(checks, counts, strict=True):
        ids = f"SELECT COALESCE(t.{check.key}, '(null)') AS id FROM {relation} WHERE {where} AND ({bad[check.name]})"
        results[check.name] = _found(conn, ids, params, check, int(count)) if count else CheckResult(check, 0)
    return results


def _journeys_only(check: Check) -> bool:
    """Whether only journeys read what ``check`` checks: a skippable session check (a session's time, user
    and flags)."""
    return check.skippable and check.table == "session_sources"


def _found(conn: Connection, ids: str, params: dict, check: Check, count: int | None = None) -> CheckResult:
    """The check's count (counted from ``ids`` when not given) and its first ids."""
    if count is None:
        count = conn.scalar(text(f"SELECT COUNT(*) FROM ({ids}) c"), params) or 0
        if not count:
            return CheckResult(check, 0)
    first = conn.execute(text(f"{ids} ORDER BY 1 LIMIT {FIRST_IDS}"), params).scalars().all()
    return CheckResult(check, int(count), tuple(sorted(str(id_) for id_ in first)))


def connection(bind: Engine | Connection) -> AbstractContextManager[Connection]:
    """A new connection from an engine; a caller's connection as it is (left open)."""
    return bind.connect() if isinstance(bind, Engine) else nullcontext(bind)


def skip_filters(sources: Sources, *, dated: bool = False) -> tuple[str, str]:
    """What journeys leave out under ``skip``: an ``AND`` fragment over the table ``conversions`` and one
    over the sessions aliased ``s``; they bind only the journey query's ``:range_start`` and ``:range_end``
    (``dated``: also its ``:first_date`` and ``:last_date``, ``conversions_in_range``)."""
    conversions = [check for check in CHECKS if check.skippable and check.table == "conversions"]
    sessions = [check for check in CHECKS if check.skippable and check.table == "session_sources"]
    duplicated = [
        f"conversions.{check.key} NOT IN "
        f"({duplicates_sql(check, sources.relation(check.table, 't'), conversions_in_range(sources, 't', dated=dated))})"
        for check in conversions
        if check.bad is None
    ]
    bad_conversions = [bad for check in conversions if (bad := check.bad_rows(sources, "conversions"))]
    bad_sessions = [bad for check in sessions if (bad := check.bad_rows(sources, "s"))]
    return (
        f" AND NOT ({' OR '.join(bad_conversions)}) AND {' AND '.join(duplicated)}",
        f" AND NOT ({' OR '.join(bad_sessions)})",
    )
