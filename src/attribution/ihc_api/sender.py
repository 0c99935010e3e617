"""One compute call to the IHC API, retried until it gives an answer the client can use.

Why a class of its own: the concurrency bound, the rate limit and the request quota are shared by every
batch of a run, and the decision "retry, split, or stop" depends only on what came back. Transient faults
(timeouts, dropped connections, 429, 5xx, unreadable bodies) are retried with exponential backoff and full
jitter, or after ``Retry-After`` (at most ``backoff_max``: an attempt each, so a day or ``inf`` cannot hold
a run past ``max_retries``); a refused key or conversion type stops the run, and so does a request the
HTTP library refuses to build (its error text, which may quote a header, is never kept); a rejected request
(400/406/413/422) is handed back so the caller can split it. Why a circuit breaker: when the service is gone,
every request would spend all its retries on it; after ``max_connection_failures`` connection failures in a
row across requests (refused, reset, connect timeout; any answer, even a 5xx, resets the count) nothing more
is sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from email.utils import parsedate_to_datetime
from time import time as wall_clock
from typing import NoReturn

import httpx
from pydantic import ValidationError

from attribution.errors import AuthenticationError, ServiceRefusedError
from attribution.ihc_api import contract
from attribution.ihc_api.config import ClientConfig
from attribution.ihc_api.contract import API_KEY_HEADER, COMPUTE_PATH, ComputeResponse
from attribution.redaction import one_line, scrub

logger = logging.getLogger(__name__)

REJECTED = frozenset({400, 406, 413, 422})
RETRYABLE = frozenset({408, 425, 429})
_BODY_FRAMING = frozenset({"content-encoding", "content-length", "transfer-encoding"})
"""Headers that describe the body as it was sent, not as read (decoded, whole)."""


class Rejected(Exception):
    """The service refused this request's content; a smaller request may pass."""

    def __init__(self, reason: str, attempts: int = 1) -> None:
        super().__init__(reason)
        self.reason, self.attempts = reason, attempts


class RetriesExhausted(Exception):
    """Every attempt failed transiently."""

    def __init__(self, attempts: int, last_error: str) -> None:
        super().__init__(last_error)
        self.attempts, self.last_error = attempts, last_error


class QuotaReached(Exception):
    """The run's request quota is used up; nothing more is sent."""


class Unreachable(Exception):
    """The circuit breaker is open: so many connection failures in a row that nothing more is sent."""

    def __init__(self, failures: int, last_error: str) -> None:
        super().__init__(last_error)
        self.failures, self.last_error = failures, last_error


CONNECTION_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadError, httpx.WriteError)
"""No connection to the service, or one the peer reset: what a stopped service looks like (not an answer)."""


