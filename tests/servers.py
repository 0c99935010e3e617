"""The project's IHC server as the tests run it: the accepted key and the fault scenarios."""

from __future__ import annotations

import socket
import threading

API_KEY = "test-key-5f3a9c"

FAULT_SCENARIOS: dict[str, list[str]] = {
    "errors": ["--error-rate", "0.5", "--seed", "1"],
    "throttled": ["--throttle-rate", "0.5", "--retry-after", "0.3", "--seed", "2"],
    "dropping": ["--drop-rate", "0.4", "--seed", "3"],
    "slow": ["--latency-ms", "400"],
    "malformed": ["--malformed-rate", "0.5", "--seed", "4"],
    "slow_body": ["--slow-body-ms", "200"],
    "trickle": ["--trickle-ms", "50"],
    "oversized": ["--pad-body-bytes", str(17 << 20)],
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


class ConnectionCounter:
    """A TCP listener on a free local port that counts the connections it gets and closes each at once:
    a stand-in proxy that tells whether anything was sent through it."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._socket.settimeout(0.1)
        self.connections = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._done.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def __enter__(self) -> ConnectionCounter:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        self._socket.close()
