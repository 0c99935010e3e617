"""How the IHC API client is set up: where, which key, which conversion type, and how hard to try.

Why a typed, frozen model: the key is a ``SecretStr`` (it never shows in a repr, log or error), and a bad
value fails when the client is built, not after half a run has been sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator

from attribution.ihc_api.contract import (
    DEFAULT_MAX_JOURNEYS,
    DEFAULT_MAX_SESSIONS,
    LongJourneyPolicy,
    max_answer_bytes,
)
from attribution.models.redistribution import RedistributionParameter
from attribution.redaction import hide_credentials

# Every number bounded to what a run can use, so a typo (a million retries, a timeout of inf) is refused when
# the settings are read, in one line naming it, instead of stalling or flooding a run.
JourneysPerRequest = Annotated[int, Field(ge=1, le=100_000)]
SessionsPerRequest = Annotated[int, Field(ge=1, le=1_000_000)]
Concurrency = Annotated[int, Field(ge=1, le=256)]
RequestRate = Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False)]
"""Requests per second."""
RequestQuota = Annotated[int, Field(ge=1, le=10**9)]
Retries = Annotated[int, Field(ge=0, le=100)]
ConnectionFailures = Annotated[int, Field(ge=1, le=10_000)]
Timeout = Annotated[float, Field(gt=0, le=3_600, allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0, le=3_600, allow_inf_nan=False)]


def _header_safe(key: SecretStr) -> SecretStr:
    """Refuse a key of anything but printable ASCII without spaces (a key read from a file keeps its line
    break; a pasted one may hold a non-breaking space or an accent): the HTTP library would fail each request
    with an error that quotes the header, or a character of the key and its position."""
    if not all("!" <= char <= "~" for char in key.get_secret_value()):
        raise ValueError(
            "the API key holds whitespace or a control character or is not printable ASCII (a line break "
            "from a file?); it is not shown"
        )
    return key


ApiKey = Annotated[SecretStr, AfterValidator(_header_safe)]
"""An API key that can go into a header as it is."""

DEFAULT_BASE_URL = "https://api.ihc-attribution.com"
DEFAULT_CONV_TYPE_ID = "default"
DEFAULT_CONCURRENCY = 4
DEFAULT_MAX_RETRIES = 6
DEFAULT_TIMEOUT = 30.0
DEFAULT_BACKOFF_BASE = 0.5
DEFAULT_BACKOFF_MAX = 30.0
DEFAULT_MAX_CONNECTION_FAILURES = 8
REQUEST_DEADLINE_TIMEOUTS = 3
"""A request's whole exchange (connect, send, the answer read whole) may take this many ``timeout``s: the
timeout bounds each read, so without it an answer sent a byte at a time would hold a run for ever."""


class ClientConfig(BaseModel):
    """Settings of ``IHCApiAttributor``, and a run's IHC API settings (``Settings.ihc_api``: the key may be
    missing until the ``ihc-api`` model is used); ``transport`` lets tests and callers inject an httpx
    transport."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, hide_input_in_errors=True
    )

    base_url: str = DEFAULT_BASE_URL
    api_key: ApiKey | None = None
    conv_type_id: str = DEFAULT_CONV_TYPE_ID
    max_journeys: JourneysPerRequest = DEFAULT_MAX_JOURNEYS
    max_sessions: SessionsPerRequest = DEFAULT_MAX_SESSIONS
    long_journey_policy: LongJourneyPolicy = "truncate"
    concurrency: Concurrency = DEFAULT_CONCURRENCY
    rate_limit: RequestRate | None = Field(None, description="requests per second")
    max_retries: Retries = DEFAULT_MAX_RETRIES
    timeout: Timeout = DEFAULT_TIMEOUT
    backoff_base: Seconds = DEFAULT_BACKOFF_BASE
    backoff_max: Seconds = Field(
        DEFAULT_BACKOFF_MAX, description="the longest wait between attempts, a Retry-After included"
    )
    max_requests: RequestQuota | None = Field(None, description="request quota of one run, retries included")
    max_connection_failures: ConnectionFailures = Field(
        DEFAULT_MAX_CONNECTION_FAILURES,
        description="connection failures in a row (across requests) after which the service counts as down",
    )
    redistribution: RedistributionParameter | None = None
    transport: object | None = None
    """An ``httpx.AsyncBaseTransport`` (``_a_transport``): typed as any object here, so that the settings of
    a run of another model load without the HTTP stack."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            scheme = value.partition(":")[0]  # the rest may hold credentials: not echoed
            raise ValueError(f"base_url must start with http:// or https://, not {scheme!r}:")
        return value.rstrip("/")

    @field_validator("transport")
    @classmethod
    def _a_transport(cls, value: object | None) -> object | None:
        import httpx

        if value is not None and not isinstance(value, httpx.AsyncBaseTransport):
            raise ValueError(f"transport must be an httpx.AsyncBaseTransport, not {type(value).__name__}")
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """The fields as ``repr`` shows them: the base URL without credentials (the key is a secret)."""
        for name, value in super().__repr_args__():
            yield name, hide_credentials(value) if name == "base_url" else value

    @property
    def request_deadline(self) -> float:
        """Seconds for a request's whole exchange (``REQUEST_DEADLINE_TIMEOUTS``)."""
        return self.timeout * REQUEST_DEADLINE_TIMEOUTS

    @property
    def max_answer_bytes(self) -> int:
        """The largest answer body read (``contract.max_answer_bytes``)."""
        return max_answer_bytes(self.max_sessions)

    @property
    def loopback(self) -> bool:
        """Whether ``base_url`` names this machine (localhost, 127.0.0.0/8, ::1): such requests never go
        through a proxy of the environment (``HTTP_PROXY``), which would see the key and the journeys."""
        import httpx  # loaded by then: the client asks this as it opens its connections

        host = httpx.URL(self.base_url).host
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
        return address.is_loopback or bool(mapped and mapped.is_loopback)
