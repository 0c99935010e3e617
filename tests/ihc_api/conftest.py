"""Helpers of the IHC API tests: client configurations for the servers (``tests/conftest.py``) and
journey frames."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import polars as pl
import pytest

from attribution.ihc_api import ClientConfig
from attribution.ihc_api.contract import API_KEY_HEADER
from attribution.ihc_api.local import LocalServer
from attribution.ihc_api.server import STATS_PATH
from attribution.vocabulary import JOURNEY_SCHEMA
from tests.servers import API_KEY


@pytest.fixture
def config_for() -> Callable[..., ClientConfig]:
    """A client config for a server, with test-sized backoff; keyword arguments override any field."""

    def make(server: LocalServer, **overrides: object) -> ClientConfig:
        fields: dict[str, object] = {
            "base_url": server.url,
            "api_key": API_KEY,
            "conv_type_id": "default",
            "backoff_base": 0.01,
            "backoff_max": 0.5,
            "timeout": 5.0,
            **overrides,
        }
        return ClientConfig.model_validate(fields)

    return make


def journeys_frame(
    lengths: list[int], channels: tuple[str, ...] = ("Referral", "Direct Traffic")
) -> pl.DataFrame:
    """Journeys ``c0``, ``c1``, ... with the given session counts, 37 minutes apart, the last session converting."""
    start = datetime(2023, 9, 1)
    rows = [
        {
            "conv_id": f"c{c}",
            "conv_ts": "2023-09-30 00:00:00",
            "revenue": 10.0,
            "session_id": f"c{c}s{i:04d}",
            "timestamp": (start + timedelta(hours=c % 24, minutes=37 * i)).strftime("%Y-%m-%d %H:%M:%S"),
            "channel_name": channels[(c + i) % len(channels)],
            "holder_engagement": (c + i) % 2,
            "closer_engagement": int(i % 3 == 0),
            "impression_interaction": 0,
            "conversion": int(i == length - 1),
        }
        for c, length in enumerate(lengths)
        for i in range(length)
    ]
    return pl.DataFrame(rows, schema={**JOURNEY_SCHEMA, "conversion": pl.Int8})


def with_conversion_time(journeys: pl.DataFrame) -> pl.DataFrame:
    """The frame with ``conv_ts`` set to each journey's converting session, as the server measures it."""
    return journeys.with_columns(
        conv_ts=pl.col("timestamp").filter(pl.col("conversion") == 1).first().over("conv_id")
    )


def server_stats(server: LocalServer) -> dict[str, int]:
    """The server's request counts (``/_stats`` needs a key like every other path)."""
    return httpx.get(server.url + STATS_PATH, headers={API_KEY_HEADER: API_KEY}).json()
