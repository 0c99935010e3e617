"""Pack whole journeys into as few IHC requests as both caps (journeys and sessions per request) allow.

Why whole journeys: the service scores each request on its own, so a journey split over two requests gets
credit summing to 2. Why a two-ended greedy instead of first-fit-decreasing: FFD fills requests with long
journeys first and later runs out of journey slots for the short ones. Here each request starts with the
longest journey left and keeps its mean length near the mean of all journeys left, taking long journeys
while it is below that mean and short ones while above; so every request is full in whichever cap binds.
Journeys of equal length are taken in bulk, so the loop runs per request and length, not per journey.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from attribution.ihc_api.contract import DEFAULT_MAX_JOURNEYS, DEFAULT_MAX_SESSIONS, LongJourneyPolicy
from attribution.vocabulary import in_journey_order


@dataclass(frozen=True)
class PackingPlan:
    """Requests as index ranges: request ``i`` sends ``rows[row_index[offsets[i]:offsets[i + 1]]]``.

    Why indices, not a reordered copy: gathering each request's rows when it is sent costs nothing
    extra, while reordering millions of rows up front would. ``journeys`` counts the journeys sent (skipped
    ones excluded); ``dropped`` holds the (conv_id, session_id) of sessions cut from truncated journeys.
    """

    rows: pl.DataFrame
    row_index: np.ndarray
    offsets: np.ndarray
    journeys: int
    dropped: pl.DataFrame
    truncated_ids: list[str]
    skipped_ids: list[str]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def batch(self, index: int) -> pl.DataFrame:
        """The session rows of request ``index``, whole journeys in journey order."""
        return self.rows[self.row_index[self.offsets[index] : self.offsets[index + 1]]]


def lower_bound(journeys: int, sessions: int, max_journeys: int, max_sessions: int) -> int:
    """The fewest requests any packing could use: each cap on its own gives a bound."""
    return max(-(-journeys // max_journeys), -(-sessions // max_sessions))


def pack_requests(
    journeys: pl.DataFrame,
    max_journeys: int = DEFAULT_MAX_JOURNEYS,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    long_journey_policy: LongJourneyPolicy = "truncate",
) -> PackingPlan:
    """Group whole journeys into requests of at most ``max_journeys`` journeys and ``max_sessions`` sessions.

    Args:
        journeys: a journeys frame (needs ``conv_id``, ``session_id``, ``timestamp``; other columns ride along).
        long_journey_policy: for a journey longer than ``max_sessions``, ``truncate`` keeps its most recent
            ``max_sessions`` sessions (the converting one is the last, so it stays), ``skip`` leaves it out.
    """
    if long_journey_policy not in ("truncate", "skip"):
        raise ValueError(f"long_journey_policy must be 'truncate' or 'skip', not {long_journey_policy!r}")
    rows = in_journey_order(journeys)
    lengths = np.bincount(rows["conv_id"].rle_id().to_numpy()).astype(np.int64)
    ends = np.cumsum(lengths)
    too_long = lengths > max_sessions
    truncating = long_journey_policy == "truncate"
    sent = np.where(too_long, max_sessions if truncating else 0, lengths)
    kept = np.flatnonzero(sent)
    bins = assign_bins(sent[kept], max_journeys, max_sessions)
    by_request = kept[np.argsort(bins, kind="stable")]
    long_ids = rows["conv_id"].gather(ends[too_long] - 1).to_list()
    cut = (
        lengths[too_long] - max_sessions
    ) * truncating  # sessions cut per long journey (none when skipping)
    return PackingPlan(
        rows=rows,
        row_index=_last_rows(ends[by_request], sent[by_request]),
        offsets=np.concatenate([[0], np.cumsum(np.bincount(bins, weights=sent[kept]).astype(np.int64))]),
        journeys=len(kept),
        dropped=rows[_last_rows(ends[too_long] - max_sessions, cut)].select("conv_id", "session_id"),
        truncated_ids=long_ids if truncating else [],
        skipped_ids=[] if truncating else long_ids,
    )


def _last_rows(ends: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Row indices of the last ``counts[k]`` rows before ``ends[k]``, journey after journey."""
    offsets = np.cumsum(counts) - counts
    return np.repeat(ends - counts - offsets, counts) + np.arange(int(counts.sum()))


