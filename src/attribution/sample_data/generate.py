"""Challenge-like SQLite databases for demos, tests and benchmarks.

Why: the real challenge file cannot be shipped. A generated file with the same three input tables, the same
shape of journeys and the same traps (sessions at exactly a conversion's timestamp, users converting twice,
conversions without any earlier session, NULL costs) exercises the pipeline the same way, at any size.

How: the sessions are cut into chunks; each chunk is an independent population (its own users, buyers and
seeded generator), so memory stays bounded and the output does not depend on timing. The ids of chunk ``i``
(users' included) lie in the ``i``-th slice of the id space; the next chunk is built in a thread while
SQLite, which releases the GIL, writes.

Layouts: by default rows are stored in arrival order, by user and time, as real exports are; the random ids
then come in random key order and a key lookup is a random read. ``layout="sorted"`` stores them in key
order (every insert an append, every lookup sequential), for comparisons: the same seed gives the same rows.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa
from adbc_driver_sqlite import dbapi

from attribution.errors import ConfigError
from attribution.sample_data.options import (
    DEFAULT_CONVERSIONS,
    DEFAULT_DAYS,
    DEFAULT_LAYOUT,
    DEFAULT_SEED,
    DEFAULT_SESSIONS,
    LAYOUTS,
    Layout,
)
from attribution.warehouse.engine import open_engine
from attribution.warehouse.schema import create_input_tables

DEFAULT_START_DATE = date(2023, 8, 29)

# channel: (share of sessions in %, share of impression-only sessions, median cost of a session in EUR).
# The shares follow the order of the real file's channel list; a median cost of 0 marks an unpaid channel.
_PROFILES: dict[str, tuple[float, float, float]] = {
    "Direct Traffic": (22.0, 0.0, 0.0),
    "Performance Max": (16.0, 0.25, 0.35),
    "Newsletter & Email": (11.0, 0.02, 0.0),
    "Paid Search Brand": (10.0, 0.0, 0.25),
    "Organic Traffic": (9.0, 0.0, 0.0),
    "FB & IG Ads": (8.0, 0.35, 0.45),
    "Affiliate & Partnerships": (5.0, 0.10, 0.80),
    "Referral": (4.0, 0.0, 0.0),
    "Untracked Conversions": (3.0, 0.0, 0.0),
    "Paid Search Non Brand": (3.0, 0.0, 0.90),
    "Social Organic": (2.5, 0.15, 0.0),
    "Microsoft Ads": (2.0, 0.0, 0.70),
    "TikTok Ads": (1.5, 0.40, 0.30),
    "Lead Generation": (1.2, 0.05, 1.50),
    "Pinterest Ads": (1.0, 0.35, 0.40),
    "YouTube Ads": (0.8, 0.45, 0.20),
}
CHANNELS: tuple[str, ...] = tuple(_PROFILES)
PAID_CHANNELS: frozenset[str] = frozenset(name for name, (_, _, cost) in _PROFILES.items() if cost > 0)
_SHARE, _IMPRESSION_RATE, _MEDIAN_COST = np.array(list(_PROFILES.values())).T
_SHARE = _SHARE / _SHARE.sum()
_CHANNEL_NAMES = pl.Series("channel_name", CHANNELS)

# Journey lengths as in the real file: 58% one session, the rest a power-law tail up to 40 (mean about 1.9).
_LENGTHS = np.arange(1, 41)
_TAIL = _LENGTHS[1:] ** -2.9
_LENGTH_P = np.concatenate([[0.58], 0.42 * _TAIL / _TAIL.sum()])
_REPEAT_SHARE = 0.01  # conversions that are a buyer's first of two: their sessions belong to two journeys
_NO_JOURNEY_SHARE = 0.03  # conversions with no earlier session
_AT_ORDER_SHARE = 0.03  # buyers with one more session at exactly their conversion's timestamp
_JOURNEY_REACH = 2 * 86_400.0  # mean seconds a journey reaches back before its conversion
_HEAVY_USER_SKEW = 1.5  # > 1: a few browsing users get many sessions, most get one to three

_HOUR_WEIGHTS = np.array([2, 1, 1, 1, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 7, 7, 7, 6, 4, 3], float)
_HOUR_P = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()  # UTC traffic of a European shop: quiet nights, busy evenings
_HOLDER_RATE, _CLOSER_RATE = 0.35, 0.20
_COST_SIGMA, _FREE_CLICK_SHARE, _NULL_COST_SHARE = 0.6, 0.05, 0.5
_REVENUE_MU, _REVENUE_SIGMA = np.log(60.0), 0.7

_PAGE_SIZE = 16_384  # about a quarter faster to fill than SQLite's default 4096
# Durability off is safe: the file is renamed into place only once complete.
_BULK_PRAGMAS = (
    "PRAGMA journal_mode = OFF",
    "PRAGMA synchronous = OFF",
    "PRAGMA locking_mode = EXCLUSIVE",
    "PRAGMA cache_size = -262144",  # 256 MiB: holds a chunk's part of the key indexes (arrival: random inserts)
)


@dataclass(frozen=True)
class GenerateSummary:
    """What was written, for the CLI's closing line and for benchmarks."""

    path: Path
    sessions: int
    users: int
    conversions: int
    days: int
    seed: int
    seconds: float
    layout: Layout = DEFAULT_LAYOUT


