"""The IHC client against real servers: credit, faults, isolation of bad journeys, quota, concurrency, secrecy."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import polars as pl
import pytest
from pydantic import SecretStr, ValidationError

from attribution.errors import (
    AuthenticationError,
    IHCApiError,
    IncompleteAttributionError,
    ServiceRefusedError,
    ServiceUnreachableError,
)
from attribution.ihc_api import BatchOutcome, IHCApiAttributor
from attribution.ihc_api.contract import API_KEY_HEADER
from attribution.models import IHC, validate_credits
from tests.ihc_api.conftest import journeys_frame, server_stats, with_conversion_time
from tests.servers import API_KEY, ConnectionCounter, nowhere

LENGTHS = [1, 2, 3, 5, 8, 1, 4, 2, 6, 3, 1, 7]


def run(config, frame: pl.DataFrame) -> tuple[object, list[BatchOutcome]]:
    outcomes: list[BatchOutcome] = []
    return IHCApiAttributor(config).attribute_batches(frame, outcomes.append), outcomes


def credited(outcomes: list[BatchOutcome]) -> pl.DataFrame:
    return pl.concat([outcome.credits for outcome in outcomes])


def failed(outcomes: list[BatchOutcome]) -> pl.DataFrame:
    return pl.concat([outcome.failures for outcome in outcomes])


def assert_every_journey_credited_once(frame: pl.DataFrame, outcomes: list[BatchOutcome]) -> None:
    assert failed(outcomes).is_empty()
    validate_credits(frame, credited(outcomes))  # every session exactly once, each journey summing to 1


class Corrupting(httpx.AsyncHTTPTransport):
    """A real transport that alters each answer's JSON on the way back (for answers our server never gives)."""

    def __init__(self, change) -> None:
        super().__init__()
        self.change = change

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        body = json.loads(await response.aread())
        self.change(body)
        return httpx.Response(response.status_code, json=body)


def test_credit_from_the_api_matches_the_local_engine_and_passes_the_pipeline_check(ihc_server, config_for):
    frame = journeys_frame(LENGTHS, channels=("Referral", "Direct Traffic", "FB & IG Ads"))
    credits = IHCApiAttributor(config_for(ihc_server, max_journeys=5)).attribute(frame)
    validate_credits(frame, credits)
    local = IHC().attribute(with_conversion_time(frame))
    both = credits.join(local, on=["conv_id", "session_id"])
    assert both.height == frame.height and (both["ihc"] - both["ihc_right"]).abs().max() <= 5e-4


def test_ihc_is_renormalised_so_each_journey_sums_to_1_to_machine_precision(ihc_server, config_for):
    credits = IHCApiAttributor(config_for(ihc_server)).attribute(journeys_frame([3, 7, 11, 13]))
    assert (credits.group_by("conv_id").agg(pl.col("ihc").sum())["ihc"] - 1).abs().max() < 1e-12


def test_each_request_is_handed_over_as_it_completes_with_every_journey_once(ihc_server, config_for):
    frame = journeys_frame(LENGTHS)
    report, outcomes = run(config_for(ihc_server, max_journeys=3, max_sessions=12), frame)
    assert sorted(outcome.index for outcome in outcomes) == list(range(report.batches_planned))
    assert all(outcome.credits["conv_id"].n_unique() <= 3 for outcome in outcomes)
    assert_every_journey_credited_once(frame, outcomes)
    assert (report.journeys_ok, report.requests, report.retries) == (12, report.batches_planned, 0)


def test_a_refused_key_stops_at_once_and_the_key_appears_nowhere(ihc_server, config_for, caplog, capfd):
    secret = "wrong-key-7d1e0b9a"
    caplog.set_level(logging.DEBUG)
    seen_before = server_stats(ihc_server)["requests"]
    with pytest.raises(AuthenticationError) as raised:
        run(config_for(ihc_server, api_key=secret, max_journeys=1, concurrency=2), journeys_frame(LENGTHS))
    assert server_stats(ihc_server)["requests"] - seen_before <= 2  # of 12 requests
    error = raised.value
    assert "refused the API key (HTTP 403" in str(error)
    captured = capfd.readouterr()
    for text in (str(error), repr(error), repr(error.args), caplog.text, captured.out, captured.err):
        assert secret not in text
    assert secret not in ihc_server.log.read_text()
    assert repr(config_for(ihc_server, api_key=secret)).count("**********") == 1


