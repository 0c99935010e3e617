"""``IHCApiAttributor``: credit from the IHC web service, sent as few whole-journey requests as the caps allow.

Why batches are handed out as they finish (``attribute_batches``): a run can take many requests; the caller
writes each batch's credit at once, so a crash, the quota or a service gone down loses at most the requests
in flight. The conversation itself (packing, HTTP, settling each answer) is ``exchange``'s, imported when a
run sends: a run of another model, which builds the same pipeline, does not load the HTTP stack.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import polars as pl

from attribution.errors import ConfigError, IncompleteAttributionError
from attribution.ihc_api.config import ClientConfig
from attribution.ihc_api.outcomes import BatchOutcome, ClientReport
from attribution.models.base import Attributor
from attribution.vocabulary import IHC_CREDIT_SCHEMA


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
        """All credit at once (``IHC_CREDIT_SCHEMA``); raises ``IncompleteAttributionError`` if any journey got none."""
        outcomes: list[BatchOutcome] = []
        report = self.attribute_batches(journeys, outcomes.append)
        if not report.complete:
            raise IncompleteAttributionError(
                f"The IHC API did not credit every journey: {report.summary()}. "
                "attribute_batches keeps the credited ones and lists the failures."
            )
        return pl.concat([pl.DataFrame(schema=IHC_CREDIT_SCHEMA), *(o.credits for o in outcomes)])

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
        from attribution.ihc_api.exchange import send

        return await send(self.config, journeys, on_batch)
