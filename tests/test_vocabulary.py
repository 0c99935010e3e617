"""The vocabulary's meanings that must agree with the tables and frames built from them."""

from __future__ import annotations

import polars as pl

from attribution.vocabulary import (
    CREDIT_SCHEMA,
    IHC_CREDIT_SCHEMA,
    STORED_CREDIT_SCHEMA,
    in_build_order,
    in_journey_order,
)
from attribution.warehouse.bulk import polars_schema
from attribution.warehouse.tables import LABEL_COLUMNS, attribution_customer_journey, staged_credits


def test_the_stored_credit_frame_is_the_credit_table_column_for_column():
    assert polars_schema(attribution_customer_journey) == STORED_CREDIT_SCHEMA
    assert list(polars_schema(attribution_customer_journey)) == list(STORED_CREDIT_SCHEMA)


def test_staged_credit_holds_every_stored_credit_column():
    assert polars_schema(staged_credits, list(STORED_CREDIT_SCHEMA)) == STORED_CREDIT_SCHEMA


def test_each_credit_frame_is_the_stored_one_without_its_label_and_journey_detail():
    stored = {name: kind for name, kind in STORED_CREDIT_SCHEMA.items() if name not in LABEL_COLUMNS}
    assert CREDIT_SCHEMA.items() <= IHC_CREDIT_SCHEMA.items() <= stored.items()


def test_the_two_journey_orders_differ_only_in_the_order_of_journeys():
    rows = pl.DataFrame(
        {
            "conv_id": ["b", "b", "a"],
            "conv_ts": ["2023-09-01 10:00:00", "2023-09-01 10:00:00", "2023-09-02 10:00:00"],
            "timestamp": ["2023-09-01 09:00:00", "2023-09-01 08:00:00", "2023-09-01 07:00:00"],
            "session_id": ["s2", "s1", "s3"],
        }
    )
    built = in_build_order(rows)
    assert built["session_id"].to_list() == ["s1", "s2", "s3"]  # journeys by conversion time
    assert in_journey_order(built) is built  # journeys together, in time order: kept as they are
    assert in_journey_order(rows)["session_id"].to_list() == ["s3", "s1", "s2"]  # sorted by conversion id