def test_the_key_is_hidden_in_every_repr(ihc_server, config_for):
    config = config_for(ihc_server)
    attributor = IHCApiAttributor(config)
    assert API_KEY not in repr(config) and API_KEY not in repr(attributor) and API_KEY not in str(config)


def test_an_unknown_conversion_type_stops_the_run_with_a_clear_error(ihc_server, config_for):
    with pytest.raises(ServiceRefusedError, match="Unknown conv_type_id 'new_customers'"):
        run(config_for(ihc_server, conv_type_id="new_customers"), journeys_frame([2]))


def test_a_journey_with_a_malformed_timestamp_fails_alone_after_one_retry_on_its_own(ihc_server, config_for):
    frame = journeys_frame(LENGTHS).with_columns(
        timestamp=pl.when(pl.col("session_id") == "c3s0001")
        .then(pl.lit("2023-09-01T10:00"))
        .otherwise("timestamp")
    )
    report, outcomes = run(config_for(ihc_server), frame)
    failures = failed(outcomes)
    assert failures.select("conv_id", "reason", "attempts").rows() == [("c3", "partial_failure", 1)]
    assert "timestamp not in" in failures["last_error"][0]
    assert report.requests == 2  # the full request, then the failed journey once on its own
    validate_credits(frame.filter(pl.col("conv_id") != "c3"), credited(outcomes))


def test_a_journey_the_service_rejects_is_isolated_by_halving_the_request(ihc_server, config_for):
    frame = journeys_frame(LENGTHS).with_columns(
        holder_engagement=pl.when(pl.col("conv_id") == "c6")
        .then(7)
        .otherwise("holder_engagement")
        .cast(pl.Int8)
    )
    report, outcomes = run(config_for(ihc_server), frame)
    failures = failed(outcomes)
    assert failures.select("conv_id", "reason").rows() == [("c6", "rejected")]
    assert "HTTP 400" in failures["last_error"][0] and "holder_engagement" in failures["last_error"][0]
    assert report.requests <= 1 + 2 * 4  # halving 12 journeys takes at most 4 levels of two requests
    validate_credits(frame.filter(pl.col("conv_id") != "c6"), credited(outcomes))


def test_a_request_over_the_servers_caps_is_halved_until_it_fits(fault_servers, config_for):
    frame = journeys_frame(LENGTHS)  # the server takes at most 3 journeys and 8 sessions per request
    report, outcomes = run(config_for(fault_servers["small_caps"], max_journeys=6, max_sessions=20), frame)
    assert_every_journey_credited_once(frame, outcomes)
    assert report.requests > report.batches_planned


def test_server_errors_are_retried_until_every_journey_is_attributed(fault_servers, config_for):
    frame = journeys_frame(LENGTHS)
    report, outcomes = run(config_for(fault_servers["errors"], max_journeys=2, max_retries=10), frame)
    assert_every_journey_credited_once(frame, outcomes)
    assert report.retries > 0


def test_throttled_requests_wait_for_retry_after_before_trying_again(fault_servers, config_for):
    frame = journeys_frame(LENGTHS)
    config = config_for(
        fault_servers["throttled"], max_journeys=2, concurrency=1, max_retries=10, backoff_base=0.001
    )
    began = time.perf_counter()
    report, outcomes = run(config, frame)
    elapsed = time.perf_counter() - began
    assert_every_journey_credited_once(frame, outcomes)
    assert report.retries > 0 and elapsed >= 0.3 * report.retries  # every retry waited the server's 0.3 s


