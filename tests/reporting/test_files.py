"""Parquet, the Hyper extract and ``export_all``: typed files that BI tools read, holding the CSV's rows."""

from __future__ import annotations

import re
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import tableauhyperapi as hy
from polars.testing import assert_frame_equal

from attribution import load_settings, run
from attribution.errors import ConfigError
from attribution.reporting.channel_report import read_channel_report
from attribution.reporting.dashboard import DashboardContext
from attribution.reporting.files import (
    CSV_NAME,
    FILE_NAMES,
    HYPER_TABLE,
    atomic_path,
    export_all,
    export_hyper,
    export_parquet,
    write_csv,
)
from attribution.reporting.metrics import with_ratios
from attribution.warehouse.engine import connect
from tests.cases import PAID

SCHEMA = {
    "channel_name": pl.String,
    "date": pl.Date,
    "cost": pl.Float64,
    "ihc": pl.Float64,
    "ihc_revenue": pl.Float64,
    "CPO": pl.Float64,
    "ROAS": pl.Float64,
}
REPORT = with_ratios(
    pl.DataFrame(
        [
            ("Direct Traffic", "2023-09-01", 0.0, 1.5, 90.0),  # no spend: ROAS and CPO undefined
            ("TikTok Ads", "2023-09-01", 12.5, 0.0, 0.0),  # no orders: CPO undefined
            ("Paid Search Brand", "2023-09-02", 50.0, 2.5, 200.0),
            ("=HYPERLINK(1)", "2023-09-02", 1.0, 1.0, 1.0),  # BI files keep text as it is
        ],
        schema=["channel_name", "date", "cost", "ihc", "ihc_revenue"],
        orient="row",
    )
)


def test_parquet_round_trips_with_types_and_null_ratios(tmp_path):
    back = pl.read_parquet(export_parquet(REPORT, tmp_path / "r.parquet"))
    assert back.schema == pl.Schema(SCHEMA)
    assert back["date"].to_list() == [date(2023, 9, 1), date(2023, 9, 1), date(2023, 9, 2), date(2023, 9, 2)]
    assert_frame_equal(back.with_columns(pl.col("date").dt.to_string("%Y-%m-%d")), REPORT)
    assert (back["ROAS"].null_count(), back["CPO"].null_count()) == (1, 2)


def test_parquet_is_byte_identical_when_written_again(tmp_path):
    first = export_parquet(REPORT, tmp_path / "a.parquet").read_bytes()
    assert export_parquet(REPORT, tmp_path / "b.parquet").read_bytes() == first


def read_hyper(path: Path) -> tuple[list[tuple[str, str]], list[tuple]]:
    """The extract's columns (name, type) and rows, read by a Hyper server of its own."""
    with (
        hy.HyperProcess(
            hy.Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_config": ""}
        ) as hyper,
        hy.Connection(hyper.endpoint, path) as conn,
    ):
        table = conn.catalog.get_table_definition(hy.TableName(*HYPER_TABLE))
        columns = [(column.name.unescaped, str(column.type)) for column in table.columns]
        rows = conn.execute_list_query(f"SELECT * FROM {table.table_name} ORDER BY date, channel_name")
    return columns, [tuple(v.to_date() if isinstance(v, hy.Date) else v for v in row) for row in rows]


def test_the_hyper_extract_reads_back_the_same_rows_and_types(tmp_path):
    columns, rows = read_hyper(export_hyper(REPORT, tmp_path / "r.hyper"))
    assert columns == [
        ("channel_name", "TEXT"),
        ("date", "DATE"),
        *((name, "DOUBLE") for name in ("cost", "ihc", "ihc_revenue", "CPO", "ROAS")),
    ]
    expected = REPORT.with_columns(pl.col("date").str.to_date()).sort("date", "channel_name").rows()
    assert rows == expected
    assert [p.name for p in tmp_path.iterdir()] == ["r.hyper"]


def test_export_all_writes_every_format_from_the_stored_report(make_sqlite, tmp_path):
    db = make_sqlite(PAID)
    summary = run(load_settings(db=db, out=str(tmp_path / "run")))
    engine = connect(db)
    with engine.connect() as conn:
        paths = export_all(conn, tmp_path / "all", tuple(FILE_NAMES), DashboardContext.for_run(summary))
        stored = read_channel_report(conn)
        csv = write_csv(stored, tmp_path / "csv" / CSV_NAME)
    engine.dispose()
    assert paths == {name: tmp_path / "all" / file for name, file in FILE_NAMES.items()}
    assert paths["csv"].read_bytes() == csv.read_bytes() == Path(summary.report_paths["csv"]).read_bytes()
    assert_frame_equal(pl.read_parquet(paths["parquet"]), stored.with_columns(pl.col("date").str.to_date()))
    assert len(read_hyper(paths["hyper"])[1]) == stored.height
    assert f"Run: <b>{summary.run_id}</b>" in paths["html"].read_text()
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == sorted(FILE_NAMES.values())


def header(page: str) -> dict[str, str]:
    """The dashboard's header items: name -> value as shown."""
    return dict(re.findall(r'<span data-param="([^"]+)">[^<]*<b>([^<]*)</b></span>', page))


def test_the_dashboard_header_states_the_whole_report_and_the_full_run_id(make_sqlite, tmp_path):
    db = make_sqlite(PAID)
    run(load_settings(db=db, out=str(tmp_path / "first"), start="2023-09-01", end="2023-09-04"))
    last = run(load_settings(db=db, out=str(tmp_path / "last"), start="2023-09-05", end="2023-09-06"))
    engine = connect(db)
    with engine.connect() as conn:
        dates = read_channel_report(conn)["date"]
    engine.dispose()
    shown = header(Path(last.report_paths["html"]).read_text())
    assert shown["Report dates"] == f"{dates.min()} to {dates.max()}" != "2023-09-05 to 2023-09-05"
    assert shown["Run"] == last.run_id and len(last.run_id) == 32
    assert shown["Run's conversions"] == "from 2023-09-05 to before 2023-09-06"


def test_an_unknown_format_is_refused_before_anything_is_written(make_sqlite, tmp_path):
    engine = connect(make_sqlite(PAID))
    with engine.connect() as conn, pytest.raises(ConfigError, match=r"'parqet'\. Did you mean 'parquet'"):
        export_all(conn, tmp_path / "out", ("csv", "parqet"))
    engine.dispose()
    assert not (tmp_path / "out").exists()


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temp_file(tmp_path):
    path = export_parquet(REPORT, tmp_path / "r.parquet")
    before = path.read_bytes()
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("disk full")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.parquet"]


def test_without_the_hyper_api_the_extract_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(
        sys.modules, "tableauhyperapi", None
    )  # what an import finds on a platform without the wheel
    with pytest.raises(ConfigError, match="needs the tableauhyperapi package"):
        export_hyper(REPORT, tmp_path / "r.hyper")
    assert list(tmp_path.iterdir()) == []
