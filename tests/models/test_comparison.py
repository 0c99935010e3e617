"""Model comparison: channel credit and attributed revenue per model, long and wide."""

from __future__ import annotations

import polars as pl
import pytest

from attribution.errors import IntegrityError
from attribution.models import Attributor, FirstTouch, LastTouch, Linear
from attribution.models.comparison import compare_models, wide_comparison
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
