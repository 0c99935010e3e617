"""Least squares for shares: fit the coefficients of a phase's raw value so its per-journey shares match targets.

Why a dedicated solver: a phase's raw value is linear in its curve's values (``terms @ values``) times a
weight per channel, and a share is that raw value over its journey's total; so the Jacobian is exact and
cheap (one segment sum per column), and a damped Gauss-Newton (Levenberg-Marquardt) converges in a few
dozen steps on tens of thousands of sessions, with numpy alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_STEPS = 200
TOLERANCE = 1e-10
"""Stop when a step lowers the sum of squares by less than this share of it, or moves no parameter."""


@dataclass(frozen=True)
class ShareProblem:
    """One phase's fit, rows in journey order.

    ``terms``: (sessions by coefficients) raw value per unit coefficient; ``fitted``: which coefficients move
    (the others keep their start, e.g. the one that fixes the scale); ``journey``: journey number per row,
    non-decreasing; ``channels``: (sessions by weighted channels) 0/1, the channels given their own weight;
    ``target``: the shares to match; ``scored``: the rows whose error counts; ``start``: the coefficients
    the fit starts from.
    """

    terms: np.ndarray
    start: np.ndarray
    fitted: np.ndarray
    journey: np.ndarray
    channels: np.ndarray
    target: np.ndarray
    scored: np.ndarray

    def shares(
        self, coefficients: np.ndarray, log_weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw values, journey totals per row, and shares (0 in a journey without mass)."""
        raw = (self.terms @ coefficients) * np.exp(self.channels @ log_weights)
        total = _journey_sums(raw, self.journey)
        return raw, total, np.divide(raw, total, out=np.zeros_like(raw), where=total > 0)

    def residuals(self, packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scored residuals and their Jacobian in the packed parameters (fitted coefficients, log weights)."""
        coefficients, log_weights = self.unpack(packed)
        raw, total, share = self.shares(coefficients, log_weights)
        weight = np.exp(self.channels @ log_weights)
        derivatives = np.column_stack(
            [self.terms[:, self.fitted] * weight[:, None], raw[:, None] * self.channels]
        )
        safe = np.where(total > 0, total, 1.0)[:, None]
        jacobian = (derivatives - share[:, None] * _journey_sums(derivatives, self.journey)) / safe
        return (share - self.target)[self.scored], jacobian[self.scored]

    def unpack(self, packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        coefficients = self.start.copy()
        coefficients[self.fitted] = packed[: self.fitted.sum()]
        return coefficients, packed[self.fitted.sum() :]


def _journey_sums(values: np.ndarray, journey: np.ndarray) -> np.ndarray:
    """Each row's journey total (per column for 2-D values); rows in journey order."""
    starts = np.flatnonzero(np.r_[True, journey[1:] != journey[:-1]])
    sums = np.add.reduceat(values, starts, axis=0) if values.size else values
    return np.repeat(sums, np.diff(np.r_[starts, journey.size]), axis=0)


def fit_shares(problem: ShareProblem) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (non-negative) and channel weights minimising the squared share errors of ``problem``.

    Starts from ``problem.start`` and weights 1; parameters no scored row depends on keep their start.
    """
    packed = np.r_[problem.start[problem.fitted], np.zeros(problem.channels.shape[1])]
    free = problem.fitted.sum()
    residual, jacobian = problem.residuals(packed)
    cost, damping = residual @ residual, 1e-3
    for _ in range(MAX_STEPS):
        normal = jacobian.T @ jacobian
        scale = np.diag(normal) + 1e-12
        step = np.linalg.solve(normal + damping * np.diag(scale), -jacobian.T @ residual)
        trial = packed + step
        trial[:free] = np.maximum(trial[:free], 0.0)
        new_residual, new_jacobian = problem.residuals(trial)
        new_cost = new_residual @ new_residual
        if new_cost < cost:
            converged = cost - new_cost <= TOLERANCE * cost or np.allclose(trial, packed, rtol=0, atol=1e-12)
            packed, residual, jacobian, cost, damping = (
                trial,
                new_residual,
                new_jacobian,
                new_cost,
                damping / 3,
            )
            if converged:
                break
        else:
            damping *= 4
            if damping > 1e12:
                break
    coefficients, log_weights = problem.unpack(packed)
    return coefficients, np.exp(log_weights)
