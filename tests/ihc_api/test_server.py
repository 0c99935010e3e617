"""The project's IHC server over real HTTP: status codes, bodies, rounding, and agreement with the local engine."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import polars as pl
import pytest
from uvicorn.protocols.http.h11_impl import H11Protocol

from attribution.ihc_api import ClientConfig, FaultConfig, IHCApiAttributor, create_app
from attribution.ihc_api.contract import COMPUTE_PATH, DEFAULT_MAX_SESSIONS, max_body_bytes, request_body
from attribution.ihc_api.local import LocalServer
from attribution.ihc_api.server import STATS_PATH, ServerLimits, server_config
from attribution.models import IHC, IHCParameters
from attribution.models.redistribution import RedistributionParameter
from tests.ihc_api.conftest import journeys_frame, with_conversion_time
from tests.servers import API_KEY


def post(
    server: LocalServer, body: bytes | dict, key: str | None = API_KEY, conv_type: str | None = "default"
):
    headers = {"x-api-key": key} if key is not None else {}
    params = {"conv_type_id": conv_type} if conv_type is not None else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(server.url + COMPUTE_PATH, params=params, headers=headers, content=content, timeout=10)


def rows_of(frame: pl.DataFrame) -> list[dict]:
    return json.loads(request_body(frame))["customer_journeys"]


def test_a_missing_key_gets_401_and_a_wrong_key_403_each_with_a_clear_body(ihc_server):
    missing, wrong = post(ihc_server, b"{}", key=None), post(ihc_server, b"{}", key="not-the-key")
    assert (missing.status_code, wrong.status_code) == (401, 403)
    assert "x-api-key" in missing.json()["error"] and "refused" in wrong.json()["error"]
    assert "not-the-key" not in wrong.text


def test_an_unknown_conversion_type_gets_404_naming_the_known_ones(ihc_server):
    response = post(ihc_server, b"{}", conv_type="all_markets")
    assert response.status_code == 404
    assert response.json()["error"] == "Unknown conv_type_id 'all_markets'. Known conversion types: default."
    assert post(ihc_server, b"{}", conv_type=None).status_code == 400


@pytest.mark.parametrize(("lengths", "what"), [([1] * 101, "101 journeys"), ([3001], "3001 sessions")])
def test_a_request_over_either_cap_gets_413_saying_which(ihc_server, lengths, what):
    response = post(ihc_server, {"customer_journeys": rows_of(journeys_frame(lengths))})
    assert response.status_code == 413
    assert response.json()["error"].startswith(f"Request has {what}")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"customer_journeys": [', "Invalid JSON"),
        (b'{"journeys": []}', "customer_journeys: Field required"),
        (b'{"customer_journeys": [{"conversion_id": 1}]}', "conversion_id: Input should be a valid string"),
    ],
)
def test_malformed_json_and_missing_fields_get_400(ihc_server, body, says):
    response = post(ihc_server, body)
    assert response.status_code == 400
    assert response.json()["statusCode"] == 400 and says in response.json()["error"]


def test_a_journey_with_a_timestamp_in_another_format_is_listed_as_406_in_a_206_answer(ihc_server):
    rows = rows_of(journeys_frame([2, 3]))
    rows[0]["timestamp"] = "2023-9-1 10:00:00"
    answer = post(ihc_server, {"customer_journeys": rows}).json()
    assert answer["statusCode"] == 206
    assert answer["partialFailureErrors"] == [
        {
            "conversion_id": "c0",
            "statusCode": 406,
            "error": "1 row(s) dropped: timestamp not in '%Y-%m-%d %H:%M:%S' or '%Y-%m-%d %H:%M:%S %z'",
        }
    ]
    assert {row["conversion_id"] for row in answer["value"]} == {"c1"}


def test_timestamps_with_an_offset_are_read_as_utc(ihc_server):
    rows = rows_of(journeys_frame([3]))
    plain = post(ihc_server, {"customer_journeys": rows}).json()["value"]
    rows[0]["timestamp"] = rows[0]["timestamp"] + " +0000"
    rows[1]["timestamp"] = "2023-09-01 02:37:00 +0200"  # the same instant as 00:37 UTC
    assert post(ihc_server, {"customer_journeys": rows}).json()["value"] == plain


def test_every_value_has_4_decimals_and_each_journey_phase_sums_to_exactly_1(ihc_server):
    answer = post(ihc_server, {"customer_journeys": rows_of(journeys_frame([1, 2, 7, 13, 40, 3]))}).json()
    values = pl.DataFrame(answer["value"])
    assert answer["statusCode"] == 200 and values.height == 66
    columns = ["initializer", "holder", "closer", "ihc"]
    assert values.select(((pl.col(columns) * 10_000).round(6) % 1 == 0).all()).row(0) == (True,) * 4
    sums = values.group_by("conversion_id").agg(pl.col(columns).sum())
    for column in columns:
        total = sums[column]
        assert (((total - 1).abs() < 1e-9) | ((column == "holder") & (total.abs() < 1e-9))).all(), column


def test_the_server_agrees_with_the_local_engine_within_rounding(ihc_server):
    frame = journeys_frame([1, 2, 5, 9, 20], channels=("Referral", "Direct Traffic", "Paid Search Brand"))
    answer = pl.DataFrame(post(ihc_server, {"customer_journeys": rows_of(frame)}).json()["value"])
    local = IHC().attribute(with_conversion_time(frame))
    both = local.join(answer.rename({"conversion_id": "conv_id"}), on=["conv_id", "session_id"])
    assert both.height == frame.height
    for column in ["initializer", "holder", "closer", "ihc"]:
        assert (both[column] - both[f"{column}_right"]).abs().max() <= 5e-4, column


def test_redistribution_hands_direct_traffic_closer_credit_to_earlier_sessions(ihc_server):
    # c0 alternates Referral, Direct: its Direct closers (sessions 3, 5) have an earlier receiver, session 0.
    # c1 starts with Direct: that closer has no earlier session to go to, so it stays.
    frame = journeys_frame([6, 4], channels=("Referral", "Direct Traffic"))
    rule = {"direction": "earlier_sessions_only", "receive_threshold": 0, "redistribution_channel_labels": ["Direct Traffic"]}  # fmt: skip
    body = json.loads(request_body(frame, RedistributionParameter.model_validate({"closer": rule})))
    moved = pl.DataFrame(post(ihc_server, body).json()["value"]).sort("session_id")
    plain = pl.DataFrame(post(ihc_server, {"customer_journeys": rows_of(frame)}).json()["value"]).sort(
        "session_id"
    )
    closer = dict(zip(moved["session_id"], moved["closer"], strict=True))
    assert [closer[f"c0s000{i}"] for i in range(6)] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert moved.filter(pl.col("conversion_id") == "c1").equals(plain.filter(pl.col("conversion_id") == "c1"))
    assert moved.group_by("conversion_id").agg(pl.col("closer", "ihc").sum()).select(
        "closer", "ihc"
    ).rows() == [
        (1.0, 1.0),
        (1.0, 1.0),
    ]


def test_trained_conversion_types_are_served_next_to_the_default():
    trained = IHCParameters(initializer_weight=0.6, holder_weight=0.1, closer_weight=0.3)
    app = create_app(frozenset({API_KEY}), {"all_markets": trained})
    frame = journeys_frame([4])

    def credit(conv_type: str) -> list[float]:
        config = ClientConfig(
            base_url="http://ihc.test",
            api_key=API_KEY,
            conv_type_id=conv_type,
            transport=httpx.ASGITransport(app),
        )
        return IHCApiAttributor(config).attribute(frame).sort("session_id")["ihc"].to_list()

    local = IHC(trained).attribute(with_conversion_time(frame)).sort("session_id")["ihc"].to_list()
    assert credit("all_markets") == pytest.approx(local, abs=5e-4)
    assert credit("all_markets") != pytest.approx(credit("default"), abs=1e-3)


def test_the_server_refuses_to_start_without_a_key_in_the_environment():
    environment = {k: v for k, v in os.environ.items() if k != "IHC_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "attribution", "serve-ihc", "--port", "0"],
        env=environment,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    assert "set IHC_API_KEY" in done.stderr


def test_the_server_log_never_contains_a_key(ihc_server):
    post(ihc_server, {"customer_journeys": rows_of(journeys_frame([2]))})
    post(ihc_server, b"{}", key="wrong-key-0042")
    log = ihc_server.log.read_text()
    assert "compute conv_type_id=default" in log
    assert API_KEY not in log and "wrong-key-0042" not in log


@pytest.mark.parametrize("rates", [{"error_rate": 0.7, "throttle_rate": 0.5}, {"drop_rate": -0.1}])
def test_fault_shares_outside_0_to_1_or_summing_past_1_are_refused(rates):
    with pytest.raises(ValueError, match="fault rates"):
        FaultConfig(**rates)


def test_the_default_conversion_type_answers_real_journeys_like_the_real_service(ihc_server, real_answers):
    # The first 100 real journeys, as the service got them but with the last session marked as converting
    # (the fixture has conversion 0 everywhere, which this server refuses): the server's answers are the
    # calibrated engine's, so their ihc is within the calibration's bound of the real service's.
    journeys = real_answers["conversion_id"].unique(maintain_order=True).head(100)
    sent = real_answers.filter(pl.col("conversion_id").is_in(journeys.implode()))
    request = sent.drop("initializer", "holder", "closer", "ihc").with_columns(
        conversion=(pl.int_range(pl.len()).over("conversion_id") == pl.len().over("conversion_id") - 1).cast(
            pl.Int8
        )
    )
    answer = pl.DataFrame(post(ihc_server, {"customer_journeys": request.to_dicts()}).json()["value"])
    both = sent.join(answer, on=["conversion_id", "session_id"], suffix="_server")
    assert both.height == sent.height
    assert (both["ihc"] - both["ihc_server"]).abs().mean() <= 0.002


CAP = max_body_bytes(DEFAULT_MAX_SESSIONS)


def first_answer(server: LocalServer, headers: list[str], body: Iterator[bytes]) -> tuple[int, str]:
    """Send a raw request (a valid key, then ``headers``), then ``body`` until the server answers: its status
    and body."""
    url = urlsplit(server.url)
    head = [
        f"POST {COMPUTE_PATH}?conv_type_id=default HTTP/1.1",
        f"host: {url.netloc}",
        f"x-api-key: {API_KEY}",
    ]
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(("\r\n".join([*head, *headers]) + "\r\n\r\n").encode())
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for piece in body:
                if select.select([sock], [], [], 0)[0]:  # answered already: stop sending
                    break
                sock.sendall(piece)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status, answer.read().decode()


def test_a_body_declared_too_large_gets_413_before_it_is_sent(ihc_server):
    status, answer = first_answer(ihc_server, ["content-length: 300000000"], iter([b"{" * 1024]))
    assert status == 413 and json.loads(answer)["error"].startswith(f"Request body over {CAP:,} bytes")


def test_a_streamed_body_gets_413_once_it_passes_the_cap(ihc_server):
    piece = b"x" * 65536
    chunks = (
        f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for _ in range(3 * CAP // len(piece))
    )  # never ended
    status, answer = first_answer(ihc_server, ["transfer-encoding: chunked"], chunks)
    assert status == 413 and json.loads(answer)["error"].startswith(f"Request body over {CAP:,} bytes")


def test_the_stats_need_the_key(ihc_server):
    url = ihc_server.url + STATS_PATH
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"x-api-key": "not-the-key"}).status_code == 403
    assert httpx.get(url, headers={"x-api-key": API_KEY}).json()["requests"] >= 0


SMALL_LIMITS = {
    "quick_heads": ["--header-timeout", "0.5"],
    "few_connections": ["--max-connections", "16", "--header-timeout", "60"],
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LocalServer]]:
    """Servers with small limits, by name (``SMALL_LIMITS``)."""
    folder = tmp_path_factory.mktemp("limited")
    servers = {
        name: LocalServer.launch(folder / f"{name}.log", *flags, api_key=API_KEY)
        for name, flags in SMALL_LIMITS.items()
    }
    try:
        yield {name: server.wait_ready() for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


def connect(server: LocalServer) -> socket.socket:
    url = urlsplit(server.url)
    return socket.create_connection((url.hostname, url.port), timeout=30)


def rest(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout if it never does)."""
    received = b""
    while piece := sock.recv(65536):
        received += piece
    return received