def assign_bins(lengths: np.ndarray, max_journeys: int, max_sessions: int) -> np.ndarray:
    """The request index of each journey, given journey lengths (each between 1 and ``max_sessions``)."""
    values, counts = np.unique(lengths, return_counts=True)
    take_value, take_count, take_bin = _Filler(
        values.tolist(), counts.tolist(), max_journeys, max_sessions
    ).run()
    # Journeys of one length are interchangeable: hand them out in the order the requests took them.
    order = np.argsort(np.asarray(take_value, dtype=np.int64), kind="stable")
    sorted_bins = np.repeat(
        np.asarray(take_bin, dtype=np.int64)[order], np.asarray(take_count, dtype=np.int64)[order]
    )
    bins = np.empty(len(lengths), dtype=np.int64)
    bins[np.argsort(lengths, kind="stable")] = sorted_bins
    return bins


class _Filler:
    """The greedy over distinct lengths ``values`` (ascending) with ``left[i]`` journeys of each still unplaced."""

    def __init__(self, values: list[int], counts: list[int], max_journeys: int, max_sessions: int) -> None:
        self.values, self.left = values, counts[:]
        self.max_j, self.max_s = max_journeys, max_sessions
        self.items = sum(counts)
        self.sessions = sum(v * c for v, c in zip(values, counts, strict=True))
        self.lo, self.hi = 0, len(values) - 1
        self.skip = list(range(-1, len(values) - 1))  # where to look next below an exhausted length

    def run(self) -> tuple[list[int], list[int], list[int]]:
        """Fill requests one by one; returns parallel lists (length index, how many, request) of the takes."""
        takes: tuple[list[int], list[int], list[int]] = ([], [], [])
        request = 0
        while self.items:
            # Journeys this request should hold if every request were full in its binding cap.
            target = min(self.max_j, max(1, self.max_s * self.items // self.sessions))
            used_j = used_s = 0
            while self.items and used_j < self.max_j:
                index, k = self._next_take(used_j, used_s, target)
                if not k:
                    break
                self._take(index, k)
                used_j, used_s = used_j + k, used_s + k * self.values[index]
                for column, value in zip(takes, (index, k, request), strict=True):
                    column.append(value)
            request += 1
        return takes

    def _take(self, index: int, k: int) -> None:
        self.left[index] -= k
        self.items -= k
        self.sessions -= k * self.values[index]
        while self.lo <= self.hi and not self.left[self.lo]:
            self.lo += 1
        while self.hi >= self.lo and not self.left[self.hi]:
            self.hi -= 1

    def _next_take(self, used_j: int, used_s: int, target: int) -> tuple[int, int]:
        """Which length to take next into the current request, and how many of it (0 = request full)."""
        room_s, room_j = self.max_s - used_s, self.max_j - used_j
        lo, small = self.lo, self.values[self.lo]
        if lo == self.hi:
            return lo, min(self.left[lo], room_j, room_s // small)
        mean = self.sessions / self.items
        # Long journeys must leave room for the short ones that bring the request to its target count.
        reserve = max(0, target - used_j - 1) * small
        if used_s <= used_j * mean:
            index = self._longest_at_most(room_s - reserve)
            if not used_j and index <= lo:  # too long to share a full request: it still has to go somewhere
                index = self.hi
            if index > lo:
                return index, self._how_many_long(index, used_j, used_s, target, mean)
            wanted = (target if used_j < target else self.max_j) - used_j
        else:  # above the mean: just enough short journeys to come back to it
            wanted = math.ceil((used_s - used_j * mean) / (mean - small))
        return lo, min(self.left[lo], room_j, room_s // small, max(1, wanted))

    def _how_many_long(self, index: int, used_j: int, used_s: int, target: int, mean: float) -> int:
        """How many journeys of length ``values[index]`` to take at once (at least one)."""
        small, length = self.values[self.lo], self.values[index]
        room_s = self.max_s - used_s
        short_slots = target - used_j
        fit = room_s // length
        if short_slots > 0:  # while the short ones can still fill up to the target
            with_reserve = (room_s - short_slots * small) // (length - small)
            fit = with_reserve if with_reserve < short_slots else fit
        allowed = min(self.left[index], self.max_j - used_j, max(1, fit))
        if length <= mean:
            return allowed
        # Several at once if enough short journeys are left to balance them within the target.
        per_long = (length - mean) / (mean - small)
        balanced = min(self.left[self.lo] / per_long, (target - used_j) / (1 + per_long))
        below_mean = max(1 + math.floor((used_j * mean - used_s) / (length - mean)), math.floor(balanced))
        return min(allowed, below_mean)

    def _longest_at_most(self, budget: int) -> int:
        """Index of the longest length still left that is at most ``budget``, or -1."""
        index = bisect.bisect_right(self.values, budget, self.lo, self.hi + 1) - 1
        passed = []
        while index >= self.lo and not self.left[index]:
            passed.append(index)
            index = self.skip[index]
        for exhausted in passed:  # path compression: later searches jump straight past them
            self.skip[exhausted] = index
        return index if index >= self.lo else -1
