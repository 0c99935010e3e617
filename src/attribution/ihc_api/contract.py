"""The IHC API contract, shared by the client and the project's server (see docs/ihc-api.md).

Why one module: the client and the server must agree on every field name, format and limit; if each kept
its own copy, a test of one against the other could pass while both drift from the vendor's contract.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, StrictStr, with_config
from typing_extensions import TypedDict

from attribution.models.redistribution import RedistributionParameter
from attribution.redaction import one_line
from attribution.vocabulary import IHC_CREDIT_SCHEMA, PHASES

COMPUTE_PATH = "/v1/compute_ihc"
API_KEY_HEADER = "x-api-key"
API_KEY_ENV = "IHC_API_KEY"
DEFAULT_MAX_JOURNEYS = 100
DEFAULT_MAX_SESSIONS = 3000
LongJourneyPolicy = Literal["truncate", "skip"]
"""What the client does with a journey longer than the session cap: keep its latest sessions, or leave it out."""
DEFAULT_CONV_TYPE = "default"
MAX_SESSION_BYTES = 1024
"""Room for one session in a request body: a typical row is about 200 bytes of JSON."""


def max_body_bytes(max_sessions: int) -> int:
    """The largest request body a server accepts: room for its session cap, and never less than the
    contract's default cap (about 3 MB), so the session cap, not the body cap, names what is too large."""
    return max(max_sessions, DEFAULT_MAX_SESSIONS) * MAX_SESSION_BYTES


MIN_ANSWER_CAP = 16 << 20


def max_answer_bytes(max_sessions: int) -> int:
    """The largest answer body a client reads: 16 MiB, or a request body's cap if larger (an answer row is
    no bigger than its request row), so a service sending without end cannot fill the client's memory."""
    return max(MIN_ANSWER_CAP, max_body_bytes(max_sessions))


class BodyTooLarge(Exception):
    """A body passed its cap (``read_capped``)."""


async def read_capped(parts: AsyncIterable[bytes], limit: int, declared: str | None = None) -> bytes:
    """A body of at most ``limit`` bytes; raises ``BodyTooLarge`` on a larger declared length (its
    Content-Length) before a byte is read, else as soon as the bytes received pass it, so a huge body never
    sits in memory."""
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    received: list[bytes] = []
    size = 0
    async for part in parts:
        size += len(part)
        if size > limit:
            raise BodyTooLarge
        received.append(part)
    return b"".join(received)


TIMESTAMP_FORMAT_WITH_OFFSET = "%Y-%m-%d %H:%M:%S %z"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}( [+-]\d{4})?$"
"""Either accepted format, digit for digit; the service drops rows whose timestamp matches neither."""

Flag = Literal[0, 1]


@with_config(ConfigDict(extra="forbid"))
class SessionRow(TypedDict):
    """One session of ``customer_journeys``; a journey is all rows sharing a ``conversion_id``."""

    conversion_id: StrictStr
    session_id: StrictStr
    timestamp: StrictStr
    channel_label: StrictStr
    holder_engagement: Flag
    closer_engagement: Flag
    conversion: Flag
    impression_interaction: Flag


class ComputeRequest(BaseModel):
    """The body of ``POST /v1/compute_ihc``."""

    model_config = ConfigDict(extra="forbid")

    customer_journeys: list[SessionRow]
    redistribution_parameter: RedistributionParameter | None = None


class CreditRow(TypedDict):
    """One ``value`` row of a response: the session's three phase values and its ihc credit."""

    conversion_id: str
    session_id: str
    initializer: float
    holder: float
    closer: float
    ihc: float


class ComputeResponse(BaseModel):
    """The body of a compute answer; ``partialFailureErrors`` items have no documented shape, so any is kept."""

    model_config = ConfigDict(extra="ignore")

    statusCode: int
    value: list[CreditRow] = []
    partialFailureErrors: list[Any] = []


REQUEST_ROW_SCHEMA: dict[str, pl.DataType] = {
    "conversion_id": pl.String(),
    "session_id": pl.String(),
    "timestamp": pl.String(),
    "channel_label": pl.String(),
    "holder_engagement": pl.Int8(),
    "closer_engagement": pl.Int8(),
    "conversion": pl.Int8(),
    "impression_interaction": pl.Int8(),
}

_TO_REQUEST = {"conv_id": "conversion_id", "channel_name": "channel_label"}


def request_columns() -> list[pl.Expr]:
    """Expressions turning a journeys frame into ``customer_journeys`` columns (IDs as strings)."""
    source = {wire: journey for journey, wire in _TO_REQUEST.items()}
    return [
        pl.col(source.get(name, name)).cast(dtype).alias(name) for name, dtype in REQUEST_ROW_SCHEMA.items()
    ]


def request_body(journeys: pl.DataFrame, redistribution: RedistributionParameter | None = None) -> bytes:
    """The encoded request for the journeys' sessions: columns built by Polars, one ``to_dicts`` per request."""
    body: dict[str, Any] = {"customer_journeys": journeys.select(request_columns()).to_dicts()}
    if redistribution is not None:
        body["redistribution_parameter"] = redistribution.model_dump(mode="json", exclude_none=True)
    return json.dumps(body, separators=(",", ":")).encode()


def request_frame(request: ComputeRequest) -> pl.DataFrame:
    """The request's rows as a frame with the wire column names."""
    return pl.DataFrame(request.customer_journeys, schema=REQUEST_ROW_SCHEMA)


def response_body(credits: pl.DataFrame, failures: list[dict[str, Any]], status: int) -> dict[str, Any]:
    """A response from wire-named credit rows (``conversion_id``, ``session_id``, phases, ``ihc``)."""
    value = credits.select("conversion_id", "session_id", *PHASES, "ihc").to_dicts()
    return {"statusCode": status, "value": value, "partialFailureErrors": failures}


def credit_frame(response: ComputeResponse) -> pl.DataFrame:
    """The response's ``value`` rows as a frame in the journeys frame's names (see ``IHC_CREDIT_SCHEMA``)."""
    frame = pl.DataFrame(
        response.value,
        schema={
            "conversion_id": pl.String(),
            **{k: v for k, v in IHC_CREDIT_SCHEMA.items() if k != "conv_id"},
        },
    )
    return frame.rename({"conversion_id": "conv_id"}).select(list(IHC_CREDIT_SCHEMA))


def partial_failures(response: ComputeResponse) -> tuple[dict[str, str], list[str]]:
    """What ``partialFailureErrors`` says: a message per conversion id it names, and the messages naming none."""
    named: dict[str, str] = {}
    loose: list[str] = []
    for item in response.partialFailureErrors:
        conv_id, text = _failure_item(item)
        if conv_id is None:
            loose.append(text)
        else:
            named[conv_id] = text
    return named, loose


def _failure_item(item: Any) -> tuple[str | None, str]:
    """The conversion id an item names (if any) and its message, whatever keys the service used."""
    if not isinstance(item, dict):
        return None, one_line(item)
    message = _first(item, ("error", "message", "reason")) or json.dumps(item, default=str)
    return _first(item, ("conversion_id", "conversionId", "conv_id")), one_line(message)


def _first(item: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    return next((str(item[key]) for key in keys if item.get(key) is not None), None)
