"""Models that learn a score per channel from converting journeys and non-converting ("null") paths.

Why a shared base: Markov removal effects and Shapley values are both learned from the same two kinds of
path (coded here once, channels as integers, for numpy) and both split each conversion over its channels
in proportion to the scores (``credit_by_channel_score``); only the score differs.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from attribution.models.base import (
    JOURNEY,
    SCORE_FLOOR,
    Attributor,
    credit_by_channel_score,
    journey_frame,
)
from attribution.vocabulary import PATH_SCHEMA, empty_paths, grouped_in_time_order


@dataclass(frozen=True)
class CodedPaths:
    """Distinct paths as arrays, one entry per session in path order, with how many paths of each there were.

    ``channels`` maps a code to its name (sorted by name, so codes do not depend on row order);
    ``conversions`` and ``nulls`` count, per distinct path, the converting and the null paths it stands for.
    """

    channels: tuple[str, ...]
    path: np.ndarray
    code: np.ndarray
    conversions: np.ndarray
    nulls: np.ndarray

    @property
    def starts(self) -> np.ndarray:
        """Index of each path's first session."""
        return np.flatnonzero(np.r_[True, self.path[1:] != self.path[:-1]])

    @property
    def is_last(self) -> np.ndarray:
        """Whether each session is the last of its path."""
        return np.r_[self.path[1:] != self.path[:-1], True]


def indexed_paths(paths: pl.DataFrame) -> pl.DataFrame:
    """Sessions in path order with an integer ``path`` index (0, 1, ...), as ``code_paths`` takes them."""
    ordered = grouped_in_time_order(paths.select(PATH_SCHEMA.keys()).cast(PATH_SCHEMA), "path_id")
    return ordered.with_columns(path=pl.col("path_id").rle_id().cast(pl.Int64))


def code_paths(conversions: pl.DataFrame, nulls: pl.DataFrame) -> CodedPaths:
    """Code converting and null paths together and count them by channel sequence; each frame in path
    order with its ``path`` index.

    Why distinct paths: a million journeys hold about a hundred thousand sequences, and every count a
    model takes (transitions, channel sets) is the same weighted by how often each sequence occurs.
    """
    channels = tuple(sorted(set(conversions["channel_name"].unique()) | set(nulls["channel_name"].unique())))
    enum = pl.Enum(channels)
    converting = conversions["path"].to_numpy()
    n_converting = int(converting[-1]) + 1 if converting.size else 0
    path = np.r_[converting, nulls["path"].to_numpy() + n_converting].astype(np.int64)
    code = np.r_[_codes(conversions, enum), _codes(nulls, enum)]
    converted = np.arange(int(path[-1]) + 1 if path.size else 0) < n_converting
    return _distinct(channels, path, code, converted)


def _distinct(
    channels: tuple[str, ...], path: np.ndarray, code: np.ndarray, converted: np.ndarray
) -> CodedPaths:
    """The distinct sequences of these paths (numbered 0, 1, ...) with their converting and null counts."""
    starts = np.flatnonzero(np.r_[True, path[1:] != path[:-1]]) if path.size else np.zeros(0, np.int64)
    lengths = np.diff(np.r_[starts, path.size])
    group = _sequence_groups(code, starts, lengths)
    first = np.unique(group, return_index=True)[1]  # the first path of each group stands for it
    length = lengths[first]
    sessions = np.repeat(starts[first] - np.cumsum(np.r_[0, length[:-1]]), length) + np.arange(length.sum())
    counts = [
        np.bincount(group, weights=flag.astype(float), minlength=first.size)
        for flag in (converted, ~converted)
    ]
    return CodedPaths(channels, np.repeat(np.arange(first.size), length), code[sessions], *counts)