@pytest.mark.parametrize("server", ["stalling", "stalling_forever"])
def test_a_retry_after_past_the_longest_backoff_is_capped_and_counted(
    fault_servers, config_for, caplog, server
):
    """Issue 21 item 13: `Retry-After: 86400` or `inf` was obeyed ("retrying in inf s"), so neither
    --max-retries nor the circuit breaker ever applied."""
    config = config_for(fault_servers[server], max_retries=2, backoff_max=0.05)
    caplog.set_level(logging.WARNING, logger="attribution")
    outcomes: list[BatchOutcome] = []
    sending = IHCApiAttributor(config).attribute_batches_async(journeys_frame([2]), outcomes.append)
    ended = asyncio.run(asyncio.wait_for(sending, 60))  # guards the test only: a day's wait would never end
    assert (ended.requests, ended.retries, ended.journeys_failed) == (3, 2, 1)
    assert failed(outcomes).select("reason", "attempts").rows() == [("retries_exhausted", 3)]
    waits = [record.getMessage() for record in caplog.records if "retrying in" in record.getMessage()]
    assert len(waits) == 2 and all(
        wait.endswith("retrying in 0.05 s (the service asked for more)") for wait in waits
    )


def test_dropped_connections_are_retried(fault_servers, config_for):
    frame = journeys_frame(LENGTHS)
    report, outcomes = run(config_for(fault_servers["dropping"], max_journeys=2, max_retries=10), frame)
    assert_every_journey_credited_once(frame, outcomes)
    assert report.retries > 0


def test_a_dropped_connection_reaches_the_client_as_a_connection_error(fault_servers, config_for):
    _, outcomes = run(
        config_for(fault_servers["dropping"], max_journeys=1, max_retries=0), journeys_frame(LENGTHS)
    )
    failures = failed(outcomes)
    assert not failures.is_empty() and set(failures["reason"]) == {"retries_exhausted"}
    assert all(error.startswith("connection error (") for error in failures["last_error"])  # reset or cut off


def test_requests_that_time_out_are_retried_then_recorded_as_failed(fault_servers, config_for):
    frame = journeys_frame([2, 3])
    report, outcomes = run(config_for(fault_servers["slow"], timeout=0.1, max_retries=1), frame)
    failures = failed(outcomes)
    assert failures.select("conv_id", "reason", "attempts").sort("conv_id").rows() == [
        ("c0", "retries_exhausted", 2),
        ("c1", "retries_exhausted", 2),
    ]
    assert failures["last_error"][0] == "timeout (ReadTimeout)"
    assert (report.journeys_failed, report.journeys_ok, report.retries) == (2, 0, 1)


def test_malformed_answers_are_retried(fault_servers, config_for):
    frame = journeys_frame(LENGTHS)
    report, outcomes = run(config_for(fault_servers["malformed"], max_journeys=2, max_retries=10), frame)
    assert_every_journey_credited_once(frame, outcomes)
    assert report.retries > 0


def test_a_slowly_sent_answer_still_arrives_whole(fault_servers, config_for):
    frame = journeys_frame(LENGTHS)
    _, outcomes = run(config_for(fault_servers["slow_body"], timeout=1.0), frame)
    assert_every_journey_credited_once(frame, outcomes)


def test_an_answer_trickled_past_the_request_deadline_is_a_timeout_and_retried(fault_servers, config_for):
    # one byte every 50 ms: each read is quick, the whole answer would take seconds
    config = config_for(fault_servers["trickle"], timeout=1.0, max_retries=1)
    report, outcomes = run(config, journeys_frame([1]))
    failures = failed(outcomes)
    assert failures.select("conv_id", "reason", "attempts").rows() == [("c0", "retries_exhausted", 2)]
    assert failures["last_error"][0] == f"timeout (no whole answer within {config.request_deadline:g} s)"
    assert (report.journeys_ok, report.retries) == (0, 1)