def test_a_request_head_over_the_cap_gets_400_and_the_connection_closed(ihc_server):
    with connect(ihc_server) as sock:
        sock.sendall(f"GET {STATS_PATH} HTTP/1.1\r\nhost: x\r\nx-long: ".encode() + b"a" * (100 * 1024))
        assert rest(sock).startswith(b"HTTP/1.1 400 ")


def test_a_connection_that_never_ends_its_request_head_is_closed(limited):
    with connect(limited["quick_heads"]) as sock:
        sock.sendall(f"GET {STATS_PATH} HTTP/1.1\r\nhost: x\r\n".encode())
        assert rest(sock) == b""


def test_idle_connections_past_half_the_cap_are_closed_oldest_first_and_a_keyed_request_answers(limited):
    server = limited["few_connections"]
    with contextlib.ExitStack() as stack:
        idle = [stack.enter_context(connect(server)) for _ in range(24)]
        assert httpx.get(server.url + STATS_PATH, headers={"x-api-key": API_KEY}).status_code == 200
        assert [rest(sock) for sock in idle[:16]] == [b""] * 16
        for sock in idle[16:]:
            sock.setblocking(False)
        still_open = sum(_open(sock) for sock in idle[16:])
    assert 0 < still_open <= 8


def _open(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True


def test_the_server_limits_reach_uvicorn():
    limits = ServerLimits(
        max_header_bytes=4096, header_seconds=2.5, keep_alive_seconds=3, max_connections=40, backlog=300
    )
    config = server_config(create_app(frozenset({API_KEY})), limits)
    config.load()
    assert issubclass(config.http_protocol_class, H11Protocol)
    assert config.http_protocol_class.limits == limits
    configured = (config.h11_max_incomplete_event_size, config.limit_concurrency, config.timeout_keep_alive)
    assert (*configured, config.backlog) == (4096, 40, 3, 300)
    assert ServerLimits().backlog == 4096  # Linux's own cap by default: deeper than uvicorn's 2048


def test_while_the_server_accepts_nothing_the_kernel_queues_its_backlog_of_connections(tmp_path):
    """A full queue drops a connection's SYN, whose client then waits TCP's 1 s: the queue must be deep."""
    with LocalServer.launch(tmp_path / "server.log", "--backlog", "100", api_key=API_KEY) as server:
        address = (urlsplit(server.url).hostname, urlsplit(server.url).port)
        queued = 0
        os.kill(server.process.pid, signal.SIGSTOP)  # as busy as it gets
        try:
            with contextlib.ExitStack() as stack, contextlib.suppress(OSError):
                while queued < 1000:  # until a SYN is dropped: the connect times out
                    stack.enter_context(socket.create_connection(address, timeout=0.5))
                    queued += 1
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert httpx.get(server.url + STATS_PATH, headers={"x-api-key": API_KEY}).status_code == 200
    assert 100 <= queued <= 102
