"""Model comparison: channel credit and attributed revenue per model, long and wide."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from attribution.errors import IntegrityError
from attribution.models import Attributor, FirstTouch, LastTouch, Linear, get_model
from attribution.models.comparison import compare_models, wide_comparison
from attribution.models.path_model import global_credit
from attribution.vocabulary import journey_paths
from tests.models.path_cases import journeys_frame

JOURNEYS = journeys_frame({"c1": ("A", "B"), "c2": ("B",), "c3": ("A", "C", "C")}).with_columns(
    revenue=pl.col("conv_id").replace_strict({"c1": 100.0, "c2": 50.0, "c3": 30.0})
)
MODELS = {"last-touch": LastTouch(), "first-touch": FirstTouch(), "linear": Linear()}


def test_each_model_totals_credit_and_revenue_by_channel():
    long = compare_models(JOURNEYS, MODELS)
    rows = {(r["model"], r["channel_name"]): (r["credit"], r["revenue"]) for r in long.iter_rows(named=True)}
    assert rows[("first-touch", "A")] == (2.0, 130.0)
    assert rows[("last-touch", "C")] == (1.0, 30.0)
    assert rows[("linear", "C")] == pytest.approx((2 / 3, 20.0))
    assert rows[("last-touch", "A")] == (0.0, 0.0)


def test_every_model_hands_out_every_conversion_and_all_the_revenue():
    totals = (
        compare_models(JOURNEYS, MODELS).group_by("model").agg(pl.sum("credit", "revenue", "credit_share"))
    )
    assert totals["credit"].to_list() == pytest.approx([3.0] * 3)
    assert totals["revenue"].to_list() == pytest.approx([180.0] * 3)
    assert totals["credit_share"].to_list() == pytest.approx([1.0] * 3)


def test_the_wide_form_has_a_column_per_model_in_the_order_given():
    wide = wide_comparison(compare_models(JOURNEYS, MODELS), "revenue")
    assert wide.columns == ["channel_name", "last-touch", "first-touch", "linear"]
    assert wide.row(0) == ("A", 0.0, 130.0, pytest.approx(60.0))


def test_a_model_breaking_the_credit_invariant_is_refused():
    class Broken(Attributor):
        name = "broken"

        def attribute(self, journeys):
            return journeys.select("conv_id", "session_id", ihc=pl.lit(1.0))

    with pytest.raises(IntegrityError):
        compare_models(JOURNEYS, {"broken": Broken()})


NULLS = journeys_frame({"n1": ("A",), "n2": ("C", "A"), "n3": ("B", "C")}).select(
    pl.col("conv_id").alias("path_id"), "timestamp", "session_id", "channel_name"
)


@pytest.mark.parametrize("name", ["markov", "shapley"])
def test_the_global_split_gives_each_channel_its_share_of_the_scores_times_the_conversions(name):
    """Issue 26 item 4: ChannelAttribution's figure, from the same scores the per-journey split uses."""
    model = get_model(name, null_paths=NULLS)
    long = compare_models(JOURNEYS, {name: model, "linear": Linear()}, split="global")
    ours = long.filter(model=name)
    scores = model.trained_on(journey_paths(JOURNEYS)).trained_scores
    expected = global_credit(scores, 3)
    assert dict(zip(ours["channel_name"], ours["credit"], strict=True)) == pytest.approx(expected, abs=1e-12)
    assert ours["credit"].sum() == pytest.approx(3.0)
    assert ours["revenue"].sum() == pytest.approx(180.0)
    assert (ours["credit"] >= 0).all()
    journey_split = compare_models(JOURNEYS, {"linear": Linear()})
    assert_frame_equal(
        long.filter(model="linear"), journey_split
    )  # a model without scores keeps its one split


def test_the_two_splits_differ_where_a_channel_converts_alone_more_than_its_share():
    """The per-journey split keeps each conversion inside its journey: B, alone in c2, gets all of it
    there; the global split does not look inside journeys."""
    model = get_model("markov", null_paths=NULLS)
    journey = compare_models(JOURNEYS, {"markov": model}).filter(channel_name="B")["credit"].item()
    whole = (
        compare_models(JOURNEYS, {"markov": model}, split="global").filter(channel_name="B")["credit"].item()
    )
    assert journey >= 1.0
    assert journey != pytest.approx(whole)


def test_negative_scores_count_zero_in_the_global_split_as_in_the_per_journey_one():
    assert global_credit({"A": 0.5, "B": -0.25, "C": 0.5}, 4) == {"A": 2.0, "B": 0.0, "C": 2.0}