def _sequence_groups(code: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A group number per path, equal exactly when two paths have the same channel sequence.

    Why a hash, then a check: a 64-bit polynomial hash per path is a few vector passes where sorting
    variable-length sequences is not; a path whose sessions differ from its group's first path (a
    collision) gets a group of its own, so equal numbers always mean equal sequences.
    """
    path = np.repeat(np.arange(starts.size), lengths)
    position = np.arange(code.size) - starts[path]
    group = np.unique(_sequence_hashes(code, starts, lengths, position), return_inverse=True)[1]
    first = np.full(group.max(initial=-1) + 1, starts.size)
    np.minimum.at(first, group, np.arange(starts.size))
    representative = first[group]
    same = lengths == lengths[representative]
    within = np.minimum(position, lengths[representative][path] - 1)
    differs = code != code[starts[representative][path] + within]
    same[np.unique(path[differs])] = False
    group[~same] = first.size + np.arange(np.count_nonzero(~same))
    return np.unique(group, return_inverse=True)[1]


_HASH_BASE = np.uint64(0x9E3779B97F4A7C15)


def _sequence_hashes(
    code: np.ndarray, starts: np.ndarray, lengths: np.ndarray, position: np.ndarray
) -> np.ndarray:
    """Each path's ``sum((code + 1) * B^position) + length * B^longest`` in uint64 arithmetic (wrapping)."""
    powers = np.cumprod(
        np.r_[np.uint64(1), np.full(int(lengths.max(initial=0)), _HASH_BASE)], dtype=np.uint64
    )
    terms = (code.astype(np.uint64) + np.uint64(1)) * powers[position]
    sums = np.add.reduceat(terms, starts) if starts.size else np.zeros(0, np.uint64)
    return sums + lengths.astype(np.uint64) * powers[-1]


def _codes(paths: pl.DataFrame, enum: pl.Enum) -> np.ndarray:
    return paths["channel_name"].cast(enum).to_physical().cast(pl.Int64).to_numpy()


class PathModel(Attributor):
    """A channel-score model trained on converting paths plus ``null_paths`` (see ``PATH_SCHEMA``).

    With ``conversion_paths`` the scores are learned once, here; without, each ``attribute`` call learns
    them from the journeys it is given (so results then depend on which journeys are attributed together).
    Without null paths the scores come from converting paths alone.
    """

    def __init__(self, null_paths: pl.DataFrame | None = None, conversion_paths: pl.DataFrame | None = None):
        self.null_paths = indexed_paths(empty_paths() if null_paths is None else null_paths)
        self.trained_scores = None if conversion_paths is None else self.channel_scores(conversion_paths)

    @abstractmethod
    def score_channels(self, paths: CodedPaths) -> np.ndarray:
        """One score per channel code."""

    @property
    def learns_from_journeys(self) -> bool:
        """Whether ``attribute`` would learn the scores from each call's journeys (none trained yet)."""
        return self.trained_scores is None

    def trained_on(self, conversion_paths: pl.DataFrame) -> PathModel:
        """This model with its scores learned from ``conversion_paths`` (and its null paths), as if built
        with them."""
        trained = copy.copy(self)
        trained.trained_scores = self.channel_scores(conversion_paths)
        return trained

    def channel_scores(self, conversion_paths: pl.DataFrame) -> dict[str, float]:
        """Each channel's score learned from these converting paths and the model's null paths."""
        return self._scores(indexed_paths(conversion_paths))

    def attribute(self, journeys: pl.DataFrame) -> pl.DataFrame:
        frame = journey_frame(journeys)
        scores = self.trained_scores
        if scores is None:
            scores = self._scores(frame.select("channel_name", path=pl.col(JOURNEY).cast(pl.Int64)))
        return credit_by_channel_score(frame, scores)

    def _scores(self, conversions: pl.DataFrame) -> dict[str, float]:
        coded = code_paths(conversions, self.null_paths)
        if not coded.channels:
            return {}
        return dict(zip(coded.channels, self.score_channels(coded).tolist(), strict=True))


def global_credit(scores: Mapping[str, float], conversions: float) -> dict[str, float]:
    """Each channel's conversions under the global split: its share of all channel scores (Markov's removal
    effects, Shapley values) times ``conversions``: ChannelAttribution's and DP6 MAM 1.x's figure.

    A channel-level figure only: stored credit is per session and sums to 1 over each journey's own
    sessions, and no such split can always reach these totals (a channel alone in more journeys than its
    share, or with an effect but in no converting journey, learned through the chain's other paths).
    Scores up to ``SCORE_FLOOR`` (a negative Shapley value, say) count 0, as in the per-journey split.
    """
    kept = {channel: score if score > SCORE_FLOOR else 0.0 for channel, score in scores.items()}
    total = sum(kept.values())
    return {channel: score / total * conversions if total > 0 else 0.0 for channel, score in kept.items()}
