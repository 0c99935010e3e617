"""Piecewise-linear curves and surfaces: the shapes of the local IHC engine's membership functions.

Why piecewise-linear: the service's phases follow curves with finer structure than one smooth law (the
closer falls roughly linearly in log-time, with kinks), and a curve given by its values at a handful of
knots can follow them while staying a few named numbers. Its value is linear in those numbers, so a
calibration fits them by linear algebra on the unit curves (``basis``), the very expressions the engine
evaluates, and cannot drift from it.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Annotated, Self

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

NonNegativeFloat = Annotated[float, Field(ge=0)]


def _increasing(knots: tuple[float, ...], what: str) -> None:
    if len(knots) < 2 or any(b <= a for a, b in pairwise(knots)):
        raise ValueError(f"{what} must be at least two strictly increasing numbers, got {knots}")


class Curve(BaseModel):
    """``values`` at ``knots``, linear in between and flat beyond both ends."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    knots: tuple[float, ...]
    values: tuple[NonNegativeFloat, ...]

    @model_validator(mode="after")
    def _check(self) -> Self:
        _increasing(self.knots, "Curve knots")
        if len(self.values) != len(self.knots):
            raise ValueError(
                f"A curve needs one value per knot: {len(self.knots)} knots, {len(self.values)} values"
            )
        return self

    def expr(self, x: pl.Expr) -> pl.Expr:
        """The curve at ``x``: the first value plus each segment's slope times the part of it ``x`` covers.

        Why this form: one clip per knot, element-wise, with no search for the segment; ``x = -inf``
        (a zero time in log-hours) gives the first value.
        """
        value = pl.lit(self.values[0])
        for (x0, x1), (v0, v1) in zip(pairwise(self.knots), pairwise(self.values), strict=True):
            if v1 != v0:
                value = value + (v1 - v0) / (x1 - x0) * (x - x0).clip(0.0, x1 - x0)
        return value

    def basis(self, x: pl.Expr) -> list[pl.Expr]:
        """The unit curves (1 at one knot, 0 at the others): the curve is their sum weighted by ``values``."""
        return [unit(self.knots, k).expr(x) for k in range(len(self.knots))]


class TimeCurve(Curve):
    """A curve of a time in hours, linear in log-hours between ``knots`` (hours, all positive)."""

    @model_validator(mode="after")
    def _positive(self) -> Self:
        if self.knots[0] <= 0:
            raise ValueError(f"Time curve knots are hours above 0, got {self.knots}")
        return self

    def of_hours(self, hours: pl.Expr) -> pl.Expr:
        """The curve at ``hours`` (0 gives the first value)."""
        return self.in_log_hours().expr(hours.log())

    def basis_of_hours(self, hours: pl.Expr) -> list[pl.Expr]:
        """The unit curves at ``hours`` (see ``Curve.basis``)."""
        return self.in_log_hours().basis(hours.log())

    def in_log_hours(self) -> Curve:
        """The same curve with its knots in log-hours, the variable it is linear in (0 hours is ``-inf``,
        which every curve maps to its first value)."""
        return Curve(knots=tuple(math.log(k) for k in self.knots), values=self.values)


class Surface(BaseModel):
    """A function of a session's initializer and closer shares: ``values[a][b]`` at ``(initializer_knots[a],
    closer_knots[b])``, bilinear in between and flat beyond the edges."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    initializer_knots: tuple[float, ...]
    closer_knots: tuple[float, ...]
    values: tuple[tuple[NonNegativeFloat, ...], ...]

    @model_validator(mode="after")
    def _check(self) -> Self:
        _increasing(self.initializer_knots, "Surface initializer knots")
        _increasing(self.closer_knots, "Surface closer knots")
        shape = (len(self.initializer_knots), len(self.closer_knots))
        if len(self.values) != shape[0] or any(len(row) != shape[1] for row in self.values):
            raise ValueError(f"A surface needs {shape[0]} rows of {shape[1]} values")
        return self

    def expr(self, initializer: pl.Expr, closer: pl.Expr) -> pl.Expr:
        """The surface at the shares: each row's curve in ``closer``, interpolated between rows in ``initializer``."""
        rows = [Curve(knots=self.closer_knots, values=row).expr(closer) for row in self.values]
        weights = [unit(self.initializer_knots, a).expr(initializer) for a in range(len(rows))]
        return pl.sum_horizontal(w * row for w, row in zip(weights, rows, strict=True))

    def basis(self, initializer: pl.Expr, closer: pl.Expr) -> list[pl.Expr]:
        """Unit surfaces in row-major order of ``values`` (see ``Curve.basis``)."""
        rows = [unit(self.initializer_knots, a).expr(initializer) for a in range(len(self.initializer_knots))]
        columns = [unit(self.closer_knots, b).expr(closer) for b in range(len(self.closer_knots))]
        return [row * column for row in rows for column in columns]


def unit(knots: tuple[float, ...], k: int) -> Curve:
    """The curve that is 1 at ``knots[k]`` and 0 at the other knots."""
    return Curve(knots=knots, values=tuple(float(i == k) for i in range(len(knots))))
