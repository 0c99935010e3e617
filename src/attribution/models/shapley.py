"""Shapley value attribution: each channel's average marginal contribution to the conversion rate.

Coalitions are unordered sets of channels. The value of a coalition ``S`` is the conversion rate of the
paths (converting journeys and null paths) whose channel set is a subset of ``S``; the empty coalition is
worth 0. Up to ``exact_max_channels`` channels the Shapley values are exact: every coalition is a bitmask,
``v`` comes from one subset-sum (zeta) transform, and each channel sums its weighted marginal
contributions over all coalitions. Beyond that they are estimated from ``samples`` random channel orders
(seeded, so repeatable): with channel ranks fixed, a path is inside the first ``j`` channels exactly when
its highest-ranked channel is, so one order costs one pass over the distinct channel sets.
"""

from __future__ import annotations

from math import factorial

import numpy as np
import polars as pl

from attribution.errors import ConfigError
from attribution.models.path_model import CodedPaths, PathModel

EXACT_MAX_CHANNELS = 16
"""Up to this many channels (65,536 coalitions) the values are exact."""
DEFAULT_SAMPLES = 2_000
"""Channel orders drawn beyond ``EXACT_MAX_CHANNELS``; the error shrinks as 1 / sqrt(samples)."""
MAX_CHANNELS = 62
"""Channel sets are int64 bitmasks."""


class Shapley(PathModel):
    """Each conversion is split over its journey's channels in proportion to their (positive) Shapley values.

    The conversion rate is not monotone, so a channel can have a negative Shapley value; it then gets
    none of a journey's credit (and a journey whose channels are all non-positive is split linearly).
    """

    name = "shapley"

    def __init__(
        self,
        null_paths: pl.DataFrame | None = None,
        conversion_paths: pl.DataFrame | None = None,
        exact_max_channels: int = EXACT_MAX_CHANNELS,
        samples: int = DEFAULT_SAMPLES,
        seed: int = 0,
    ) -> None:
        self.exact_max_channels, self.samples, self.seed = exact_max_channels, samples, seed
        super().__init__(null_paths, conversion_paths)

    def score_channels(self, paths: CodedPaths) -> np.ndarray:
        n = len(paths.channels)
        if n > MAX_CHANNELS:
            raise ConfigError(f"Shapley supports at most {MAX_CHANNELS} channels; the paths have {n}")
        masks = path_masks(paths)
        if n <= self.exact_max_channels:
            return exact_shapley(coalition_values(masks, paths.conversions, paths.nulls, n), n)
        distinct, inverse = np.unique(masks, return_inverse=True)
        conversions, nulls = (
            np.bincount(inverse, weights=w, minlength=distinct.size) for w in (paths.conversions, paths.nulls)
        )
        return sampled_shapley(distinct, conversions, nulls, n, self.samples, self.seed)


def path_masks(paths: CodedPaths) -> np.ndarray:
    """Each distinct path's channel set as a bitmask (bit ``code`` set when the channel occurs)."""
    return np.bitwise_or.reduceat(np.left_shift(np.int64(1), paths.code), paths.starts)


def _rate(conversions: np.ndarray, nulls: np.ndarray) -> np.ndarray:
    total = conversions + nulls
    return np.divide(conversions, total, out=np.zeros_like(total), where=total > 0)


def coalition_values(masks: np.ndarray, conversions: np.ndarray, nulls: np.ndarray, n: int) -> np.ndarray:
    """``v[S]`` for every coalition bitmask ``S``: the conversion rate of the paths whose set is within ``S``.

    ``conversions`` and ``nulls`` weigh each mask (how many converting and null paths have it).
    """
    within = np.stack(
        [np.bincount(masks, weights=counts, minlength=1 << n) for counts in (conversions, nulls)]
    )
    for bit in range(n):
        halves = within.reshape(2, -1, 2, 1 << bit)
        halves[:, :, 1, :] += halves[:, :, 0, :]
    return _rate(within[0], within[1])


def exact_shapley(values: np.ndarray, n: int) -> np.ndarray:
    """Shapley values from the values of all ``2^n`` coalitions."""
    coalitions = np.arange(1 << n)
    weight = np.array([factorial(s) * factorial(n - 1 - s) / factorial(n) for s in range(n)])
    size = np.bitwise_count(coalitions)
    result = np.empty(n)
    for channel in range(n):
        without = coalitions[(coalitions >> channel) & 1 == 0]
        gains = values[without | (1 << channel)] - values[without]
        result[channel] = weight[size[without]] @ gains
    return result


def sampled_shapley(
    masks: np.ndarray, conversions: np.ndarray, nulls: np.ndarray, n: int, samples: int, seed: int
) -> np.ndarray:
    """Shapley values estimated as the mean marginal contribution over random channel orders.

    ``masks`` are the distinct channel sets, ``conversions`` and ``nulls`` their path counts.
    """
    members = ((masks[:, None] >> np.arange(n)) & 1).astype(bool)
    rng = np.random.default_rng(seed)
    total = np.zeros(n)
    for _ in range(samples):
        order = rng.permutation(n)
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        entry = np.where(members, rank, -1).max(axis=1)
        prefix = _rate(
            np.bincount(entry, weights=conversions, minlength=n).cumsum(),
            np.bincount(entry, weights=nulls, minlength=n).cumsum(),
        )
        total[order] += np.diff(prefix, prepend=0.0)
    return total / samples
