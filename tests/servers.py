"""The project's IHC server as the tests run it: the accepted key and the fault scenarios."""

from __future__ import annotations

import socket

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
    "stalling": ["--throttle-rate", "1", "--retry-after", "86400"],
    "stalling_forever": ["--throttle-rate", "1", "--retry-after", "inf"],
}


def nowhere() -> str:
    """The URL of a local port nothing listens on (taken from the system, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"
