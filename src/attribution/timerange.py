"""The half-open time range ``[start, end)`` a run covers, in the database's own text format.

Why text: the pipeline reads date and time as text (UTC, or the report's time zone: ``warehouse.sources``), and fixed-width ``YYYY-MM-DD HH:MM:SS`` strings
compare in time order, so the range can be pushed into SQL as plain bound values on every dialect. A bound
keeps its fraction of a second (``10:00:00.5``): as text it sorts after ``10:00:00`` and before
``10:00:01``, as the time does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from attribution.errors import ConfigError

BEFORE_ANY = "0000-00-00 00:00:00"
"""Text that sorts before every date and timestamp text (an open start; a day before the first one)."""
AFTER_ANY = "9999-99-99 99:99:99"
"""Text that sorts after every date and timestamp text (an open end; a day after the calendar's last)."""


def zone_info(zone: str) -> tzinfo:
    """A zone by its IANA name (``UTC`` without a time zone database)."""
    return UTC if zone == "UTC" else ZoneInfo(zone)


def parse_bound(value: str | date | datetime | None, name: str, zone: str = "UTC") -> datetime | None:
    """Read an ISO date or timestamp (naive: in ``zone``, the report's; an offset is converted to it)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(
                f"Bad {name} {value!r}: expected an ISO date (2023-09-01) or timestamp (2023-09-01 10:00:00)"
            ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(zone_info(zone)).replace(tzinfo=None)
    return moment


@dataclass(frozen=True)
class TimeRange:
    """Conversions with ``start <= timestamp < end``; a missing bound is open."""

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ConfigError(f"Bad range: start {self.start_text} is not before end {self.end_text}")

    @classmethod
    def parse(
        cls, start: str | date | datetime | None, end: str | date | datetime | None, zone: str = "UTC"
    ) -> TimeRange:
        """Build a range from user input, with one-line errors for bad dates or a reversed range; naive bounds
        are in ``zone`` (the report's time zone), bounds with an offset are converted to it."""
        return cls(parse_bound(start, "start", zone), parse_bound(end, "end", zone))

    @property
    def is_bounded(self) -> bool:
        return self.start is not None and self.end is not None

    @property
    def start_text(self) -> str | None:
        return _text(self.start)

    @property
    def end_text(self) -> str | None:
        return _text(self.end)

    def sql_bounds(self) -> tuple[str, str]:
        """Bounds for ``start <= ts < end`` in SQL; open ends become strings outside any timestamp."""
        return (self.start_text or BEFORE_ANY, self.end_text or AFTER_ANY)

    def date_span(self) -> tuple[str, str] | None:
        """The first and last calendar date the range overlaps (``None`` for an open range: the caller
        decides). Why bounds, not a list of days: a range may span ten thousand years, and SQL reads the days
        between two bounds by one index range, with two bound values."""
        if not self.is_bounded:
            return None
        assert self.start is not None and self.end is not None
        return self.start.date().isoformat(), (self.end - timedelta(microseconds=1)).date().isoformat()

    def whole_days(self) -> tuple[str, str] | None:
        """The first and last calendar date the range covers from midnight to midnight (``None``: none, or an
        open range): the dates all of whose conversions it holds."""
        if not self.is_bounded:
            return None
        assert self.start is not None and self.end is not None
        first = self.start.date() + timedelta(days=0 if self.start.time() == time() else 1)
        last = self.end.date() - timedelta(days=1)
        return (first.isoformat(), last.isoformat()) if first <= last else None

    def reaching_back(self, days: int) -> TimeRange:
        """The range with its start ``days`` earlier (an open start stays open): a restatement window."""
        return (
            self if self.start is None or not days else TimeRange(self.start - timedelta(days=days), self.end)
        )

    def __str__(self) -> str:
        return f"[{self.start_text or '-inf'}, {self.end_text or '+inf'})"


def _text(moment: datetime | None) -> str | None:
    """``YYYY-MM-DD HH:MM:SS``, with the fraction of a second only when there is one."""
    return moment.isoformat(sep=" ") if moment else None
