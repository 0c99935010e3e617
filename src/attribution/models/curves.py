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

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

NonNegativeFloat = Annotated[float, Field(ge=0)]
BLOCK = 1 << 16
"""Rows per block of ``Surface.at``: its temporaries (half a MiB each) stay in the cache."""


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
        """The curve at ``x`` (``-inf`` gives the first value, ``NaN`` stays ``NaN``).

        Why numpy's ``interp`` over a batch: one pass over the column, where a sum of one clipped segment
        per knot costs a pass per knot (five times slower on a million journeys at fifteen knots).
        """
        knots, values = np.array(self.knots), np.array(self.values)
        return x.cast(pl.Float64).map_batches(
            lambda batch: pl.Series(np.interp(batch.to_numpy(), knots, values)),
            return_dtype=pl.Float64,
            is_elementwise=True,
        )

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
        """The surface at the shares, bilinear within the cell around them (one numpy pass, as ``Curve.expr``)."""
        return pl.struct(
            initializer.cast(pl.Float64).alias("i"), closer.cast(pl.Float64).alias("c")
        ).map_batches(
            lambda batch: pl.Series(
                self.at(batch.struct.field("i").to_numpy(), batch.struct.field("c").to_numpy())
            ),
            return_dtype=pl.Float64,
            is_elementwise=True,
        )

    def at(self, initializer: np.ndarray, closer: np.ndarray) -> np.ndarray:
        """The surface at arrays of shares: each axis clamped to its knots, then bilinear in the cell.

        Why blocks: a block's dozen temporaries fit the cache and are reused by the allocator; over whole
        columns each is fresh memory to page in, which took most of the time on a loaded machine.
        """
        result = np.empty(len(initializer))
        for start in range(0, len(initializer), BLOCK):
            block = slice(start, start + BLOCK)
            result[block] = self._bilinear(initializer[block], closer[block])
        return result

    def _bilinear(self, initializer: np.ndarray, closer: np.ndarray) -> np.ndarray:
        """``at`` on one block; ``take`` on the raveled grid is several times faster than 2-D indexing."""
        (a, u), (b, v) = _cell(self.initializer_knots, initializer), _cell(self.closer_knots, closer)
        grid, columns = np.array(self.values).ravel(), len(self.closer_knots)
        corner = a * columns + b
        low = grid.take(corner) * (1 - v) + grid.take(corner + 1) * v
        high = grid.take(corner + columns) * (1 - v) + grid.take(corner + columns + 1) * v
        return low * (1 - u) + high * u

    def basis(self, initializer: pl.Expr, closer: pl.Expr) -> list[pl.Expr]:
        """Unit surfaces in row-major order of ``values`` (see ``Curve.basis``)."""
        rows, columns = len(self.initializer_knots), len(self.closer_knots)
        units = np.eye(rows * columns).reshape(-1, rows, columns)
        return [
            self.model_copy(update={"values": tuple(map(tuple, u.tolist()))}).expr(initializer, closer)
            for u in units
        ]


def _cell(knots: tuple[float, ...], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each ``x``'s segment of ``knots`` and its position in it (0 to 1; clamped outside the knots)."""
    edges = np.array(knots)
    index = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    position = (x - edges[index]) / (edges[index + 1] - edges[index])
    return index, np.clip(position, 0.0, 1.0)


def unit(knots: tuple[float, ...], k: int) -> Curve:
    """The curve that is 1 at ``knots[k]`` and 0 at the other knots."""
    return Curve(knots=knots, values=tuple(float(i == k) for i in range(len(knots))))
