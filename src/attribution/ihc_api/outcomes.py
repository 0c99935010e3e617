"""What sending journeys to the IHC API hands back: each settled request (``BatchOutcome``) and the totals of
a run of requests (``ClientReport``).

Why a module of their own: the pipeline names them wherever it handles the API's credit, and importing them
must not import the HTTP stack that only a run sending requests needs (``exchange``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl


@dataclass(frozen=True)
class BatchOutcome:
    """One packed request, settled: ``credits`` of its fully valid journeys (sessions cut by truncation get 0),
    ``failures`` (conv_id, reason, attempts, last_error) and the conv_ids ``unsent`` because of the quota."""

    index: int
    credits: pl.DataFrame
    failures: pl.DataFrame
    unsent: list[str]


@dataclass(frozen=True)
class ClientReport:
    """What a run did; ``journeys_unsent`` > 0 only when it stopped at the request quota."""

    batches_planned: int
    batches_done: int
    requests: int
    retries: int
    journeys_ok: int
    journeys_failed: int
    journeys_truncated: int
    journeys_skipped: int
    journeys_unsent: int
    stopped_at_quota: bool
    failure_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not (self.journeys_failed or self.journeys_skipped or self.journeys_unsent)

    def summary(self) -> str:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.failure_reasons.items()))
        return (
            f"{self.journeys_ok} journeys credited, {self.journeys_failed} failed ({reasons or 'none'}), "
            f"{self.journeys_skipped} skipped as too long, {self.journeys_unsent} unsent"
            f"{' (request quota reached)' if self.stopped_at_quota else ''}; "
            f"{self.requests} requests, {self.retries} retries"
        )
