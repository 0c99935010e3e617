"""Calibrating the local IHC engine on answers of the real service, and measuring how close it gets.

Why phase by phase: the initializer shares depend only on the initializer curve (and channel weights), the
closer shares only on the closer curve, the holder shares on the holder surface given the session's
initializer and closer, and ``ihc`` on the phase weights given the three phases. So four small fits, in
that order, replace one large one: least squares on the shares (``share_fit``), then a linear one for the
weights. Pure: answers in (a frame, from a CSV or from stored API runs), ``IHCParameters`` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from attribution.models.base import JOURNEY
from attribution.models.ihc import (
    IHC,
    IHCParameters,
    holder_eligible,
    phase_values,
    timed_sessions,
)
from attribution.models.ihc_answers import answer_journeys, check_answers
from attribution.models.ihc_defaults import DIRECT_TRAFFIC
from attribution.models.share_fit import ShareProblem, fit_shares
from attribution.vocabulary import PHASES

WEIGHTED_CHANNELS = (DIRECT_TRAFFIC,)
"""Channels given their own weight per phase by default: on the real answers only Direct Traffic's differs."""
DEFAULT_FOLDS = 5
KEYS = ["conv_id", "session_id"]


@dataclass(frozen=True)
class Fidelity:
    """Mean absolute error against the service, per phase and for ``ihc``, on ``sessions`` sessions of
    journeys of two or more sessions (a one-session journey is 1, 0, 1, 1 in every model)."""

    initializer: float
    holder: float
    closer: float
    ihc: float
    sessions: int


def calibrate(
    answers: pl.DataFrame, *, channels: Sequence[str] = WEIGHTED_CHANNELS, start: IHCParameters | None = None
) -> IHCParameters:
    """Fit ``IHCParameters`` to the service's answers (``ihc_answers.ANSWER_SCHEMA``).

    The knots are ``start``'s (default: the shipped defaults'); their values, the ``channels``' weights per
    phase (every other channel weighs 1) and the phase weights are fitted. Raises ``InputError`` naming
    the first bad row of ``answers``.
    """
    frame = fit_frame(check_answers(answers))
    params = (start or IHCParameters()).model_copy(update={"channel_weights": {}})
    for fit in (_fit_initializer, _fit_closer, _fit_holder):
        params = fit(frame, params, channels)
    return params.model_copy(update=_phase_weights(frame))


def fit_frame(answers: pl.DataFrame) -> pl.DataFrame:
    """The engine's timed sessions of checked answers, in journey order, with the answers as ``target_*``
    and ``scored`` (the session belongs to a journey of two or more sessions)."""
    targets = answers.select(
        conv_id="conversion_id", session_id="session_id", **{f"target_{c}": c for c in (*PHASES, "ihc")}
    )
    sessions = timed_sessions(answer_journeys(answers))
    return sessions.join(targets, on=KEYS, how="left", maintain_order="left").with_columns(
        scored=pl.col("length") >= 2
    )


def _fit_initializer(frame: pl.DataFrame, params: IHCParameters, channels: Sequence[str]) -> IHCParameters:
    """A first session's raw initializer is 1 (it fixes the scale); a later one's is the curve of its gap."""
    later = pl.col("gap_hours").is_not_null().cast(pl.Float64)
    terms = [
        1 - later,
        *(later * unit for unit in params.initializer.basis_of_hours(pl.col("gap_hours").fill_null(1.0))),
    ]
    start = np.r_[1.0, params.initializer.values]
    values, weights = _fit_phase(frame, "initializer", terms, start, channels)
    curve = params.initializer.model_copy(update={"values": tuple(values[1:].tolist())})
    return _with_phase(params, "initializer", curve, weights)


def _fit_closer(frame: pl.DataFrame, params: IHCParameters, channels: Sequence[str]) -> IHCParameters:
    """The closer curve's value at its first knot (the last minutes) fixes the scale."""
    eligible = pl.col("closer_eligible").cast(pl.Float64)
    terms = [eligible * unit for unit in params.closer.basis_of_hours(pl.col("hours_to_conversion"))]
    values, weights = _fit_phase(frame, "closer", terms, np.array(params.closer.values), channels)
    return _with_phase(
        params, "closer", params.closer.model_copy(update={"values": tuple(values.tolist())}), weights
    )


def _fit_holder(frame: pl.DataFrame, params: IHCParameters, channels: Sequence[str]) -> IHCParameters:
    """The surface's value at (0, 0) (a session that neither starts nor closes) fixes the scale; the
    session's shares are the engine's own, so the fit matches what the engine will compute."""
    shares = phase_values(frame, params).select("initializer", "closer")
    terms = [
        holder_eligible() * unit for unit in params.holder.basis(pl.col("initializer"), pl.col("closer"))
    ]
    with_mass = pl.col("target_holder").sum().over(JOURNEY) > 0.5
    frame = frame.with_columns(shares).with_columns(scored=pl.col("scored") & with_mass)
    start = np.array(params.holder.values).ravel()
    values, weights = _fit_phase(frame, "holder", terms, start, channels)
    rows = values.reshape(len(params.holder.values), -1)
    surface = params.holder.model_copy(update={"values": tuple(map(tuple, rows.tolist()))})
    return _with_phase(params, "holder", surface, weights)


