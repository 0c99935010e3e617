"""Judge an IHC answer journey by journey, so a journey is stored whole and valid or not at all.

Why per journey: one bad journey (a session missing, a phase not summing to 1) must not cost the other
ninety-nine of its request, and a journey half-stored would break the report's totals. Why ``ihc`` is
renormalised after the check: the service rounds to 4 decimals, the pipeline demands sums within 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce

import polars as pl

from attribution.ihc_api.contract import ComputeResponse, credit_frame, partial_failures
from attribution.vocabulary import ANSWER_SUM_TOLERANCE, CREDIT_VALUES, IHC_CREDIT_SCHEMA, PHASES

RETRIES_EXHAUSTED = "retries_exhausted"
REJECTED = "rejected"
PARTIAL_FAILURE = "partial_failure"
INVALID_ANSWER = "invalid_answer"

FAILURE_SCHEMA: dict[str, pl.DataType] = {
    "conv_id": pl.String(),
    "reason": pl.String(),
    "attempts": pl.Int64(),
    "last_error": pl.String(),
}
_KEYS = ["conv_id", "session_id"]


@dataclass(frozen=True)
class Settled:
    """Where a set of journeys ended: credited (``IHC_CREDIT_SCHEMA``), failed (``FAILURE_SCHEMA``) or never sent."""

    credits: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=IHC_CREDIT_SCHEMA))
    failures: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=FAILURE_SCHEMA))
    unsent: list[str] = field(default_factory=list)

    @classmethod
    def failed(cls, rows: pl.DataFrame, reason: str, attempts: int, last_error: str) -> Settled:
        ids = rows["conv_id"].unique(maintain_order=True)
        failures = pl.DataFrame({"conv_id": ids}).with_columns(
            reason=pl.lit(reason), attempts=pl.lit(attempts, pl.Int64), last_error=pl.lit(last_error)
        )
        return cls(failures=failures)

    @classmethod
    def not_sent(cls, rows: pl.DataFrame) -> Settled:
        return cls(unsent=rows["conv_id"].unique(maintain_order=True).to_list())

    def merge(self, other: Settled) -> Settled:
        return Settled(
            pl.concat([self.credits, other.credits]),
            pl.concat([self.failures, other.failures]),
            self.unsent + other.unsent,
        )

    def failed_with(self, reason: str) -> list[str]:
        return self.failures.filter(pl.col("reason") == reason)["conv_id"].to_list()

    def without_failures(self, conv_ids: list[str]) -> Settled:
        return Settled(self.credits, self.failures.filter(~pl.col("conv_id").is_in(conv_ids)), self.unsent)


def check_answer(sent: pl.DataFrame, answer: ComputeResponse, attempts: int) -> Settled:
    """Split the journeys of ``sent`` into credited and failed according to ``answer``.

    Journeys named in ``partialFailureErrors`` (or absent from a 206 answer) fail as ``partial_failure``;
    any other flaw fails the journey as ``invalid_answer``.
    """
    credits = credit_frame(answer)
    named, loose = partial_failures(answer)
    verdicts = _problems(sent.select(_KEYS), credits)
    listed = pl.col("conv_id").is_in(list(named))
    by_service = listed | (pl.lit(answer.statusCode == 206) & pl.col("rows").is_null())
    unexplained = "; ".join(loose) or "journey missing from a partial answer"
    verdicts = verdicts.with_columns(
        reason=pl.when(by_service).then(pl.lit(PARTIAL_FAILURE)).when(pl.col("problem").is_not_null())
        .then(pl.lit(INVALID_ANSWER)),
        last_error=pl.when(listed).then(pl.col("conv_id").replace_strict(named, default=None))
        .when(by_service).then(pl.lit(unexplained)).otherwise(pl.col("problem")),
    )  # fmt: skip
    failures = verdicts.filter(pl.col("reason").is_not_null()).select(
        "conv_id", "reason", pl.lit(attempts, pl.Int64).alias("attempts"), "last_error"
    )
    good = verdicts.filter(pl.col("reason").is_null()).select("conv_id")
    credited = (
        credits.join(good, on="conv_id", how="semi")
        .join(sent.select(_KEYS), on=_KEYS, how="semi")
        .with_columns(ihc=pl.col("ihc") / pl.col("ihc").sum().over("conv_id"))
    )
    return Settled(credits=credited, failures=failures)


def _problems(keys: pl.DataFrame, credits: pl.DataFrame) -> pl.DataFrame:
    """Per sent journey: how many rows came back (null = none) and its first flaw (null = none)."""
    expected = keys.group_by("conv_id", maintain_order=True).agg(expected=pl.len())
    matched = (
        keys.join(credits.select(_KEYS).unique(), on=_KEYS, how="semi")
        .group_by("conv_id")
        .agg(matched=pl.len())
    )
    outside = pl.any_horizontal(
        ~pl.col(c).is_between(0, 1 + ANSWER_SUM_TOLERANCE).fill_null(False) for c in CREDIT_VALUES
    )
    totals = credits.group_by("conv_id").agg(
        rows=pl.len(),
        bad_value=outside.any(),
        **{column: pl.col(column).sum() for column in CREDIT_VALUES},
    )
    table = expected.join(matched, on="conv_id", how="left").join(totals, on="conv_id", how="left")
    return table.select("conv_id", "rows", problem=_first_problem())


def _first_problem() -> pl.Expr:
    def off(column: str, target: float = 1.0) -> pl.Expr:
        return (pl.col(column) - target).abs() > ANSWER_SUM_TOLERANCE

    def wrong_total(column: str) -> pl.Expr:
        return off(column) & off(column, 0.0) if column == "holder" else off(column)

    def sums_to(column: str) -> pl.Expr:
        return pl.format(f"{column} sums to {{}}", pl.col(column).round(6))

    checks = [
        (pl.col("rows").is_null(), pl.lit("journey missing from the answer")),
        (
            pl.col("matched").fill_null(0) < pl.col("expected"),
            pl.format(
                "{} of {} sessions missing from the answer",
                pl.col("expected") - pl.col("matched").fill_null(0),
                pl.col("expected"),
            ),
        ),
        (pl.col("rows") > pl.col("expected"), pl.lit("extra or duplicated session rows in the answer")),
        (pl.col("bad_value"), pl.lit("a value outside [0, 1] in the answer")),
        *((wrong_total(column), sums_to(column)) for column in (*PHASES, "ihc")),
    ]
    first, *rest = checks
    chain = pl.when(first[0]).then(first[1])
    return reduce(lambda expr, check: expr.when(check[0]).then(check[1]), rest, chain)
