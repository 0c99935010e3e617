"""Trained IHC parameters stored per conversion type and version, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine

from attribution.errors import ConfigError
from attribution.models import IHCParameters
from attribution.store.parameters import (
    ihc_parameters,
    list_conversion_types,
    load_parameters,
    save_parameters,
)
from attribution.warehouse.engine import connect
from attribution.warehouse.tables import metadata

FIRST = IHCParameters(closer_weight=0.3, channel_weights={"closer": {"Referral": 1.25}})
SECOND = IHCParameters(closer_weight=0.4)


@pytest.fixture
def engine(backend: Callable[[], str]) -> Iterator[Engine]:
    engine = connect(backend(), must_exist=False)
    metadata.create_all(engine, tables=[ihc_parameters])
    yield engine
    engine.dispose()


def test_each_save_is_a_new_version_and_loading_gives_the_latest(engine):
    assert save_parameters(engine, "all_markets", FIRST, journeys=20_000) == 1
    assert save_parameters(engine, "all_markets", SECOND, journeys=25_000) == 2
    assert load_parameters(engine, "all_markets") == SECOND
    assert load_parameters(engine, "all_markets", version=1) == FIRST


def test_versions_are_counted_per_conversion_type(engine):
    save_parameters(engine, "all_markets", FIRST, journeys=1)
    assert save_parameters(engine, "new_customers", SECOND, journeys=1) == 1


def test_the_built_in_default_is_the_untrained_engine_and_cannot_be_overwritten(engine):
    assert load_parameters(engine, "default") == IHCParameters()
    with pytest.raises(ConfigError, match="built-in"):
        save_parameters(engine, "default", FIRST, journeys=1)


def test_an_unknown_conversion_type_is_one_line_naming_the_known_ones(engine):
    save_parameters(engine, "all_markets", FIRST, journeys=1)
    with pytest.raises(ConfigError) as error:
        load_parameters(engine, "new_customer")
    message = str(error.value)
    assert "'new_customer'" in message and "default, all_markets" in message and "\n" not in message


def test_an_unknown_version_names_the_versions_there_are(engine):
    save_parameters(engine, "all_markets", FIRST, journeys=1)
    with pytest.raises(ConfigError, match=r"no version 3\. Versions: 1"):
        load_parameters(engine, "all_markets", version=3)


def test_the_listing_shows_the_latest_version_of_each_type(engine):
    save_parameters(engine, "b_type", FIRST, journeys=10)
    save_parameters(engine, "a_type", FIRST, journeys=20)
    save_parameters(engine, "a_type", SECOND, journeys=30)
    listing = list_conversion_types(engine)
    assert listing.select("conv_type_id", "version", "journeys").rows() == [
        ("a_type", 2, 30),
        ("b_type", 1, 10),
    ]


def test_without_the_table_only_the_built_in_type_is_known(backend):
    bare = connect(backend(), must_exist=False)
    assert list_conversion_types(bare).is_empty()
    with pytest.raises(ConfigError, match="Known conversion types: default "):
        load_parameters(bare, "all_markets")
    bare.dispose()


def test_parameters_stored_by_an_earlier_form_of_the_engine_are_refused_saying_what_to_do(engine):
    save_parameters(engine, "all_markets", FIRST, journeys=1)
    with engine.begin() as conn:
        conn.execute(ihc_parameters.update().values(parameters='{"closer_hours": 24.0, "shape": 2.0}'))
    with pytest.raises(ConfigError, match=r"version 1 was stored by an earlier form.*calibrate-ihc"):
        load_parameters(engine, "all_markets")
