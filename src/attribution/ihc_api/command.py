"""``attribution serve-ihc``: run the project's IHC-compatible server, optionally with injected faults.

Prints ``listening on http://HOST:PORT`` once it accepts connections (``--port 0`` picks a free port).
The accepted API keys are read from ``IHC_API_KEY`` (comma-separated); there is deliberately no flag for them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from attribution.errors import ConfigError
from attribution.ihc_api.contract import DEFAULT_MAX_JOURNEYS, DEFAULT_MAX_SESSIONS
from attribution.ihc_api.faults import FaultConfig
from attribution.ihc_api.server import ServerLimits, serve
from attribution.models.ihc import IHCParameters


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attribution serve-ihc", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    _add_fault_flags(parser)
    parser.add_argument("--db", help="database whose trained IHC conversion types are served (train-ihc)")
    parser.add_argument("--max-journeys", type=int, default=DEFAULT_MAX_JOURNEYS)
    parser.add_argument("--max-sessions", type=int, default=DEFAULT_MAX_SESSIONS)
    _add_limit_flags(parser)
    return parser


def _add_fault_flags(parser: argparse.ArgumentParser) -> None:
    """The faults injected into the answers (``FaultConfig``), each off by default."""
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every compute request")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 503")
    parser.add_argument(
        "--throttle-rate", type=float, default=0.0, help="share answered 429 with Retry-After"
    )
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds sent in Retry-After")
    parser.add_argument(
        "--drop-rate", type=float, default=0.0, help="share whose connection is closed unanswered"
    )
    parser.add_argument(
        "--malformed-rate", type=float, default=0.0, help="share answered with truncated JSON"
    )
    parser.add_argument(
        "--slow-body-ms", type=float, default=0.0, help="spread every answer body over this time"
    )
    parser.add_argument(
        "--trickle-ms", type=float, default=0.0, help="send every answer body one byte this often"
    )
    parser.add_argument(
        "--pad-body-bytes", type=int, default=0, help="add this many spaces to every answer body"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault draws")


def _add_limit_flags(parser: argparse.ArgumentParser) -> None:
    """The server's connection limits (``ServerLimits``), their defaults its own."""
    limits = ServerLimits()
    parser.add_argument(
        "--max-header-bytes", type=int, default=limits.max_header_bytes, help="request line and headers"
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=limits.header_seconds,
        help="seconds for a request head to arrive",
    )
    parser.add_argument(
        "--keep-alive", type=int, default=limits.keep_alive_seconds, help="idle seconds between requests"
    )
    parser.add_argument(
        "--max-connections", type=int, default=limits.max_connections, help="at once; past it: 503"
    )
    parser.add_argument(
        "--backlog", type=int, default=limits.backlog, help="connections queued before they are accepted"
    )


TypeLoader = Callable[[str], dict[str, IHCParameters]]
"""Reads the conversion types trained in a database (``--db``); handed in by the CLI, which owns storage."""


def main(argv: list[str], load_types: TypeLoader) -> int:
    """Parse the flags and serve until interrupted; 2 on a bad flag, a missing key or a taken port."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        faults = FaultConfig(
            latency_ms=args.latency_ms,
            error_rate=args.error_rate,
            throttle_rate=args.throttle_rate,
            drop_rate=args.drop_rate,
            malformed_rate=args.malformed_rate,
            slow_body_ms=args.slow_body_ms,
            retry_after_s=args.retry_after,
            trickle_ms=args.trickle_ms,
            pad_body_bytes=args.pad_body_bytes,
            seed=args.seed,
        )
        serve(
            args.host,
            args.port,
            faults=faults,
            conversion_types=load_types(args.db) if args.db else {},
            max_journeys=args.max_journeys,
            max_sessions=args.max_sessions,
            limits=ServerLimits(
                args.max_header_bytes,
                args.header_timeout,
                args.keep_alive,
                args.max_connections,
                args.backlog,
            ),
        )
    except (ConfigError, ValueError, OSError) as exc:  # bad flags, no key, port taken
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