class _Events(NamedTuple):
    """Who did something (an index into the chunk's users) and when (seconds after the start date)."""

    owners: np.ndarray
    times: np.ndarray


@dataclass(frozen=True)
class _ChunkPlan:
    """One independent slice of the data set: its sizes, its generator and its slice of the id space."""

    sessions: int
    conversions: int
    users: int
    id_floor: int
    id_span: int
    seed: np.random.SeedSequence


@dataclass(frozen=True)
class _Chunk:
    """A chunk's rows per table, in the layout's order, and how many distinct users it holds."""

    tables: tuple[tuple[str, pl.DataFrame], ...]
    sessions: int
    users: int


def generate_database(
    path: str | Path,
    *,
    sessions: int = DEFAULT_SESSIONS,
    conversions: int = DEFAULT_CONVERSIONS,
    users: int | None = None,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    start_date: date = DEFAULT_START_DATE,
    layout: Layout = DEFAULT_LAYOUT,
    chunk_sessions: int = 1_000_000,
    on_progress: Callable[[int], None] | None = None,
) -> GenerateSummary:
    """Write a new challenge-like SQLite file holding the three input tables.

    Why a new file only: generated rows must never mix with a real warehouse, and the file appears complete
    or not at all (it is written beside ``path`` under a temporary name and renamed at the end).

    Args:
        users: distinct users; by default ``sessions // 3`` (about three visits per visitor over ten days,
            as in web-analytics traffic), and never fewer than ``conversions``.
        layout: ``arrival`` (rows by user and time, as real tables hold them) or ``sorted`` (by key).
        chunk_sessions: sessions generated and written at a time, which bounds memory. The data depend on
            it: the same arguments, this one included, give a byte-identical file.
        on_progress: called after each chunk with the total number of sessions written so far.

    Returns:
        The sizes written; ``users`` counts distinct users, buyers without any session included.
    """
    started = time.perf_counter()
    target = Path(path).expanduser()
    users = max(sessions // 3, conversions, 1) if users is None else users
    _check_target(target)
    _check_sizes(sessions, conversions, users, days, seed, chunk_sessions)
    _check_layout(layout)
    build = partial(_build_chunk, start=_epoch_seconds(start_date), days=days, layout=layout)
    chunks = _built_ahead(build, _plan_chunks(sessions, conversions, users, seed, chunk_sessions))
    written_users = _write_new_file(target, partial(_write_database, chunks=chunks, on_progress=on_progress))
    seconds = time.perf_counter() - started
    return GenerateSummary(target, sessions, written_users, conversions, days, seed, seconds, layout)


def _check_target(target: Path) -> None:
    """Refuse to overwrite anything, and say so before any work is done."""
    if target.exists():
        raise ConfigError(f"{target} already exists; generate never overwrites a database: choose a new path")
    if not target.parent.is_dir():
        raise ConfigError(f"Directory {target.parent} does not exist; create it or choose another path")


def _check_sizes(sessions: int, conversions: int, users: int, days: int, seed: int, chunk: int) -> None:
    """Refuse, in one line naming the value, sizes that cannot describe real traffic."""
    limits = {
        "sessions": (sessions, 1, None),
        "conversions": (conversions, 0, sessions),
        "users": (users, max(conversions, 1), sessions),
        "days": (days, 1, None),
        "seed": (seed, 0, None),
        "chunk_sessions": (chunk, 1, None),
    }
    for name, (value, low, high) in limits.items():
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"between {low} and {high}"
            raise ConfigError(f"{name} must be {bound} (got {value})")


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)} (got {layout!r})")


