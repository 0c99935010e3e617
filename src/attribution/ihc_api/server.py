"""The project's IHC-compatible server: the vendor's compute endpoint over the local IHC engine.

Why: the real service is unreachable from the project's machines, so the client, its tests and the
benchmarks talk real HTTP to this server instead; it follows ``contract.py`` and can inject faults.
API keys come from the environment only (``IHC_API_KEY``, comma-separated), never from flags or code,
and are never logged.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, ClassVar

import h11
import polars as pl
import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from attribution.errors import ConfigError
from attribution.ihc_api.contract import (
    API_KEY_ENV,
    API_KEY_HEADER,
    COMPUTE_PATH,
    DEFAULT_CONV_TYPE,
    DEFAULT_MAX_JOURNEYS,
    DEFAULT_MAX_SESSIONS,
    BodyTooLarge,
    ComputeRequest,
    max_body_bytes,
    read_capped,
    request_frame,
    response_body,
)
from attribution.ihc_api.faults import ASGIApp, FaultConfig, FaultInjector, Message, QuietDrops, Send
from attribution.ihc_api.scoring import score
from attribution.models.ihc import IHCParameters
from attribution.redaction import one_line

STATS_PATH = "/_stats"
logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answer: HTTP status and a message for the body (never containing a key)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class ServerStats:
    """Compute requests seen, the journeys of those answered, and how many were in flight at once (for tests
    of client concurrency, and of runs that must not send a journey twice)."""

    requests: int = 0
    journeys: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


@dataclass(frozen=True)
class ServerLimits:
    """What a client, with a key or without, may take of the server: the one place for these limits.

    Why: without them a client with no key exhausts the server: a 50 MB header line stays in memory, a
    connection that never ends its request head stays open for ever, thousands of idle connections take
    every slot.
    """

    max_header_bytes: int = 16 * 1024
    """A request's line and headers; past it: 400 and the connection closed (h11's incomplete-event cap)."""
    header_seconds: float = 10.0
    """For a request's head to arrive whole, from the connection or the previous answer; then it is closed."""
    keep_alive_seconds: int = 5
    """An idle connection between two requests."""
    max_connections: int = 512
    """Connections or requests at once, past which a request gets 503 (uvicorn's ``limit_concurrency``); at
    most half of them may wait for a request head: a new one past that closes the one that waited longest."""
    backlog: int = 4096
    """Connections the kernel queues before the server accepts them (``listen``'s backlog; Linux caps it at
    ``net.core.somaxconn``, 4096 by default). Why deep: a connection arriving at a full queue has its SYN
    dropped, and its client, keyed or not, tries again only after TCP's 1 s; under 20,000 idle connections on
    a busy machine uvicorn's 2048 filled (``ListenOverflows``) and keyed requests took 1.0-1.55 s."""

    def __post_init__(self) -> None:
        if (
            min(self.max_header_bytes, self.header_seconds, self.keep_alive_seconds, self.backlog) <= 0
            or self.max_connections < 2
        ):
            raise ValueError("Server limits must be positive, and max_connections at least 2")

    @property
    def max_waiting(self) -> int:
        return self.max_connections // 2


def api_keys_from_env(environ: Mapping[str, str] = os.environ) -> frozenset[str]:
    """The accepted keys: ``IHC_API_KEY``, comma-separated."""
    return frozenset(key.strip() for key in environ.get(API_KEY_ENV, "").split(",") if key.strip())


def create_app(
    api_keys: frozenset[str],
    conversion_types: Mapping[str, IHCParameters] | None = None,
    faults: FaultConfig | None = None,
    max_journeys: int = DEFAULT_MAX_JOURNEYS,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
) -> Starlette:
    """The server app; ``conversion_types`` adds trained parameters to the built-in ``default`` type."""
    if not api_keys:
        raise ConfigError(f"The IHC server needs at least one API key: set {API_KEY_ENV} (comma-separated).")
    service = _ComputeService(
        api_keys, {DEFAULT_CONV_TYPE: IHCParameters(), **(conversion_types or {})}, max_journeys, max_sessions
    )
    stats = ServerStats()
    app = Starlette(
        routes=[
            Route(COMPUTE_PATH, service.compute, methods=["POST"]),
            Route(STATS_PATH, partial(service.stats, stats=stats), methods=["GET"]),
        ],
        middleware=[
            Middleware(_InFlightCounter, stats=stats),
            Middleware(FaultInjector, config=faults or FaultConfig(), path=COMPUTE_PATH),
        ],
        exception_handlers={ApiError: _error_response},
    )
    app.state.stats = stats
    return app


