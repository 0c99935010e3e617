"""Naive timestamps moved between time zones in SQL, the same on every warehouse.

Why a table of transitions for SQLite: SQLite has no time zone database (its ``'utc'`` modifier knows only
the machine's own zone), so a zone's offsets are written into the query as a search over its transitions
(``zoneinfo``'s, 1970 to 2050), a few comparisons of text per row. PostgreSQL and Redshift convert with
``AT TIME ZONE``. A local time that repeats (the hour after a fall-back) or never happens (the hour a
spring-forward skips) is read with the offset after the transition, as PostgreSQL reads it, so both
warehouses agree on every row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

FIRST_YEAR, LAST_YEAR = 1970, 2050
"""The years whose transitions SQLite's search holds; before and after, the nearest year's offset."""
TEXT_FORMAT = "%Y-%m-%d %H:%M:%S"
UTC_NAME = "UTC"
"""The zone of the pipeline's timestamps unless told otherwise."""


def literal(zone: str) -> str:
    """A zone name as a SQL string literal (names are validated IANA names; quotes doubled all the same)."""
    return "'" + zone.replace("'", "''") + "'"


@cache
def transitions(zone: str) -> tuple[tuple[datetime, int, int], ...]:
    """Each change of ``zone``'s UTC offset between ``FIRST_YEAR`` and ``LAST_YEAR``: the naive UTC instant,
    the offset before and the offset after, in seconds."""
    tz = ZoneInfo(zone)
    found: list[tuple[datetime, int, int]] = []

    def offset(instant: datetime) -> int:
        return int(instant.replace(tzinfo=UTC).astimezone(tz).utcoffset().total_seconds())

    day, end = datetime(FIRST_YEAR, 1, 1), datetime(LAST_YEAR + 1, 1, 1)
    before = offset(day)
    while day < end:
        after = offset(day + timedelta(days=1))
        if after != before:  # the change lies within this day: find its second
            low, high = day, day + timedelta(days=1)
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == before else (low, middle)
            found.append((high.replace(microsecond=0), before, after))
            before = after
        day += timedelta(days=1)
    return tuple(found)


def _shifted(expression: str, seconds: int) -> str:
    return f"datetime({expression}, '{seconds:+d} seconds')"


def _search(expression: str, thresholds: list[str], offsets: list[int], sign: int) -> str:
    """A balanced CASE over sorted ``thresholds`` (text timestamps): ``offsets[i]`` applies from
    ``thresholds[i - 1]`` on (``offsets[0]`` before the first), added (``sign`` 1) or taken away (-1)."""
    if not thresholds:
        return _shifted(expression, sign * offsets[0])
    middle = len(thresholds) // 2
    below = _search(expression, thresholds[:middle], offsets[: middle + 1], sign)
    above = _search(expression, thresholds[middle + 1 :], offsets[middle + 1 :], sign)
    return f"CASE WHEN {expression} < '{thresholds[middle]}' THEN {below} ELSE {above} END"


def sqlite_to_utc(expression: str, zone: str) -> str:
    """SQLite: the UTC text timestamp of the naive ``YYYY-MM-DD HH:MM:SS`` text ``expression`` read in
    ``zone`` (NULL where it is no timestamp). A transition's new offset applies from its local time after
    the change on (a repeated hour reads as the second, a skipped one as the offset before)."""
    changes = transitions(zone)
    if not changes:
        return _shifted(expression, -_fixed_offset(zone))
    thresholds = [(moment + timedelta(seconds=after)).strftime(TEXT_FORMAT) for moment, _, after in changes]
    offsets = [changes[0][1], *(after for _, _, after in changes)]
    return _search(expression, thresholds, offsets, -1)


def sqlite_from_utc(expression: str, zone: str) -> str:
    """SQLite: the naive local text timestamp in ``zone`` of the UTC text timestamp ``expression``."""
    changes = transitions(zone)
    if not changes:
        return _shifted(expression, _fixed_offset(zone))
    thresholds = [moment.strftime(TEXT_FORMAT) for moment, _, _ in changes]
    offsets = [changes[0][1], *(after for _, _, after in changes)]
    return _search(expression, thresholds, offsets, 1)


def _fixed_offset(zone: str) -> int:
    """The offset of a zone without transitions in the years searched (UTC, Etc/GMT-2, Asia/Kolkata)."""
    return int(datetime(FIRST_YEAR, 1, 1, tzinfo=UTC).astimezone(ZoneInfo(zone)).utcoffset().total_seconds())
