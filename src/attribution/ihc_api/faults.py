"""Fault injection for the project's IHC server: the failures a client on the public internet must survive.

Why an ASGI middleware in front of the compute route: faults happen in load balancers and rate limiters
before the service looks at a request, and the same middleware can garble or slow the real answer.
Why a seeded generator: a fault scenario replays the same sequence of faults for the same request order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Callable[[], Awaitable[Message]], Send], Awaitable[None]]
Fault = Literal["error", "throttle", "drop", "malformed"]

logger = logging.getLogger(__name__)
FAULTS: tuple[Fault, ...] = ("error", "throttle", "drop", "malformed")
SLOW_BODY_CHUNKS = 4
PAD_PIECE = 1 << 20


class DroppedConnection(Exception):
    """Raised after the response has started, so uvicorn closes the socket and the client sees no answer."""


@dataclass(frozen=True)
class FaultConfig:
    """Share of compute requests per fault (drawn once per request), plus delays added to every request."""

    error_rate: float = 0.0
    throttle_rate: float = 0.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    seed: int | None = None
    """Seed of the draws: the same seed gives the same faults for the same requests."""
    latency_ms: float = 0.0
    slow_body_ms: float = 0.0
    retry_after_s: float = 1.0
    trickle_ms: float = 0.0
    """Send every answer body one byte at a time, this long apart (each read is quick, the whole is not)."""
    pad_body_bytes: int = 0
    """Add this many spaces to every answer body (still valid JSON): an answer of any size."""

    def __post_init__(self) -> None:
        rates = self.rates()
        if any(not 0 <= rate <= 1 for rate in rates) or sum(rates) > 1:
            raise ValueError(f"fault rates must lie in [0, 1] and sum to at most 1, got {rates}")
        if (
            min(self.latency_ms, self.slow_body_ms, self.retry_after_s, self.trickle_ms, self.pad_body_bytes)
            < 0
        ):
            raise ValueError(
                "latency_ms, slow_body_ms, retry_after_s, trickle_ms and pad_body_bytes must not be negative"
            )

    def rates(self) -> tuple[float, ...]:
        """The fault shares in the order of ``FAULTS``."""
        return (self.error_rate, self.throttle_rate, self.drop_rate, self.malformed_rate)

    def draw(self, rng: random.Random) -> Fault | None:
        """The fault for one request, or None for a normal answer."""
        u = rng.random()
        for fault, rate in zip(FAULTS, self.rates(), strict=True):
            if u < rate:
                return fault
            u -= rate
        return None


class FaultInjector:
    """ASGI middleware applying a ``FaultConfig`` to requests for one path; other paths pass untouched."""

    def __init__(self, app: ASGIApp, config: FaultConfig, path: str) -> None:
        self.app, self.config, self.path = app, config, path
        self.rng = random.Random(config.seed)

    async def __call__(self, scope: Message, receive: Callable[[], Awaitable[Message]], send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        fault = self.config.draw(self.rng)
        if fault:
            logger.info("injecting fault: %s", fault)
        if fault == "error":
            await _send_json(send, 503, {"statusCode": 503, "error": "injected fault: service unavailable"})
        elif fault == "throttle":
            retry_after = f"{self.config.retry_after_s:g}"
            body = {"statusCode": 429, "error": "injected fault: too many requests"}
            await _send_json(send, 429, body, [(b"retry-after", retry_after.encode())])
        elif fault == "drop":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
            )
            raise DroppedConnection
        else:
            if fault == "malformed":
                send = _truncating(send)
            await self.app(scope, receive, self._reshaping(send))

    def _reshaping(self, send: Send) -> Send:
        """``send`` with the body faults that apply to every answer: padded, slowed, trickled."""
        if self.config.pad_body_bytes:
            send = _padding(send, self.config.pad_body_bytes)
        if self.config.slow_body_ms:
            pause = self.config.slow_body_ms / 1000 / SLOW_BODY_CHUNKS
            send = _paced(send, pieces=SLOW_BODY_CHUNKS, pause=pause)
        if self.config.trickle_ms:
            send = _paced(send, pause=self.config.trickle_ms / 1000)
        return send


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list | None = None) -> None:
    content = json.dumps(body).encode()
    start_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": start_headers + (headers or [])})
    await send({"type": "http.response.body", "body": content})


def _truncating(send: Send) -> Send:
    """Cut the answer's body in half (a valid HTTP response whose JSON does not parse).

    Expects the single body message that Starlette's ``JSONResponse`` sends.
    """
    held: list[Message] = []

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            held.append(message)
            return
        body = message.get("body", b"")[: len(message.get("body", b"")) // 2]
        start = held.pop()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return wrapped


def _paced(send: Send, *, pieces: int | None = None, pause: float) -> Send:
    """Send the body in ``pieces`` equal chunks (one byte at a time without), each after ``pause`` seconds."""

    async def wrapped(message: Message) -> None:
        if message["type"] != "http.response.body":
            await send(message)
            return
        size = (-(-len(message.get("body", b"")) // pieces) or 1) if pieces else 1
        await _in_pieces(send, message, size, pause)

    return wrapped


async def _in_pieces(send: Send, message: Message, size: int, pause: float) -> None:
    """Send a body message as pieces of ``size`` bytes, each after ``pause`` seconds."""
    body = message.get("body", b"")
    for start in range(0, len(body), size):
        await asyncio.sleep(pause)
        await send({"type": "http.response.body", "body": body[start : start + size], "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": message.get("more_body", False)})


def _padding(send: Send, extra: int) -> Send:
    """Add ``extra`` spaces after the body, in pieces of a MiB, sent chunked (no Content-Length)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message["headers"] if k.lower() != b"content-length"]
            await send({**message, "headers": headers})
            return
        if message.get("more_body", False):
            await send(message)
            return
        await send({**message, "more_body": True})
        for start in range(0, extra, PAD_PIECE):
            piece = b" " * min(PAD_PIECE, extra - start)
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return wrapped


class QuietDrops(logging.Filter):
    """Keep uvicorn's error log free of the tracebacks of deliberately dropped connections."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))