def test_an_answer_over_the_size_cap_stops_the_run_in_one_line_naming_the_url_and_cap(
    fault_servers, config_for
):
    server = fault_servers["oversized"]  # 17 MiB of spaces after each answer: valid JSON, of any size
    with pytest.raises(ServiceRefusedError) as caught:
        run(config_for(server), journeys_frame([2, 3]))
    message = str(caught.value)
    assert f"The IHC API at {server.url} sent an answer over 16,777,216 bytes" in message
    assert "\n" not in message and API_KEY not in message


def test_requests_to_a_loopback_server_never_go_through_the_environments_proxy(
    ihc_server, config_for, monkeypatch
):
    frame = journeys_frame(LENGTHS)
    with ConnectionCounter() as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        for url in (ihc_server.url, ihc_server.url.replace("127.0.0.1", "localhost")):
            _, outcomes = run(config_for(ihc_server, base_url=url, max_retries=0), frame)
            assert_every_journey_credited_once(frame, outcomes)
    assert proxy.connections == 0


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.9.8.7", True),
        ("http://[::1]:8000", True),
        ("http://[::ffff:127.0.0.1]", True),
        ("http://LocalHost:80", True),
        ("http://api.localhost", True),
        ("https://api.ihc-attribution.com", False),
        ("http://10.0.0.1", False),
        ("http://128.0.0.1", False),
        ("http://localhost.example.com", False),
    ],
)
def test_which_urls_count_as_this_machine_and_bypass_proxies(ihc_server, config_for, url, loopback):
    assert config_for(ihc_server, base_url=url).loopback is loopback


def test_requests_to_a_remote_service_still_go_through_the_environments_proxy(
    config_for, ihc_server, monkeypatch
):
    with ConnectionCounter() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        config = config_for(ihc_server, base_url="http://ihc-api.invalid", max_retries=0)
        report, _ = run(config, journeys_frame([2]))
    assert proxy.connections >= 1 and report.journeys_failed == 1  # the proxy took it, and hung up


def test_with_errors_throttling_and_drops_together_every_journey_is_attributed_exactly_once(
    fault_servers, config_for
):
    frame = journeys_frame([1 + i % 9 for i in range(60)])
    report, outcomes = run(config_for(fault_servers["combined"], max_journeys=3, max_retries=12), frame)
    assert_every_journey_credited_once(frame, outcomes)
    assert report.journeys_ok == 60 and report.retries > 0


def test_with_nothing_listening_the_run_stops_after_the_connection_failures_in_a_row(config_for, ihc_server):
    config = config_for(ihc_server, base_url=nowhere(), max_journeys=2, max_connection_failures=3)
    with pytest.raises(ServiceUnreachableError) as raised:
        run(config, journeys_frame(LENGTHS))  # stopped by the breaker, not after 6 requests x 7 attempts
    message = str(raised.value)
    assert (
        "is unreachable (3 connection failures in a row, the last: connection error (ConnectError" in message
    )
    assert "12 of 12 journeys are left without credit" in message and "\n" not in message


def test_answers_even_5xx_and_429_never_open_the_circuit(fault_servers, config_for):
    frame = journeys_frame(LENGTHS)
    for server in (fault_servers["errors"], fault_servers["throttled"]):
        config = config_for(server, max_journeys=2, max_retries=30, max_connection_failures=1)
        report, outcomes = run(config, frame)
        assert_every_journey_credited_once(frame, outcomes)
        assert report.retries > 0


def test_the_quota_stops_the_run_cleanly_and_says_how_far_it_got(ihc_server, config_for):
    frame = journeys_frame(LENGTHS)
    config = config_for(ihc_server, max_journeys=2, concurrency=1, max_requests=2)
    report, outcomes = run(config, frame)
    assert len(outcomes) == 2 and report.stopped_at_quota and report.requests == 2
    assert (report.batches_done, report.batches_planned) == (2, 6)
    assert (report.journeys_ok, report.journeys_failed, report.journeys_unsent) == (4, 0, 8)
    with pytest.raises(IncompleteAttributionError, match=r"8 unsent \(request quota reached\)"):
        IHCApiAttributor(config).attribute(frame)


