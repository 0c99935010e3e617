"""The CSV export: empty cells for undefined ratios, fixed decimals, stable order, no formula injection."""

from __future__ import annotations

import polars as pl

from attribution.reporting.files import neutralise_formulas, write_csv
from attribution.reporting.metrics import with_ratios


def report(*rows) -> pl.DataFrame:
    return with_ratios(
        pl.DataFrame(rows, schema=["channel_name", "date", "cost", "ihc", "ihc_revenue"], orient="row")
    )


def test_undefined_ratios_are_empty_cells_never_inf_zero_or_na(tmp_path):
    path = write_csv(
        report(("Direct Traffic", "2023-09-01", 0.0, 0.0, 0.0), ("Referral", "2023-09-01", 0.0, 2.0, 30.0)),
        tmp_path / "r.csv",
    )
    lines = path.read_text().splitlines()
    assert lines[0] == "channel_name,date,cost,ihc,ihc_revenue,CPO,ROAS"
    assert lines[1] == "Direct Traffic,2023-09-01,0.0000,0.0000,0.0000,,"
    assert lines[2] == "Referral,2023-09-01,0.0000,2.0000,30.0000,,"  # orders that cost nothing: no CPO
    assert not any(word in path.read_text() for word in ("inf", "NaN", "N/A"))


def test_ratios_use_cost_per_order_and_revenue_per_euro(tmp_path):
    path = write_csv(report(("FB & IG Ads", "2023-09-02", 50.0, 2.5, 200.0)), tmp_path / "r.csv")
    assert path.read_text().splitlines()[1] == "FB & IG Ads,2023-09-02,50.0000,2.5000,200.0000,20.0000,4.0000"


def test_text_that_looks_like_a_formula_is_neutralised():
    frame = pl.DataFrame({"channel_name": ["=HYPERLINK(1)", "+1", "-2", "@SUM", "Direct Traffic", "a=b"]})
    assert neutralise_formulas(frame)["channel_name"].to_list() == [
        "'=HYPERLINK(1)",
        "'+1",
        "'-2",
        "'@SUM",
        "Direct Traffic",
        "a=b",
    ]


def test_the_file_is_replaced_atomically_and_no_temp_file_is_left(tmp_path):
    write_csv(report(("Referral", "2023-09-01", 1.0, 1.0, 1.0)), tmp_path / "r.csv")
    write_csv(report(("Referral", "2023-09-01", 2.0, 1.0, 1.0)), tmp_path / "r.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]
    assert "2.0000" in (tmp_path / "r.csv").read_text()