class _ComputeService:
    """``POST /v1/compute_ihc``: authenticate, pick the conversion type, validate, score."""

    def __init__(
        self, keys: frozenset[str], types: dict[str, IHCParameters], max_journeys: int, max_sessions: int
    ) -> None:
        self.keys, self.types = keys, types
        self.max_journeys, self.max_sessions = max_journeys, max_sessions
        self.max_body = max_body_bytes(max_sessions)

    async def compute(self, request: Request) -> JSONResponse:
        began = time.perf_counter()
        self._authenticate(request.headers.get(API_KEY_HEADER))
        conv_type = request.query_params.get("conv_type_id")
        parameters = self._parameters(conv_type)
        payload = _parsed(await _capped_body(request, self.max_body))
        rows = request_frame(payload)
        self._check_size(rows)
        scored = await run_in_threadpool(score, rows, parameters, payload.redistribution_parameter)
        request.app.state.stats.journeys += rows["conversion_id"].n_unique()
        logger.info(
            "compute conv_type_id=%s sessions=%d status=%d failed_journeys=%d in %.0f ms",
            one_line(conv_type), rows.height, scored.status, len(scored.errors), (time.perf_counter() - began) * 1000,
        )  # fmt: skip
        return JSONResponse(response_body(scored.credits, scored.errors, scored.status))

    async def stats(self, request: Request, stats: ServerStats) -> JSONResponse:
        """``GET /_stats``: the request counts, for a caller holding a key (they tell about other callers)."""
        self._authenticate(request.headers.get(API_KEY_HEADER))
        return JSONResponse(asdict(stats))

    def _authenticate(self, key: str | None) -> None:
        if not key:
            raise ApiError(401, f"Missing {API_KEY_HEADER} header: send your IHC API key in it.")
        if not any(hmac.compare_digest(key.encode(), known.encode()) for known in self.keys):
            raise ApiError(403, f"The API key in the {API_KEY_HEADER} header was refused.")

    def _parameters(self, conv_type: str | None) -> IHCParameters:
        if conv_type in self.types:
            return self.types[conv_type]
        known = ", ".join(sorted(self.types))
        if conv_type is None:
            raise ApiError(400, f"Missing query parameter conv_type_id. Known conversion types: {known}.")
        raise ApiError(404, f"Unknown conv_type_id '{conv_type}'. Known conversion types: {known}.")

    def _check_size(self, rows: pl.DataFrame) -> None:
        journeys = rows["conversion_id"].n_unique()
        if journeys > self.max_journeys:
            raise ApiError(413, f"Request has {journeys} journeys; at most {self.max_journeys} are allowed.")
        if rows.height > self.max_sessions:
            raise ApiError(
                413, f"Request has {rows.height} sessions; at most {self.max_sessions} are allowed."
            )


async def _capped_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 once over ``limit`` bytes: by its Content-Length before a byte is read,
    else (a chunked body) as it streams in, so a huge body never sits in memory."""
    try:
        return await read_capped(request.stream(), limit, request.headers.get("content-length"))
    except BodyTooLarge:
        raise ApiError(413, f"Request body over {limit:,} bytes; send fewer sessions per request.") from None


def _parsed(body: bytes) -> ComputeRequest:
    try:
        return ComputeRequest.model_validate_json(body)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(map(str, error['loc'])) or 'body'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        ]
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ApiError(400, "Invalid request: " + "; ".join(problems[:5]) + more) from None


async def _error_response(_: Request, exc: ApiError) -> JSONResponse:
    logger.info("refused with %d: %s", exc.status, one_line(exc.message))  # it may quote the request
    return JSONResponse({"statusCode": exc.status, "error": exc.message}, status_code=exc.status)


class _InFlightCounter:
    """Counts compute requests in flight, latency and faults included."""

    def __init__(self, app: ASGIApp, stats: ServerStats) -> None:
        self.app, self.stats = app, stats

    async def __call__(self, scope: Message, receive: Any, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != COMPUTE_PATH:
            await self.app(scope, receive, send)
            return
        self.stats.requests += 1
        self.stats.in_flight += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
        try:
            await self.app(scope, receive, send)
        finally:
            self.stats.in_flight -= 1


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    limits: ServerLimits = ServerLimits(),
    on_ready: Callable[[str], None] = lambda url: print(f"listening on {url}", flush=True),
    **app_options: Any,
) -> None:
    """Run the server until interrupted; ``port=0`` picks a free port, announced through ``on_ready(url)``.

    ``app_options`` are ``create_app``'s arguments; ``api_keys`` defaults to ``IHC_API_KEY``'s keys.
    """
    app = create_app(**{"api_keys": api_keys_from_env(), **app_options})
    sock = socket.create_server((host, port), backlog=limits.backlog)
    url = f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}"
    logging.getLogger("uvicorn.error").addFilter(QuietDrops())
    _AnnouncingServer(server_config(app, limits), lambda: on_ready(url)).run(sockets=[sock])


def server_config(app: Starlette, limits: ServerLimits) -> uvicorn.Config:
    """uvicorn's configuration with ``limits``: h11 (httptools has no cap on a header's size), guarded."""
    protocol = type("GuardedH11Protocol", (_GuardedH11Protocol,), {"limits": limits, "waiting": {}})
    return uvicorn.Config(
        app,
        http=protocol,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=limits.keep_alive_seconds,
        backlog=limits.backlog,  # the listening socket is listened to again with it
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )


class _GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with what uvicorn does not offer: a deadline for a request's head, and a cap on
    the connections waiting for one (``ServerLimits``)."""

    limits: ClassVar[ServerLimits] = ServerLimits()
    waiting: ClassVar[dict[_GuardedH11Protocol, None]] = {}
    """The server's connections that began to wait for a request head, longest waiting first (some may
    have got it since: they are dropped from it when they come first)."""
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self.waiting.pop(self, None)
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    @property
    def awaits_head(self) -> bool:
        """Open and waiting for a request's head: none of it yet, or a part."""
        return (
            not self.transport.is_closing()
            and self.conn.their_state is h11.IDLE
            and (self.cycle is None or self.cycle.response_complete)
        )

    def _await_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        if self.transport.is_closing():
            return
        self.waiting.pop(self, None)
        self.waiting[self] = None
        self._head_timer = self.loop.call_later(self.limits.header_seconds, self._head_overdue)
        while len(self.waiting) > self.limits.max_waiting:
            longest = next(iter(self.waiting))
            del self.waiting[longest]
            if longest.awaits_head:
                longest.transport.close()

    def _head_overdue(self) -> None:
        if self.awaits_head:
            self.transport.close()


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that says so once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self._on_ready()