class _Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Sender:
    """Sends compute requests: at most ``concurrency`` in flight, paced, counted against the quota."""

    def __init__(self, client: httpx.AsyncClient, config: ClientConfig) -> None:
        self.client, self.options = client, config
        self._key = config.api_key
        self._params = {"conv_type_id": config.conv_type_id}
        self.where = str(client.base_url.copy_with(username=None, password=None))  # for messages
        self._slots = asyncio.Semaphore(config.concurrency)
        self._next_start = 0.0
        self._rng = random.Random()
        self.requests = self.retries = 0
        self._failures_in_a_row, self._last_failure = 0, ""

    async def compute(self, body: bytes) -> tuple[ComputeResponse, int]:
        """The usable answer to ``body`` and the attempts it took; raises ``Rejected``, ``RetriesExhausted``,
        ``QuotaReached``, ``Unreachable``, ``AuthenticationError`` or ``ServiceRefusedError``."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(body), attempt
            except Rejected as exc:
                exc.attempts = attempt
                raise
            except _Transient as exc:
                if attempt > self.options.max_retries:
                    raise RetriesExhausted(attempt, str(exc)) from None
                delay = self._delay(attempt, exc.retry_after)
                more = " (the service asked for more)" if (exc.retry_after or 0) > delay else ""
                logger.warning(
                    "IHC API attempt %d failed (%s); retrying in %.2f s%s", attempt, exc, delay, more
                )
                self.retries += 1
                await asyncio.sleep(delay)

    async def _attempt(self, body: bytes) -> ComputeResponse:
        self._check_circuit()
        self._take_quota()
        await self._pace()
        async with self._slots:
            self._check_circuit()  # it may have opened while this request waited for a slot
            try:
                async with asyncio.timeout(self.options.request_deadline):
                    response = await self._exchange(body)
            except CONNECTION_FAILURES as exc:
                raise self._connection_failed(exc) from None
            except httpx.TimeoutException as exc:
                raise _Transient(f"timeout ({type(exc).__name__})") from None
            except TimeoutError:
                raise _Transient(
                    f"timeout (no whole answer within {self.options.request_deadline:g} s)"
                ) from None
            except httpx.LocalProtocolError:
                raise self._unsendable() from None
            except httpx.TransportError as exc:
                raise _Transient(f"connection error ({self._described(exc)})") from None
        self._failures_in_a_row = 0  # the service answered: it is there
        return self._answer(response)

    async def _exchange(self, body: bytes) -> httpx.Response:
        """Send ``body`` and read the answer whole, up to ``max_answer_bytes``: past it the service is not
        one this client can use (``ServiceRefusedError``), and its answer is not held in memory."""
        cap = self.options.max_answer_bytes
        request = {"params": self._params, "content": body, "headers": self._headers()}
        async with self.client.stream("POST", COMPUTE_PATH, **request) as streamed:
            try:
                content = await contract.read_capped(
                    streamed.aiter_bytes(), cap, streamed.headers.get("content-length")
                )
            except contract.BodyTooLarge:
                raise ServiceRefusedError(
                    f"The IHC API at {self.where} sent an answer over {cap:,} bytes, the cap for "
                    f"{self.options.max_sessions} sessions per request; nothing more is sent."
                ) from None
        headers = [(k, v) for k, v in streamed.headers.multi_items() if k not in _BODY_FRAMING]
        return httpx.Response(
            streamed.status_code, headers=headers, content=content, request=streamed.request
        )

    def _connection_failed(self, exc: httpx.TransportError) -> _Transient:
        """Count a connection failure (worth a retry); raise ``Unreachable`` when it opens the circuit."""
        self._failures_in_a_row += 1
        self._last_failure = f"connection error ({self._described(exc)})"
        self._check_circuit()
        return _Transient(self._last_failure)

    def _check_circuit(self) -> None:
        """Raise ``Unreachable`` once ``max_connection_failures`` connection failures came in a row."""
        if self._failures_in_a_row >= self.options.max_connection_failures:
            raise Unreachable(self._failures_in_a_row, self._last_failure)

    def _described(self, exc: httpx.TransportError) -> str:
        return f"{type(exc).__name__}: {self._scrubbed(exc)}"

    def _unsendable(self) -> ServiceRefusedError:
        """The HTTP library refused to build the request: no retry can help, and its words are not kept
        (h11's ``Illegal header value b'...'`` quotes the header, API key and all)."""
        return ServiceRefusedError(
            f"The IHC API request to {self.where} could not be sent: the HTTP library refused it as malformed "
            "(LocalProtocolError: a header value with whitespace or a control character?). Its text is not "
            "shown, as it may quote the API key."
        )

    def _scrubbed(self, text: object) -> str:
        """An error's text as it may be logged and stored: the API key blanked, should it be quoted, on one
        printable line (a body's CR/LF would forge a log line)."""
        return one_line(scrub(str(text), [self._key.get_secret_value()], "**********"))

    def _headers(self) -> dict[str, str]:
        return {API_KEY_HEADER: self._key.get_secret_value(), "content-type": "application/json"}

    @property
    def has_quota(self) -> bool:
        """Whether the run's request quota allows another request."""
        return self.options.max_requests is None or self.requests < self.options.max_requests

    def _take_quota(self) -> None:
        if not self.has_quota:
            raise QuotaReached
        self.requests += 1

    async def _pace(self) -> None:
        """Space request starts by ``1 / rate_limit`` seconds."""
        if not self.options.rate_limit:
            return
        now = asyncio.get_running_loop().time()
        start = max(now, self._next_start)
        self._next_start = start + 1 / self.options.rate_limit
        await asyncio.sleep(start - now)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:  # the service said when: honoured up to backoff_max (not a day, not inf)
            return min(retry_after, self.options.backoff_max)
        ceiling = min(self.options.backoff_max, self.options.backoff_base * 2 ** (attempt - 1))
        return self._rng.uniform(0, ceiling)

    def _answer(self, response: httpx.Response) -> ComputeResponse:
        """The parsed answer if both the HTTP status and the body's ``statusCode`` allow it, else raise."""
        status = response.status_code
        if not 200 <= status < 300:
            self._refuse(status, self._detail(response), response)
        try:
            answer = ComputeResponse.model_validate_json(response.content)
        except ValidationError:
            raise _Transient(f"unreadable answer body (HTTP {status})") from None
        if answer.statusCode not in (200, 206):
            self._refuse(answer.statusCode, self._detail(response), response)
        return answer

    def _refuse(self, status: int, detail: str, response: httpx.Response) -> NoReturn:
        if status in (401, 403):
            raise AuthenticationError(
                f"The IHC API at {self.where} refused the API key (HTTP {status}: {detail}). "
                "Check the configured IHC API key; it is not shown here."
            )
        if status in REJECTED:
            raise Rejected(f"HTTP {status}: {detail}")
        if status in RETRYABLE or status >= 500:
            raise _Transient(f"HTTP {status}: {detail}", _retry_after(response))
        raise ServiceRefusedError(
            f"The IHC API refused the request for conv_type_id '{one_line(self._params['conv_type_id'])}' "
            f"(HTTP {status}: {detail}). Check the conversion type and base URL {self.where}."
        )

    def _detail(self, response: httpx.Response) -> str:
        """The service's own words, short, with the key blanked out should it ever be echoed."""
        try:
            body = response.json()
            text = (
                str(body.get("error") or body.get("message") or body) if isinstance(body, dict) else str(body)
            )
        except (json.JSONDecodeError, UnicodeDecodeError):
            text = response.text
        return self._scrubbed(text)[:300]  # scrubbed whole, then cut: a cut key would show its start


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds: a number (fractions accepted) or an HTTP date; None if absent or unreadable."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - wall_clock())
    except (TypeError, ValueError):
        return None