def test_no_more_requests_are_in_flight_than_the_concurrency(fault_servers, config_for):
    server = fault_servers["slow_body"]  # answers take 200 ms; no other test there goes beyond 4 at once
    report, _ = run(config_for(server, max_journeys=1, concurrency=4), journeys_frame(LENGTHS))
    assert report.journeys_ok == 12
    assert server_stats(server)["max_in_flight"] == 4


def test_a_rate_limit_spaces_the_requests(ihc_server, config_for):
    began = time.perf_counter()
    report, _ = run(config_for(ihc_server, max_journeys=2, rate_limit=10), journeys_frame(LENGTHS))
    assert report.requests == 6 and time.perf_counter() - began >= 0.5


def test_an_answer_missing_a_session_fails_only_that_journey_as_invalid(ihc_server, config_for):
    def drop_one_session(body: dict) -> None:
        body["value"] = [row for row in body["value"] if row["session_id"] != "c4s0002"]

    config = config_for(ihc_server, transport=Corrupting(drop_one_session))
    report, outcomes = run(config, journeys_frame(LENGTHS))
    failures = failed(outcomes)
    assert failures.select("conv_id", "reason", "last_error").rows() == [
        ("c4", "invalid_answer", "1 of 8 sessions missing from the answer")
    ]
    assert report.journeys_ok == 11 and "c4" not in credited(outcomes)["conv_id"]


def test_an_answer_whose_phase_does_not_sum_to_1_fails_that_journey(ihc_server, config_for):
    def skew(body: dict) -> None:
        for row in body["value"]:
            if row["session_id"] == "c2s0002":
                row["initializer"] += 0.01

    _, outcomes = run(config_for(ihc_server, transport=Corrupting(skew)), journeys_frame(LENGTHS))
    assert failed(outcomes).select("conv_id", "reason", "last_error").rows() == [
        ("c2", "invalid_answer", "initializer sums to 1.01")
    ]


def test_a_truncated_journey_sends_its_latest_sessions_and_gives_the_older_ones_zero(ihc_server, config_for):
    frame = journeys_frame([8, 2])
    report, outcomes = run(config_for(ihc_server, max_sessions=5), frame)
    credits = credited(outcomes)
    validate_credits(frame, credits)
    oldest = credits.filter(pl.col("session_id").is_in(["c0s0000", "c0s0001", "c0s0002"]))
    assert oldest.select("ihc", "initializer", "holder", "closer").sum().row(0) == (0.0, 0.0, 0.0, 0.0)
    assert (report.journeys_truncated, report.journeys_ok) == (1, 2)


def test_a_skipped_journey_is_reported_and_makes_attribute_raise(ihc_server, config_for):
    config = config_for(ihc_server, max_sessions=5, long_journey_policy="skip")
    report, _ = run(config, journeys_frame([8, 2]))
    assert (report.journeys_skipped, report.journeys_ok, report.journeys_unsent) == (1, 1, 0)
    with pytest.raises(IncompleteAttributionError, match="1 skipped as too long"):
        IHCApiAttributor(config).attribute(journeys_frame([8, 2]))


def test_a_redistribution_rule_in_the_config_reaches_the_service(ihc_server, config_for):
    rule = {"direction": "earlier_sessions_only", "redistribution_channel_labels": ["Direct Traffic"]}
    frame = journeys_frame(
        [6]
    )  # Referral, Direct, Referral, Direct, ...: Direct closers hand over to session 0
    credits = IHCApiAttributor(config_for(ihc_server, redistribution={"closer": rule})).attribute(frame)
    closer = credits.join(frame, on=["conv_id", "session_id"]).filter(
        pl.col("channel_name") == "Direct Traffic"
    )
    assert closer["closer"].sum() == 0.0
    validate_credits(frame, credits)


def test_a_one_character_key_is_hidden_without_mangling_the_message(ihc_server, config_for):
    with pytest.raises(AuthenticationError) as raised:
        run(config_for(ihc_server, api_key="e"), journeys_frame([2]))
    assert f"(HTTP 403: The API key in the {API_KEY_HEADER} header was refused.)" in str(raised.value)


