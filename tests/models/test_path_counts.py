"""Markov and Shapley learn from distinct paths with their counts: the same scores as learning path by path.

The oracle is the earlier implementation, kept here only: Markov through a dense ``S x S`` inverse of every
session's transitions, Shapley from one channel set per path. The models must equal it to 1e-12.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.models import Markov, Shapley
from attribution.models.path_model import indexed_paths
from attribution.vocabulary import journey_paths
from tests.models.path_cases import CONTRACT_NULLS, CONVERSIONS, NULLS, journeys_frame, paths_frame


def session_arrays(conversions: pl.DataFrame, nulls: pl.DataFrame) -> tuple[tuple[str, ...], np.ndarray, ...]:
    """Channels, and per session: path index, channel code, whether its path converted (paths not merged)."""
    conv, null = indexed_paths(journey_paths(conversions)), indexed_paths(nulls)
    channels = tuple(sorted(set(conv["channel_name"]) | set(null["channel_name"])))
    code = {name: i for i, name in enumerate(channels)}
    n_conv = conv["path"].max() + 1 if conv.height else 0
    path = np.r_[conv["path"].to_numpy(), null["path"].to_numpy() + n_conv].astype(np.int64)
    codes = np.array([code[name] for name in [*conv["channel_name"], *null["channel_name"]]], dtype=np.int64)
    converted = np.arange(path.max() + 1) < n_conv
    return channels, path, codes, converted


def dense_removal_effects(conversions: pl.DataFrame, nulls: pl.DataFrame, order: int) -> dict[str, float]:
    """The earlier Markov: every session's transition counted, ``(I - Q)^-1`` inverted densely."""
    channels, path, code, converted = session_arrays(conversions, nulls)
    base, n = len(channels) + 1, code.size
    states = np.zeros(n, dtype=np.int64)
    for lag in range(order):
        digit = np.zeros(n, dtype=np.int64)
        digit[lag:] = np.where(path[lag:] == path[: n - lag], code[: n - lag] + 1, 0)
        states += digit * base**lag
    first = np.r_[True, path[1:] != path[:-1]]
    last = np.r_[path[1:] != path[:-1], True]
    previous = np.where(first, 0, np.roll(states, 1))
    known = np.unique(np.r_[0, states])
    s = known.size
    sources = np.searchsorted(known, np.r_[previous, states[last]])
    targets = np.r_[np.searchsorted(known, states), np.where(converted[path[last]], s, s + 1)]
    counts = np.bincount(sources * (s + 2) + targets, minlength=s * (s + 2)).reshape(s, s + 2)
    probabilities = counts / counts.sum(axis=1, keepdims=True)
    visits = np.linalg.inv(np.eye(s) - probabilities[:, :s])
    converts = visits @ probabilities[:, s]
    if converts[0] <= 0:
        return dict.fromkeys(channels, 0.0)
    digits = (known[:, None] // base ** np.arange(order)) % base
    effects = {}
    for i, channel in enumerate(channels):
        removed = np.flatnonzero((digits == i + 1).any(axis=1))
        within = np.linalg.solve(visits[np.ix_(removed, removed)], converts[removed])
        effects[channel] = float(visits[0, removed] @ within / converts[0])
    return effects


def per_path_shapley(conversions: pl.DataFrame, nulls: pl.DataFrame) -> dict[str, float]:
    """The earlier exact Shapley: one channel set per path, each path weighing 1."""
    from attribution.models.shapley import coalition_values, exact_shapley

    channels, path, code, converted = session_arrays(conversions, nulls)
    masks = np.zeros(converted.size, dtype=np.int64)
    np.bitwise_or.at(masks, path, np.left_shift(np.int64(1), code))
    n = len(channels)
    values = exact_shapley(coalition_values(masks, converted, ~converted, n), n)
    return dict(zip(channels, values.tolist(), strict=True))


def generated(n_paths: int, n_channels: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Converting journeys and null paths of 1..6 sessions, repeats likely (few channels, short paths)."""
    rng = np.random.default_rng(seed)
    names = [f"ch{i:02d}" for i in range(n_channels)]
    share = 1 / np.arange(1, n_channels + 1)
    paths = [tuple(rng.choice(names, size=rng.integers(1, 7), p=share / share.sum())) for _ in range(n_paths)]
    converts = rng.random(n_paths) < 0.4
    conversions = {f"c{i}": p for i, p in enumerate(paths) if converts[i]}
    nulls = {f"n{i}": p for i, p in enumerate(paths) if not converts[i]}
    return journeys_frame(conversions), paths_frame(nulls)


CASES = {
    "worked example": (CONVERSIONS, NULLS),
    "contract nulls": (
        journeys_frame({"c1": ("Direct Traffic", "Referral"), "c2": ("Referral",)}),
        CONTRACT_NULLS,
    ),
    "no null paths": (CONVERSIONS, paths_frame({})),
    "generated": generated(3000, 6, seed=1),
}


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_markov_on_distinct_paths_equals_the_dense_session_by_session_chain(case, order):
    conversions, nulls = CASES[case]
    got = Markov(nulls, order=order).channel_scores(journey_paths(conversions))
    assert got == pytest.approx(dense_removal_effects(conversions, nulls, order), abs=1e-12, rel=0)


@pytest.mark.parametrize("case", list(CASES))
def test_shapley_on_distinct_paths_equals_the_path_by_path_values(case):
    conversions, nulls = CASES[case]
    got = Shapley(nulls).channel_scores(journey_paths(conversions))
    assert got == pytest.approx(per_path_shapley(conversions, nulls), abs=1e-12, rel=0)


PATHS = st.lists(
    st.tuples(st.lists(st.sampled_from("ABCD"), min_size=1, max_size=6), st.booleans()),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(paths=PATHS, order=st.integers(1, 3))
def test_any_paths_give_the_dense_chain_s_removal_effects(paths, order):
    conversions = journeys_frame({f"c{i}": tuple(p) for i, (p, conv) in enumerate(paths) if conv})
    nulls = paths_frame({f"n{i}": tuple(p) for i, (p, conv) in enumerate(paths) if not conv})
    got = Markov(nulls, order=order).channel_scores(journey_paths(conversions))
    assert got == pytest.approx(dense_removal_effects(conversions, nulls, order), abs=1e-12, rel=0)


@pytest.mark.parametrize("order", [1, 3])
def test_chains_the_iteration_does_not_settle_are_solved_directly_to_the_same_effects(monkeypatch, order):
    monkeypatch.setattr("attribution.models.markov.MAX_ITERATIONS", 0)
    conversions, nulls = CASES["generated"]
    got = Markov(nulls, order=order).channel_scores(journey_paths(conversions))
    assert got == pytest.approx(dense_removal_effects(conversions, nulls, order), abs=1e-12, rel=0)


def test_paths_whose_hashes_collide_are_still_told_apart(monkeypatch):
    # Every path hashed alike: only the check against each group's first path keeps sequences apart.
    monkeypatch.setattr(
        "attribution.models.path_model._sequence_hashes",
        lambda code, starts, *_: np.zeros(starts.size, np.uint64),
    )
    conversions, nulls = CASES["generated"]
    got = Markov(nulls, order=2).channel_scores(journey_paths(conversions))
    assert got == pytest.approx(dense_removal_effects(conversions, nulls, 2), abs=1e-12, rel=0)
    assert Shapley(nulls).channel_scores(journey_paths(conversions)) == pytest.approx(
        per_path_shapley(conversions, nulls), abs=1e-12, rel=0
    )