def _fit_phase(
    frame: pl.DataFrame, phase: str, terms: list[pl.Expr], start: np.ndarray, channels: Sequence[str]
) -> tuple[np.ndarray, dict[str, float]]:
    """Fit one phase's coefficients (all but the first, which fixes the scale) and its channels' weights.

    Coefficients and channels no scored session depends on keep their start (and channels are left out).
    """
    matrix = frame.select(*(term.alias(f"t{i}") for i, term in enumerate(terms))).to_numpy()
    scored = frame["scored"].to_numpy()
    present = [c for c in channels if frame.filter(pl.col("scored") & (pl.col("channel_name") == c)).height]
    onehot = frame.select(pl.col("channel_name") == c for c in present).to_numpy().astype(float)
    used = (matrix[scored] != 0).any(axis=0)
    problem = ShareProblem(
        terms=matrix,
        start=start.astype(float),
        fitted=np.r_[False, used[1:]],
        journey=frame[JOURNEY].to_numpy(),
        channels=onehot.reshape(frame.height, len(present)),
        target=frame[f"target_{phase}"].to_numpy(),
        scored=scored,
    )
    values, weights = fit_shares(problem)
    return values, dict(zip(present, weights.tolist(), strict=True))


def _with_phase(params: IHCParameters, phase: str, shape: object, weights: dict[str, float]) -> IHCParameters:
    channel_weights = {**params.channel_weights, phase: weights} if weights else params.channel_weights
    return params.model_copy(update={phase: shape, "channel_weights": channel_weights})


def _phase_weights(frame: pl.DataFrame) -> dict[str, float]:
    """Phase weights (summing to 1) from the answers' own phases, by linear least squares.

    With ``w_C = 1 - w_I - w_H``: ``ihc - C = w_I (I - C) + w_H (H - C)`` where the journey has holder
    mass, and ``ihc - C = w_I (I - C) + w_H (ihc - C)`` where it has none (the weights are rescaled).
    """
    i, h, c, ihc = (pl.col(f"target_{name}") for name in (*PHASES, "ihc"))
    with_mass = h.sum().over(JOURNEY) > 0.5
    rows = frame.filter("scored").select(
        a=i - c, b=pl.when(with_mass).then(h - c).otherwise(ihc - c), y=ihc - c
    )
    (w_i, w_h), *_ = np.linalg.lstsq(rows.select("a", "b").to_numpy(), rows["y"].to_numpy(), rcond=None)
    return {
        "initializer_weight": float(w_i),
        "holder_weight": float(w_h),
        "closer_weight": float(1 - w_i - w_h),
    }


def fidelity(params: IHCParameters, answers: pl.DataFrame) -> Fidelity:
    """How far the engine with ``params`` is from the service's answers (see ``Fidelity``)."""
    return compare(IHC(params).attribute(answer_journeys(check_answers(answers))), answers)


def compare(credits: pl.DataFrame, answers: pl.DataFrame) -> Fidelity:
    """Mean absolute errors of per-session ``credits`` (``conv_id``, ``session_id``, phases and ``ihc``;
    a model without phases may give ``ihc`` alone) against the answers, on multi-session journeys."""
    columns = [c for c in (*PHASES, "ihc") if c in credits.columns]
    truth = answers.select(
        conv_id="conversion_id", session_id="session_id", **{f"target_{c}": c for c in columns}
    ).filter(pl.len().over("conv_id") >= 2)
    both = truth.join(credits, on=KEYS, how="left")
    errors = both.select((pl.col(c) - pl.col(f"target_{c}")).abs().mean().alias(c) for c in columns).row(
        0, named=True
    )
    return Fidelity(**{c: errors.get(c, float("nan")) for c in (*PHASES, "ihc")}, sessions=both.height)


def cross_validate(
    answers: pl.DataFrame, *, folds: int = DEFAULT_FOLDS, seed: int = 0, **options: object
) -> Fidelity:
    """The error of ``calibrate`` on journeys it did not see: ``folds`` folds of whole journeys (shuffled
    with ``seed``), each scored by the parameters fitted on the others; ``options`` go to ``calibrate``."""
    checked = check_answers(answers)
    fold = journey_folds(checked, folds, seed)
    scored = []
    for k in range(folds):
        held_out = checked.filter(fold == k)
        params = calibrate(checked.filter(fold != k), **options)
        scored.append(IHC(params).attribute(answer_journeys(held_out)))
    return compare(pl.concat(scored), checked)


def journey_folds(answers: pl.DataFrame, folds: int, seed: int = 0) -> pl.Series:
    """Each answer row's fold, 0 to ``folds - 1``: the journeys are shuffled and dealt out, never split."""
    journeys = answers["conversion_id"].unique().sort()
    order = np.random.default_rng(seed).permutation(journeys.len())
    dealt = dict(
        zip(journeys.gather(order).to_list(), (np.arange(journeys.len()) % folds).tolist(), strict=True)
    )
    return answers["conversion_id"].replace_strict(dealt, return_dtype=pl.Int64)
