"""Markov chain attribution: a channel's share is its removal effect in an absorbing chain of the paths.

Every path is a walk ``start -> state -> ... -> conversion | null``; a state is the last ``order``
channels seen (fewer at the start of a path). Transition probabilities are the observed frequencies over
converting journeys and null paths. The chance of reaching ``conversion`` from ``start`` is computed
exactly with numpy linear algebra, ``x = (I - Q)^-1 r`` (``Q``: transient-to-transient, ``r``: transient-
to-conversion), not by simulating walks. Removing a channel sends every state that contains it to ``null``;
its removal effect is ``1 - P(conversion without it) / P(conversion)``, in [0, 1].
Self-transitions (the same channel twice in a row) are kept: they are what the paths show.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from attribution.errors import ConfigError
from attribution.models.path_model import CodedPaths, PathModel

ORDERS = (1, 2, 3)
MAX_STATES = 12_000
"""The exact solution holds a dense states x states matrix (12,000 states: 1.2 GB); 16 channels at order 3
give at most 4,369 states."""
_MAX_LOOKUP = 1 << 24


class Markov(PathModel):
    """Each conversion is split over its journey's channels in proportion to their removal effects."""

    name = "markov"

    def __init__(
        self,
        null_paths: pl.DataFrame | None = None,
        conversion_paths: pl.DataFrame | None = None,
        order: int = 1,
    ) -> None:
        if order not in ORDERS:
            raise ConfigError(f"Bad Markov order {order!r}: expected one of {', '.join(map(str, ORDERS))}")
        self.order = order
        super().__init__(null_paths, conversion_paths)

    def score_channels(self, paths: CodedPaths) -> np.ndarray:
        return removal_effects(paths, self.order)


def removal_effects(paths: CodedPaths, order: int) -> np.ndarray:
    """The removal effect of every channel code (0 for all when nothing converts).

    Why one inverse: with ``B = (I - Q)^-1`` and ``x = B r``, sending the states ``R`` to null lowers
    P(conversion | start) by ``B[start, R] · B[R, R]^-1 · x[R]`` (block inverse / Schur complement), so each
    channel costs a solve over its own states instead of a solve over all the others.
    """
    base = len(paths.channels) + 1
    states = _states(paths, order, base)
    known, q, r = _transition_matrices(paths, states)
    visits = np.linalg.inv(np.eye(known.size) - q)
    converts = visits @ r
    if converts[0] <= 0:
        return np.zeros(len(paths.channels))
    digits = (known[:, None] // base ** np.arange(order)) % base
    effects = np.empty(len(paths.channels))
    for code in range(len(paths.channels)):
        removed = np.flatnonzero((digits == code + 1).any(axis=1))
        within = np.linalg.solve(visits[np.ix_(removed, removed)], converts[removed])
        effects[code] = visits[0, removed] @ within / converts[0]
    return effects


def _states(paths: CodedPaths, order: int, base: int) -> np.ndarray:
    """Each session's state: its last ``order`` channels as base-``base`` digits (code + 1; 0 = before
    the path began), so state 0 is ``start`` and shorter histories stay distinct."""
    n = paths.code.size
    states = np.zeros(n, dtype=np.int64)
    for lag in range(order):
        digit = np.zeros(n, dtype=np.int64)
        same_path = paths.path[lag:] == paths.path[: n - lag]
        digit[lag:] = np.where(same_path, paths.code[: n - lag] + 1, 0)
        states += digit * base**lag
    return states


def _transition_matrices(paths: CodedPaths, states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The transient states (``start`` first), ``Q`` between them and ``r`` into conversion."""
    first = np.zeros(states.size, dtype=bool)
    first[paths.starts] = True
    previous = np.where(first, 0, np.roll(states, 1))
    known, index = _state_index(states)
    n = known.size
    if n > MAX_STATES:
        raise ConfigError(
            f"The Markov chain has {n:,} states on these paths; at most {MAX_STATES:,} can be solved exactly: "
            "use a lower order"
        )
    last = paths.is_last
    conversion, null = n, n + 1
    outcome = np.where(paths.converted[paths.path[last]], conversion, null)
    sources = np.r_[index(previous), index(states[last])]
    targets = np.r_[index(states), outcome]
    counts = np.bincount(sources * (n + 2) + targets, minlength=n * (n + 2)).reshape(n, n + 2)
    probabilities = counts / counts.sum(axis=1, keepdims=True)
    return known, probabilities[:, :n], probabilities[:, conversion]


def _state_index(states: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The distinct states (with ``start``, 0, first) and a function from state codes to their rows.

    Why a lookup table when it is small: indexing into it is one pass, where ``searchsorted`` over
    millions of sessions costs a binary search each.
    """
    top = int(states.max(initial=0)) + 1
    if top > _MAX_LOOKUP:
        known = np.unique(np.r_[0, states])
        return known, lambda codes: np.searchsorted(known, codes)
    present = np.zeros(top, dtype=bool)
    present[0] = True
    present[states] = True
    rows = np.cumsum(present) - 1
    return np.flatnonzero(present), lambda codes: rows[codes]
