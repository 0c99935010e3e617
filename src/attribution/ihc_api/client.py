"""``IHCApiAttributor``: credit from the IHC web service, sent as few whole-journey requests as the caps allow.

Why batches are handed out as they finish (``attribute_batches``): a run can take many requests; the caller
writes each batch's credit at once, so a crash, the quota or a service gone down loses at most the requests
in flight. Why a rejected request is halved until the culprits are alone: one bad journey must not fail
ninety-nine good ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
import polars as pl

from attribution.errors import ConfigError, IncompleteAttributionError, InputError, ServiceUnreachableError
from attribution.ihc_api.answers import PARTIAL_FAILURE, REJECTED, RETRIES_EXHAUSTED, Settled, check_answer
from attribution.ihc_api.config import ClientConfig
from attribution.ihc_api.contract import CREDIT_COLUMNS, CREDIT_SCHEMA, request_body
from attribution.ihc_api.packing import PackingPlan, pack_requests
from attribution.ihc_api.sender import QuotaReached, Rejected, RetriesExhausted, Sender, Unreachable
from attribution.models.base import Attributor

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = (
    "conv_id",
    "session_id",
    "timestamp",
    "channel_name",
    "holder_engagement",
    "closer_engagement",
    "impression_interaction",
    "conversion",
)


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


class IHCApiAttributor(Attributor):
    """Attribution by the IHC web service (or the project's compatible server)."""

    name = "ihc-api"

    def __init__(self, config: ClientConfig) -> None:
        if config.api_key is None:
            raise ConfigError("The ihc-api model needs an API key: set IHC_API_KEY in the environment")
        self.config = config

    def __repr__(self) -> str:
        return (
            f"IHCApiAttributor(base_url={self.config.base_url!r}, conv_type_id={self.config.conv_type_id!r})"
        )

    def with_quota(self, requests: int) -> IHCApiAttributor:
        """The same client allowed ``requests`` more requests (a run's quota spans several calls)."""
        return IHCApiAttributor(self.config.model_copy(update={"max_requests": requests}))

    def attribute(self, journeys: pl.DataFrame) -> pl.DataFrame:
        """All credit at once (``CREDIT_SCHEMA``); raises ``IncompleteAttributionError`` if any journey got none."""
        outcomes: list[BatchOutcome] = []
        report = self.attribute_batches(journeys, outcomes.append)
        if not report.complete:
            raise IncompleteAttributionError(
                f"The IHC API did not credit every journey: {report.summary()}. "
                "attribute_batches keeps the credited ones and lists the failures."
            )
        return pl.concat([pl.DataFrame(schema=CREDIT_SCHEMA), *(o.credits for o in outcomes)])

    def attribute_batches(
        self, journeys: pl.DataFrame, on_batch: Callable[[BatchOutcome], None]
    ) -> ClientReport:
        """Pack, send and check the journeys; call ``on_batch`` for each request as soon as it is settled.

        Raises ``AuthenticationError`` at once if the key is refused, ``ServiceRefusedError`` if the
        conversion type is, ``ServiceUnreachableError`` when the service stops taking connections (the
        batches settled before are handed out). Inside a running event loop, await
        ``attribute_batches_async`` instead.
        """
        return asyncio.run(self.attribute_batches_async(journeys, on_batch))

    async def attribute_batches_async(
        self, journeys: pl.DataFrame, on_batch: Callable[[BatchOutcome], None]
    ) -> ClientReport:
        """The coroutine behind ``attribute_batches``."""
        c = self.config
        plan = pack_requests(_checked(journeys), c.max_journeys, c.max_sessions, c.long_journey_policy)
        tally = _Tally()
        async with _http_client(c) as client:
            sender = Sender(client, c)
            pending = iter(range(len(plan)))

            async def worker() -> None:
                for index in pending:
                    if not sender.has_quota:
                        return
                    outcome = await self._settle(sender, plan, index)
                    tally.add(outcome)
                    on_batch(outcome)

            try:
                await _first_error_stops_all([worker() for _ in range(min(c.concurrency, len(plan)))])
            except Unreachable as exc:
                raise _unreachable(exc, sender.where, plan.journeys - tally.ok, plan.journeys) from None
        return tally.report(plan, sender)

    async def _settle(self, sender: Sender, plan: PackingPlan, index: int) -> BatchOutcome:
        settled = await self._resolve(sender, plan.batch(index), retry_partial=True)
        logger.info(
            "IHC batch %d of %d: %d journeys credited, %d failed, %d unsent",
            index + 1, len(plan), settled.credits["conv_id"].n_unique(), settled.failures.height,
            len(settled.unsent),
        )  # fmt: skip
        credits = _with_cut_sessions(settled.credits, plan.dropped)
        return BatchOutcome(index, credits, settled.failures, settled.unsent)

    async def _resolve(self, sender: Sender, rows: pl.DataFrame, retry_partial: bool) -> Settled:
        """Send ``rows`` (whole journeys) and settle every journey in it."""
        try:
            answer, attempts = await sender.compute(request_body(rows, self.config.redistribution))
        except Rejected as exc:
            return await self._isolate(sender, rows, exc, retry_partial)
        except RetriesExhausted as exc:
            return Settled.failed(rows, RETRIES_EXHAUSTED, exc.attempts, exc.last_error)
        except QuotaReached:
            return Settled.not_sent(rows)
        settled = check_answer(rows, answer, attempts)
        again = settled.failed_with(PARTIAL_FAILURE)
        if not (retry_partial and again):
            return settled
        # The service named these journeys as failed: one more try on their own, then they stay failed.
        retried = await self._resolve(
            sender, rows.filter(pl.col("conv_id").is_in(again)), retry_partial=False
        )
        return settled.without_failures(again).merge(retried)

    async def _isolate(
        self, sender: Sender, rows: pl.DataFrame, exc: Rejected, retry_partial: bool
    ) -> Settled:
        """Halve a rejected request until each rejected journey is alone; the others are credited."""
        ids = rows["conv_id"].unique(maintain_order=True)
        if len(ids) == 1:
            return Settled.failed(rows, REJECTED, exc.attempts, exc.reason)
        first = pl.col("conv_id").is_in(ids[: len(ids) // 2].implode())
        settled = await self._resolve(sender, rows.filter(first), retry_partial)
        return settled.merge(await self._resolve(sender, rows.filter(~first), retry_partial))


class _Tally:
    """Running totals of the settled batches."""

    def __init__(self) -> None:
        self.ok = self.failed = self.done = 0
        self.reasons: Counter[str] = Counter()

    def add(self, outcome: BatchOutcome) -> None:
        self.ok += outcome.credits["conv_id"].n_unique()
        self.failed += outcome.failures.height
        self.reasons.update(outcome.failures["reason"].to_list())
        self.done += not outcome.unsent

    def report(self, plan: PackingPlan, sender: Sender) -> ClientReport:
        return ClientReport(
            batches_planned=len(plan),
            batches_done=self.done,
            requests=sender.requests,
            retries=sender.retries,
            journeys_ok=self.ok,
            journeys_failed=self.failed,
            journeys_truncated=len(plan.truncated_ids),
            journeys_skipped=len(plan.skipped_ids),
            journeys_unsent=plan.journeys - self.ok - self.failed,
            stopped_at_quota=plan.journeys > self.ok + self.failed,  # only the quota leaves journeys unsent
            failure_reasons=dict(self.reasons),
        )


def _checked(journeys: pl.DataFrame) -> pl.DataFrame:
    missing = [column for column in REQUIRED_COLUMNS if column not in journeys.columns]
    if missing:
        raise InputError(
            f"The journeys frame lacks column(s) {', '.join(missing)}; build it with attribution.build_journeys."
        )
    return journeys.with_columns(pl.col("conv_id", "session_id").cast(pl.String))


def _with_cut_sessions(credits: pl.DataFrame, dropped: pl.DataFrame) -> pl.DataFrame:
    """Add zero-credit rows for the sessions truncation kept from the service, so each journey is whole."""
    cut = dropped.join(credits.select("conv_id").unique(), on="conv_id", how="semi")
    if cut.is_empty():
        return credits
    zeros = cut.with_columns(pl.lit(0.0).alias(column) for column in CREDIT_COLUMNS)
    return pl.concat([credits, zeros.select(list(CREDIT_SCHEMA))])


def _unreachable(exc: Unreachable, where: str, left: int, journeys: int) -> ServiceUnreachableError:
    return ServiceUnreachableError(
        f"The IHC API at {where} is unreachable ({exc.failures} connection failures in a row, the last: "
        f"{exc.last_error}); {left} of {journeys} journeys are left without credit, the answered ones are "
        "stored: run again once it is back, only the rest is sent."
    )


def _http_client(config: ClientConfig) -> httpx.AsyncClient:
    slots = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency)
    return httpx.AsyncClient(
        base_url=config.base_url,
        timeout=config.timeout,
        transport=config.transport,
        limits=slots,
        trust_env=not config.loopback,  # a proxy must not see a local server's key and journeys
    )


async def _first_error_stops_all(coroutines: list[Coroutine[Any, Any, None]]) -> None:
    """Run the coroutines together; the first exception cancels the others and is raised."""
    tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
    try:
        for finished in asyncio.as_completed(tasks):
            await finished
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
