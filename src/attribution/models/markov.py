"""Markov chain attribution: a channel's share is its removal effect in an absorbing chain of the paths.

Every path is a walk ``start -> state -> ... -> conversion | null``; a state is the last ``order``
channels seen (fewer at the start of a path). Transition probabilities are the observed frequencies over
converting journeys and null paths, counted once per distinct path and weighted by how often it occurs.
``Q`` (transient-to-transient) is a sparse matrix: 30 channels at order 3 give up to 27,931 states, few
of the ``S x S`` pairs ever seen. Removing a channel sends every state that contains it to ``null``; its
removal effect is ``1 - P(conversion without it) / P(conversion)``, in [0, 1].
Self-transitions (the same channel twice in a row) are kept: they are what the paths show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from attribution.errors import ConfigError
from attribution.models.path_model import CodedPaths, PathModel

if TYPE_CHECKING:
    from scipy import sparse

# SciPy is imported by the functions that solve a chain, not here: ``MODELS`` imports every model, and a Markov
# run that solves no chain (an empty range) must not pay for SciPy's import (about a third of the pipeline's own).

ORDERS = (1, 2, 3)
MAX_ITERATIONS = 10_000
"""Sweeps of the iteration before the chains are solved directly instead (see ``conversion_chances``)."""
TOLERANCE = 1e-15
"""Largest error, relative to P(conversion), the iteration may leave in a chain's P(conversion)."""
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
    """The removal effect of every channel code (0 for all when nothing converts)."""
    base = len(paths.channels) + 1
    states = _states(paths, order, base)
    known, q, r = _transition_matrices(paths, states)
    digits = (known[:, None] // base ** np.arange(order)) % base
    kept = np.column_stack(
        [np.ones(known.size, dtype=bool), *((digits != code + 1).all(axis=1) for code in range(base - 1))]
    )
    chances = conversion_chances(q, r, kept)
    if chances[0] <= 0:
        return np.zeros(len(paths.channels))
    return np.clip(1 - chances[1:] / chances[0], 0.0, 1.0)


def conversion_chances(q: sparse.csr_array, r: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """P(conversion | start) of each chain: the states of column ``j`` of ``kept``, the others sent to null.

    Why iterate first: ``x = Q x + r`` swept from 0 reaches every chain at once with one sparse product
    per sweep (about a hundred sweeps on challenge-like paths), where a direct solve of an order-3 chain
    fills its LU factors almost densely (16 channels: 6 million non-zeros, seconds per channel). A chain
    the sweeps do not settle (a near-endless loop between states) is solved directly, exact in any case.
    """
    chances = _swept(q, r, kept)
    return _solved(q, r, kept) if chances is None else chances


def _swept(q: sparse.csr_array, r: np.ndarray, kept: np.ndarray) -> np.ndarray | None:
    """Jacobi sweeps (each state's self-transition solved for, so a channel repeated is no slow loop),
    or ``None`` when they do not settle within ``MAX_ITERATIONS``.

    From 0 the sweeps rise monotonically; with ``rate`` the last shrink of the change, the error left is at
    most ``change * rate / (1 - rate)``.
    """
    from scipy import sparse

    stay = q.diagonal()
    leave = 1 / (1 - stay)  # every state is left: each path's last visit to it moves on or ends
    step = sparse.csr_array(sparse.diags_array(leave) @ (q - sparse.diags_array(stay)))
    gain = np.where(kept, (r * leave)[:, None], 0.0)
    x = np.where(kept, gain, 0.0)
    previous = float(np.abs(x).max(initial=0.0))
    for _ in range(MAX_ITERATIONS):
        swept = np.where(kept, step @ x, 0.0) + gain
        change = float(np.abs(swept - x).max(initial=0.0))
        x, rate = swept, change / previous if previous else 0.0
        if change == 0 or (rate < 1 and change * rate / (1 - rate) <= TOLERANCE * x[0, 0]):
            return x[0]
        previous = change
    return None


def _solved(q: sparse.csr_array, r: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Each chain's ``(I - Q) x = r`` over its kept states, by a sparse LU factorisation."""
    from scipy import sparse
    from scipy.sparse import linalg as sparse_linalg

    system = sparse.csc_array(sparse.eye_array(r.size) - q)
    chances = np.empty(kept.shape[1])
    for column in range(kept.shape[1]):
        rows = np.flatnonzero(kept[:, column])  # start, row 0, is kept in every chain
        chances[column] = sparse_linalg.splu(sparse.csc_array(system[rows][:, rows])).solve(r[rows])[0]
    return chances


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


def _transition_matrices(
    paths: CodedPaths, states: np.ndarray
) -> tuple[np.ndarray, sparse.csr_array, np.ndarray]:
    """The transient states (``start`` first), ``Q`` between them and ``r`` into conversion.

    Each session's transition weighs as many paths as its distinct path stands for; the path's end goes
    to conversion as often as it converted and to null as often as it did not.
    """
    from scipy import sparse

    first = np.zeros(states.size, dtype=bool)
    first[paths.starts] = True
    previous = np.where(first, 0, np.roll(states, 1))
    known, index = _state_index(states)
    n = known.size
    last = paths.is_last
    ends = index(states[last])
    sources = np.r_[index(previous), ends, ends]
    targets = np.r_[index(states), np.full(ends.size, n), np.full(ends.size, n + 1)]
    weights = np.r_[(paths.conversions + paths.nulls)[paths.path], paths.conversions, paths.nulls]
    counts = sparse.csr_array(sparse.coo_array((weights, (sources, targets)), shape=(n, n + 2)))
    probabilities = sparse.csr_array(sparse.diags_array(1 / counts.sum(axis=1)) @ counts)
    return known, sparse.csr_array(probabilities[:, :n]), probabilities[:, [n]].toarray().ravel()


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
