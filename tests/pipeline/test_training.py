"""Training the local IHC engine on a database, using the trained type, and comparing models."""

from __future__ import annotations

import pytest

from attribution import ConfigError, load_settings, run
from attribution.pipeline.comparison import compare_models_on_range
from attribution.pipeline.training import train_conversion_type
from attribution.sample_data.generate import generate_database
from attribution.store.parameters import list_conversion_types
from attribution.warehouse.engine import connect
from tests.cases import PAID
from tests.commands import attribution
from tests.oracle import check_invariants


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("training") / "gen.db"
    generate_database(path, sessions=30_000, conversions=600, days=6, seed=5)
    return str(path)


def test_training_stores_a_new_version_each_time_and_runs_use_it(generated, tmp_path):
    first = train_conversion_type(load_settings(db=generated, conv_type_id="all_markets"))
    second = train_conversion_type(load_settings(db=generated, conv_type_id="all_markets"))
    assert (first.version, second.version) == (1, 2) and first.journeys > 0
    assert any("recommends at least 15,000" in warning for warning in first.warnings)
    engine = connect(generated)
    assert list_conversion_types(engine)["conv_type_id"].to_list() == ["all_markets"]
    engine.dispose()
    trained = run(
        load_settings(db=generated, out=str(tmp_path / "t"), conv_type_id="all_markets", formats=("csv",))
    )
    untrained = run(load_settings(db=generated, out=str(tmp_path / "u"), formats=("csv",)))
    assert trained.credit_total == pytest.approx(untrained.credit_total)
    assert (tmp_path / "t/channel_reporting.csv").read_text() != (
        tmp_path / "u/channel_reporting.csv"
    ).read_text()


def test_the_built_in_default_type_cannot_be_overwritten(generated):
    with pytest.raises(ConfigError, match="built-in"):
        train_conversion_type(load_settings(db=generated, conv_type_id="default"))


@pytest.mark.parametrize(
    "model", ["markov", "shapley", "time-decay", "position-based", "first-touch", "last-non-direct"]
)
def test_every_local_model_runs_through_the_pipeline_keeping_the_invariants(make_sqlite, tmp_path, model):
    db = make_sqlite(PAID)
    summary = run(load_settings(db=db, out=str(tmp_path), model=model, formats=("csv",)))
    assert summary.credit_total == pytest.approx(summary.journeys)
    check_invariants(PAID, db)


def test_model_options_reach_their_model_and_are_refused_by_others(make_sqlite, tmp_path):
    db = make_sqlite(PAID)
    run(load_settings(db=db, out=str(tmp_path), model="position-based", position_weights=(0.5, 0, 0.5)))
    with pytest.raises(ConfigError, match="has no option 'order'"):
        run(load_settings(db=db, out=str(tmp_path), model="linear", markov_order=2))


def test_compare_puts_models_side_by_side_with_equal_totals(generated):
    wide = compare_models_on_range(load_settings(db=generated), ["last-touch", "linear", "markov"])
    assert wide.columns == ["channel_name", "last-touch", "linear", "markov"]
    totals = [wide[column].sum() for column in wide.columns[1:]]
    assert totals == pytest.approx([totals[0]] * 3)


def test_compare_shows_the_global_split_of_the_path_models_on_request(generated):
    """Issue 26 item 4: the global split as an option; the per-journey split stays the default."""
    settings = load_settings(db=generated)
    journey = compare_models_on_range(settings, ["linear", "markov"])
    whole = compare_models_on_range(settings, ["linear", "markov"], split="global")
    assert whole["linear"].to_list() == pytest.approx(journey["linear"].to_list())
    assert whole["markov"].sum() == pytest.approx(journey["markov"].sum())
    assert whole["markov"].to_list() != pytest.approx(journey["markov"].to_list())
    shown = attribution("compare", "--db", generated, "--model", "markov", "--split", "global")
    assert shown.returncode == 0 and "global" in shown.stdout and "Direct Traffic" in shown.stdout
    refused = attribution("compare", "--db", generated, "--model", "markov", "--split", "channel")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "Error: Bad credit split 'channel': expected 'journey' or 'global'"


def test_the_cli_trains_and_compares(generated):
    trained = attribution("train-ihc", "--db", generated, "--conv-type-id", "cli_type")
    assert trained.returncode == 0 and "Stored IHC parameters 'cli_type'" in trained.stdout
    compared = attribution("compare", "--db", generated, "--model", "linear", "--model", "ihc")
    assert compared.returncode == 0 and "Channel credit by model" in compared.stdout


@pytest.mark.parametrize(
    "command", [["train-ihc", "--conv-type-id", "empty_range"], ["compare", "--model", "linear"]]
)
def test_an_empty_range_is_one_line_naming_the_range(make_sqlite, command):
    result = attribution(*command, "--db", make_sqlite(PAID), "--start", "2030-01-01")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: No journeys in range [2030-01-01")
    assert len(result.stderr.strip().splitlines()) == 1
