"""The contract both ways: request bodies exactly as docs/ihc-api.md shows them, responses parsed from it."""

from __future__ import annotations

import json

import polars as pl
import pytest
from pydantic import ValidationError

from attribution.ihc_api import ClientConfig
from attribution.ihc_api.contract import (
    ComputeRequest,
    ComputeResponse,
    credit_frame,
    partial_failures,
    request_body,
)
from attribution.models.redistribution import RedistributionParameter
from attribution.vocabulary import JOURNEY_SCHEMA

DOCUMENTED_REQUEST = {
    "customer_journeys": [
        {"conversion_id": "c1", "session_id": "s1", "timestamp": "2023-09-01 10:00:00",
         "channel_label": "Paid Search Brand", "holder_engagement": 1, "closer_engagement": 0,
         "conversion": 0, "impression_interaction": 0},
        {"conversion_id": "c1", "session_id": "s2", "timestamp": "2023-09-02 18:30:12",
         "channel_label": "Direct Traffic", "holder_engagement": 1, "closer_engagement": 1,
         "conversion": 1, "impression_interaction": 0},
    ]
}  # fmt: skip

DOCUMENTED_RESPONSE = """{"statusCode": 200,
 "value": [{"conversion_id": "c1", "session_id": "s1", "initializer": 1.0, "holder": 0.149, "closer": 0.499, "ihc": 0.5388},
           {"conversion_id": "c1", "session_id": "s2", "initializer": 0.0, "holder": 0.851, "closer": 0.501, "ihc": 0.4612}],
 "partialFailureErrors": []}"""

RULE = {
    "direction": "earlier_sessions_only",
    "receive_threshold": 0,
    "redistribution_channel_labels": ["Direct Traffic"],
}


def documented_journey() -> pl.DataFrame:
    rows = [
        {"conv_id": "c1", "session_id": "s1", "timestamp": "2023-09-01 10:00:00", "channel_name": "Paid Search Brand",
         "holder_engagement": 1, "closer_engagement": 0, "conversion": 0},
        {"conv_id": "c1", "session_id": "s2", "timestamp": "2023-09-02 18:30:12", "channel_name": "Direct Traffic",
         "holder_engagement": 1, "closer_engagement": 1, "conversion": 1},
    ]  # fmt: skip
    frame = pl.DataFrame(rows).with_columns(
        conv_ts=pl.lit("2023-09-02 18:30:12"), revenue=pl.lit(10.0), impression_interaction=pl.lit(0)
    )
    return frame.cast({**JOURNEY_SCHEMA, "conversion": pl.Int8}).select(*JOURNEY_SCHEMA, "conversion")


def test_the_request_body_is_the_documented_flat_list_of_session_rows():
    assert json.loads(request_body(documented_journey())) == DOCUMENTED_REQUEST


def test_ids_are_sent_as_strings_even_when_the_frame_holds_numbers():
    frame = documented_journey().with_columns(conv_id=pl.lit(7), session_id=pl.Series([1, 2]))
    rows = json.loads(request_body(frame))["customer_journeys"]
    assert [(row["conversion_id"], row["session_id"]) for row in rows] == [("7", "1"), ("7", "2")]


def test_the_request_body_passes_the_shared_request_model():
    request = ComputeRequest.model_validate_json(request_body(documented_journey()))
    assert len(request.customer_journeys) == 2


def test_a_redistribution_parameter_is_sent_with_only_the_phases_given():
    parameter = RedistributionParameter.model_validate({"closer": RULE})
    body = json.loads(request_body(documented_journey(), parameter))
    assert body["redistribution_parameter"] == {"closer": {**RULE, "receive_threshold": 0.0}}


@pytest.mark.parametrize(
    "rule",
    [
        {**RULE, "direction": "sideways"},
        {**RULE, "receive_threshold": 1.5},
        {**RULE, "unknown_field": 1},
        {"direction": "any_session"},
    ],
)
def test_a_redistribution_rule_outside_the_contract_is_refused_when_the_client_is_built(rule):
    with pytest.raises(ValidationError):
        ClientConfig(
            base_url="http://x", api_key="k", conv_type_id="default", redistribution={"holder": rule}
        )


def test_the_documented_response_parses_into_a_credit_frame_with_the_journey_names():
    frame = credit_frame(ComputeResponse.model_validate_json(DOCUMENTED_RESPONSE))
    assert frame.columns == ["conv_id", "session_id", "ihc", "initializer", "holder", "closer"]
    assert frame.rows() == [("c1", "s1", 0.5388, 1.0, 0.149, 0.499), ("c1", "s2", 0.4612, 0.0, 0.851, 0.501)]


def test_partial_failure_items_of_any_shape_are_kept():
    response = ComputeResponse.model_validate(
        {
            "statusCode": 206,
            "partialFailureErrors": [
                {"conversion_id": "c1", "statusCode": 406, "error": "bad timestamp"},
                {"conversionId": 2, "message": "unparseable"},
                "something went wrong",
                {"code": 406},
            ],
        }
    )
    named, loose = partial_failures(response)
    assert named == {"c1": "bad timestamp", "2": "unparseable"}
    assert loose == ["something went wrong", '{"code": 406}']


def test_a_response_without_status_code_is_not_accepted():
    with pytest.raises(ValidationError):
        ComputeResponse.model_validate_json('{"value": []}')