@pytest.mark.parametrize(
    "key", ["k3y-9f2\r", "k3y-9f2\n", "k3y 9f2", "\tk3y-9f2", "k3y\x00-9f2", "k3y-9f2\u00e9", "k3y\u00a0-9f2"]
)
def test_a_key_other_than_printable_ascii_is_refused_when_configured(ihc_server, config_for, key):
    """Issue 21 item 11: a non-ASCII key passed, then failed each request with a UnicodeEncodeError that
    quoted a character of the key and its position."""
    with pytest.raises(ValidationError) as raised:
        config_for(ihc_server, api_key=key)
    message = str(raised.value)
    assert "whitespace or a control character" in message and "k3y" not in message
    assert "printable ASCII" in message and message.isascii()


FORGED = "\r\n2026-12-07 12:00:00 INFO forged\x1b[2J"


def test_the_services_words_reach_the_failures_on_one_printable_line(ihc_server, config_for):
    """Issue 21 item 11: an error body's CR/LF reached attribution_failures.last_error as it came."""

    def forge(body: dict) -> None:
        for error in body.get("partialFailureErrors") or []:
            error["error"] += FORGED

    frame = journeys_frame([2, 3]).with_columns(
        timestamp=pl.when(pl.col("session_id") == "c1s0001")
        .then(pl.lit("2023-09-01T10"))
        .otherwise("timestamp")
    )
    _, outcomes = run(config_for(ihc_server, transport=Corrupting(forge)), frame)
    (last_error,) = failed(outcomes)["last_error"]
    assert "timestamp not in" in last_error and "INFO forged" in last_error
    assert not {"\r", "\n", "\x1b"} & set(last_error)


def test_a_refusal_quoting_a_line_break_is_one_line_in_the_error_and_the_server_log(ihc_server, config_for):
    """Issue 21 item 11: the server logged the conv_type_id it refused with its CR/LF, and the client's error
    quoted the body as it came."""
    with pytest.raises(ServiceRefusedError) as refused:
        run(config_for(ihc_server, conv_type_id=f"none{FORGED}"), journeys_frame([2]))
    message = str(refused.value)
    assert "Unknown conv_type_id 'none 2026-12-07 12:00:00 INFO forged[2J'" in message
    assert not {"\r", "\n", "\x1b"} & set(message)
    log = ihc_server.log.read_bytes()
    assert b"conv_type_id 'none 2026-12-07 12:00:00 INFO forged[2J'" in log
    assert b"\n2026-12-07 12:00:00 INFO forged" not in log


def test_a_request_the_http_library_refuses_to_build_stops_at_once_quoting_nothing(
    ihc_server, config_for, caplog
):
    secret = "slipped-through-5c1e"
    config = config_for(ihc_server).model_copy(update={"api_key": SecretStr(f"{secret}\r")})  # not validated
    caplog.set_level(logging.DEBUG, logger="attribution")
    outcomes: list[BatchOutcome] = []
    with pytest.raises(IHCApiError, match="could not be sent") as raised:
        IHCApiAttributor(config).attribute_batches(journeys_frame([2, 3]), outcomes.append)
    assert outcomes == [] and "retrying" not in caplog.text  # terminal: neither retried nor recorded
    assert secret not in str(raised.value) and secret not in caplog.text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_retries", 10**6),
        ("timeout", float("inf")),
        ("backoff_max", float("inf")),
        ("backoff_base", 10**9),
        ("concurrency", 10**6),
        ("max_sessions", 10**12),
        ("rate_limit", float("nan")),
    ],
)
def test_the_clients_numbers_are_bounded(ihc_server, config_for, name, value):
    """Issue 21 item 12: a timeout or backoff of inf, or a million retries, passed the client's config."""
    with pytest.raises(ValidationError, match=name):
        config_for(ihc_server, **{name: value})
