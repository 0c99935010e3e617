"""Real IHC servers for the tests: ``python -m attribution.ihc_api`` processes on free ports.

The default server runs once per session; each fault scenario gets its own server, all launched together
on first use because a server process needs a couple of seconds to import its libraries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import polars as pl
import pytest

from attribution.ihc_api import ClientConfig
from attribution.ihc_api.local import LocalServer
from attribution.journeys import JOURNEY_SCHEMA

API_KEY = "test-key-5f3a9c"

FAULT_SCENARIOS: dict[str, list[str]] = {
    "errors": ["--error-rate", "0.5", "--seed", "1"],
    "throttled": ["--throttle-rate", "0.5", "--retry-after", "0.3", "--seed", "2"],
    "dropping": ["--drop-rate", "0.4", "--seed", "3"],
    "slow": ["--latency-ms", "400"],
    "malformed": ["--malformed-rate", "0.5", "--seed", "4"],
    "slow_body": ["--slow-body-ms", "200"],
    "combined": [
        *("--error-rate", "0.2", "--throttle-rate", "0.1", "--drop-rate", "0.05"),
        *("--retry-after", "0.05", "--seed", "5"),
    ],
    "small_caps": ["--max-journeys", "3", "--max-sessions", "8"],
}


@pytest.fixture(scope="session")
def ihc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """The project's IHC server without faults."""
    server = LocalServer.launch(tmp_path_factory.mktemp("ihc") / "server.log", api_key=API_KEY).wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fault_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalServer]]:
    """One server per fault scenario, by name."""
    folder = tmp_path_factory.mktemp("faults")
    servers = {
        name: LocalServer.launch(folder / f"{name}.log", *flags, api_key=API_KEY)
        for name, flags in FAULT_SCENARIOS.items()
    }
    try:
        yield {name: server.wait_ready() for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


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