def _plan_chunks(sessions: int, conversions: int, users: int, seed: int, chunk: int) -> list[_ChunkPlan]:
    """Split the sizes evenly over chunks; spawned seeds make each chunk independent of the others."""
    count = -(-sessions // chunk)
    span = 2**64 // count

    def part(total: int, index: int) -> int:
        return total * (index + 1) // count - total * index // count

    seeds = np.random.SeedSequence(seed).spawn(count)
    return [
        _ChunkPlan(part(sessions, i), part(conversions, i), part(users, i), i * span, span, seeds[i])
        for i in range(count)
    ]


def _build_chunk(plan: _ChunkPlan, *, start: int, days: int, layout: Layout) -> _Chunk:
    """Generate one chunk: buyers with their journeys and orders, then browsing users for the rest."""
    rng = np.random.default_rng(plan.seed)
    buyers, buyer_sessions, orders = _buyer_events(rng, plan.conversions, plan.sessions, days)
    remaining = plan.sessions - buyer_sessions.owners.size
    browsers, browsing = _browsing_events(rng, remaining, plan.users - buyers, buyers, days)
    user_ids = _hex_ids(rng, buyers + browsers, plan)
    sessions = _session_frame(rng, _shuffled(rng, buyer_sessions, browsing), user_ids, plan, start)
    conversions = _conversion_frame(rng, _shuffled(rng, orders), user_ids, plan, start)
    sessions = _laid_out(sessions, layout, "event_date", "event_time")
    tables = (
        ("session_sources", sessions.drop("cost")),
        ("session_costs", sessions.select("session_id", "cost")),  # costs arrive with their sessions
        ("conversions", _laid_out(conversions, layout, "conv_date", "conv_time")),
    )
    return _Chunk(tables, plan.sessions, buyers + browsers)


def _buyer_events(
    rng: np.random.Generator, conversions: int, budget: int, days: int
) -> tuple[int, _Events, _Events]:
    """Buyers, their sessions (at most ``budget``) and their orders.

    Buyers ``0..repeats-1`` order twice (the first order falls between two of their sessions); the next ones
    have no session before their order. Trimming to the budget never reaches the repeat buyers: they are
    about 1% of the conversions, with at most 40 sessions each, and conversions <= sessions.
    """
    repeats = round(conversions * _REPEAT_SHARE)
    buyers = conversions - repeats
    lengths = rng.choice(_LENGTHS, size=buyers, p=_LENGTH_P)
    lengths[:repeats] = np.maximum(lengths[:repeats], 2)
    lengths[repeats : repeats + round(conversions * _NO_JOURNEY_SHARE)] = 0
    at_order = rng.choice(buyers, size=round(buyers * _AT_ORDER_SHARE), replace=False)
    lengths = np.where(np.cumsum(lengths) <= budget - at_order.size, lengths, 0)
    order_times = np.maximum(_draw_times(rng, buyers, days), 1)
    journeys = _journey_events(rng, lengths, order_times)
    sessions = _concat(journeys, _Events(at_order, order_times[at_order]))
    orders = _concat(_Events(np.arange(buyers), order_times), _first_orders(rng, journeys, lengths[:repeats]))
    return buyers, sessions, orders


def _journey_events(rng: np.random.Generator, lengths: np.ndarray, order_times: np.ndarray) -> _Events:
    """Each buyer's sessions, strictly before the order, sorted by buyer then time."""
    owners = np.repeat(np.arange(lengths.size), lengths)
    reach = np.minimum(order_times, rng.exponential(_JOURNEY_REACH, lengths.size) + 1)[owners]
    times = order_times[owners] - 1 - np.floor(rng.random(owners.size) * reach).astype(np.int64)
    return _Events(owners, times[np.lexsort((times, owners))])


def _first_orders(rng: np.random.Generator, journeys: _Events, lengths: np.ndarray) -> _Events:
    """A first order for each repeat buyer, between its sessions j and j+1 (1 <= j < length)."""
    starts = np.cumsum(lengths) - lengths
    after = starts + 1 + np.floor(rng.random(lengths.size) * (lengths - 1)).astype(np.int64)
    return _Events(np.arange(lengths.size), (journeys.times[after - 1] + journeys.times[after] + 1) // 2)


def _browsing_events(
    rng: np.random.Generator, sessions: int, users: int, first_user: int, days: int
) -> tuple[int, _Events]:
    """Sessions of users who never convert: each user at least one, a few heavy users many more."""
    users = min(max(users, 1), sessions)
    extra = np.floor(rng.random(sessions - users) ** _HEAVY_USER_SKEW * users).astype(np.int64)
    owners = first_user + np.concatenate([np.arange(users), extra])
    return users, _Events(owners, _draw_times(rng, sessions, days))


def _draw_times(rng: np.random.Generator, count: int, days: int) -> np.ndarray:
    """Seconds after the start date: a uniform day, an hour following daily traffic, a uniform second."""
    day = rng.integers(0, days, count)
    hour = rng.choice(24, size=count, p=_HOUR_P)
    return day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, count)


def _session_frame(
    rng: np.random.Generator, events: _Events, user_ids: pl.Series, plan: _ChunkPlan, start: int
) -> pl.DataFrame:
    """The chunk's sessions with their cost, in session_id order (rows come shuffled, ids sorted)."""
    count = events.owners.size
    channel = rng.choice(len(CHANNELS), size=count, p=_SHARE)
    impression = rng.random(count) < _IMPRESSION_RATE[channel]  # an impression has no on-site engagement
    event_date, event_time = _date_and_time(events.times, start)
    return pl.DataFrame(
        {
            "session_id": _hex_ids(rng, count, plan),
            "user_id": user_ids.gather(events.owners),
            "event_date": event_date,
            "event_time": event_time,
            "channel_name": _CHANNEL_NAMES.gather(channel),
            "holder_engagement": (~impression & (rng.random(count) < _HOLDER_RATE)).astype(np.int64),
            "closer_engagement": (~impression & (rng.random(count) < _CLOSER_RATE)).astype(np.int64),
            "impression_interaction": impression.astype(np.int64),
            "cost": _costs(rng, channel),
        }
    )


def _laid_out(frame: pl.DataFrame, layout: Layout, day: str, time_of_day: str) -> pl.DataFrame:
    """The rows in the layout's order: ``frame`` comes in key order (its first column); ``arrival`` sorts
    it by user and time, the key breaking ties, so that the same seed always gives the same file."""
    if layout == "sorted":
        return frame
    return frame.sort("user_id", day, time_of_day, frame.columns[0])


def _costs(rng: np.random.Generator, channel: np.ndarray) -> pl.Series:
    """Lognormal costs with 2 to 4 decimals on paid channels (a few free clicks); 0 or NULL on unpaid ones."""
    median = _MEDIAN_COST[channel]
    paid = median > 0
    scale = 10.0 ** rng.integers(2, 5, channel.size)
    priced = np.maximum(np.round(rng.lognormal(np.log(np.where(paid, median, 1.0)), _COST_SIGMA) * scale), 1)
    unpaid = np.where(rng.random(channel.size) < _NULL_COST_SHARE, np.nan, 0.0)
    free = rng.random(channel.size) < _FREE_CLICK_SHARE
    return pl.Series("cost", np.where(paid, np.where(free, 0.0, priced / scale), unpaid)).fill_nan(None)


def _conversion_frame(
    rng: np.random.Generator, orders: _Events, user_ids: pl.Series, plan: _ChunkPlan, start: int
) -> pl.DataFrame:
    """The chunk's conversions with a lognormal revenue (positive, 2 decimals), in conv_id order."""
    count = orders.owners.size
    conv_date, conv_time = _date_and_time(orders.times, start)
    revenue = np.maximum(np.round(rng.lognormal(_REVENUE_MU, _REVENUE_SIGMA, count), 2), 0.01)
    return pl.DataFrame(
        {
            "conv_id": _hex_ids(rng, count, plan),
            "user_id": user_ids.gather(orders.owners),
            "conv_date": conv_date,
            "conv_time": conv_time,
            "revenue": revenue,
        }
    )


def _hex_ids(rng: np.random.Generator, count: int, plan: _ChunkPlan) -> pl.Series:
    """Sorted random 256-bit ids as 64 lowercase hex digits, the first 64 bits in the chunk's slice.

    Sorted ids given to shuffled rows are as random as random ids, and make every insert an index append.
    """
    head = np.sort(rng.integers(plan.id_floor, plan.id_floor + plan.id_span, size=count, dtype=np.uint64))
    words = np.column_stack([head, rng.integers(0, 2**64, size=(count, 3), dtype=np.uint64)])
    raw = pa.Array.from_buffers(pa.binary(32), count, [None, pa.py_buffer(words.astype(">u8"))])
    return pl.from_arrow(raw).cast(pl.Binary).bin.encode("hex")


def _date_and_time(seconds: np.ndarray, start: int) -> tuple[pl.Series, pl.Series]:
    """'YYYY-MM-DD' and 'HH:MM:SS' (UTC) texts of offsets in seconds from the start date."""
    stamps = pl.from_epoch(pl.Series(seconds + start), time_unit="s")
    return stamps.dt.strftime("%Y-%m-%d"), stamps.dt.strftime("%H:%M:%S")


def _epoch_seconds(day: date) -> int:
    return (day - date(1970, 1, 1)).days * 86_400


def _concat(*parts: _Events) -> _Events:
    return _Events(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _shuffled(rng: np.random.Generator, *parts: _Events) -> _Events:
    """The events in random order, so that no group of users gets the lowest ids of its chunk."""
    events = _concat(*parts)
    order = rng.permutation(events.owners.size)
    return _Events(events.owners[order], events.times[order])


def _write_new_file(target: Path, write: Callable[[Path], int]) -> int:
    """What ``write`` returns, having written a temporary file beside ``target`` that is renamed to it at the
    end: the file appears complete or not at all."""
    temporary = _temporary_path(target)
    try:
        written = write(temporary)
        temporary.replace(target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return written


def _write_database(path: Path, chunks: Iterator[_Chunk], on_progress: Callable[[int], None] | None) -> int:
    """The input tables, then every chunk into them; the number of distinct users written."""
    _create_schema(path)
    return _write_chunks(path, chunks, on_progress)


def _temporary_path(target: Path) -> Path:
    """An empty file beside the target, so that the final rename stays on one file system."""
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    return Path(name)


def _create_schema(path: Path) -> None:
    """The input tables exactly as warehouse.tables defines them (like a real export: no pipeline indexes)."""
    with dbapi.connect(str(path), autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
        cursor.execute("VACUUM")  # fixes the page size while the file is still empty
    with open_engine(str(path), must_exist=False) as engine:
        create_input_tables(engine)


def _built_ahead(build: Callable[[_ChunkPlan], _Chunk], plans: list[_ChunkPlan]) -> Iterator[_Chunk]:
    """Build chunk i+1 in a thread while chunk i is written; at most two chunks are in memory."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(build, plans[0])
        for plan in plans[1:]:
            current, upcoming = upcoming.result(), pool.submit(build, plan)
            yield current
        yield upcoming.result()


PROGRESS_ROWS = 100_000
"""Rows of a table appended between two progress reports: the bar moves smoothly through a chunk of a
million sessions (the chunks, which the data depend on, stay as they are)."""


def _write_chunks(path: Path, chunks: Iterator[_Chunk], on_progress: Callable[[int], None] | None) -> int:
    """Append every chunk in one transaction, reporting the sessions written as their table grows; return
    the number of distinct users written."""
    sessions = users = 0
    with _bulk_cursor(path) as cursor:
        for chunk in chunks:
            for table, frame in chunk.tables:
                for part in frame.iter_slices(PROGRESS_ROWS):
                    cursor.adbc_ingest(table, part, mode="append")
                    if table == "session_sources":
                        sessions += part.height
                        if on_progress is not None:
                            on_progress(sessions)
            users += chunk.users
    return users


@contextmanager
def _bulk_cursor(path: Path) -> Iterator[dbapi.Cursor]:
    """An ADBC cursor inside one transaction, on a connection tuned for a bulk load."""
    with dbapi.connect(str(path), autocommit=True) as conn, conn.cursor() as cursor:
        for pragma in _BULK_PRAGMAS:
            cursor.execute(pragma)
        cursor.execute("BEGIN")
        yield cursor
        cursor.execute("COMMIT")
