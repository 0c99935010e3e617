"""How the stored models split the same conversions: each channel's share of credit, its orders, revenue, CPO
and ROAS under every model whose credit is stored, side by side.

Why from stored credit: every model's run keeps its own credit (``store.credit``), so comparing models needs
no rerun. Why over the stored report's dates, with its cost: spend does not depend on the model, so every
model's CPO and ROAS divide the same spend, the spend the report shows.
"""

from __future__ import annotations

import math

import polars as pl
from sqlalchemy import Connection, select

from attribution.errors import ConfigError
from attribution.reporting.channel_report import credit_by_channel_date, label_literals
from attribution.reporting.metrics import with_ratios
from attribution.store.credit import stored_labels
from attribution.warehouse.tables import LABEL_COLUMNS, CreditLabel, channel_reporting

COMPARISON_COLUMNS = (
    *LABEL_COLUMNS,
    "channel_name",
    "cost",
    "ihc",
    "ihc_revenue",
    "credit_share",
    "CPO",
    "ROAS",
)


def compare_stored_models(conn: Connection) -> pl.DataFrame:
    """Every stored credit label (model and conversion type) beside the others, one row per label and channel
    (``COMPARISON_COLUMNS``), sorted by channel then label.

    Over the dates of the stored report (``channel_reporting``): ``cost`` is the channel's spend on those
    dates, the same for every label; ``ihc`` and ``ihc_revenue`` are the label's credit of the sessions of
    those dates and its credit-weighted revenue; ``credit_share`` is the channel's share (0 to 1) of the
    label's credit; ``CPO`` and ``ROAS`` follow ``metrics.with_ratios`` (null where undefined). A channel a
    label never credits has 0 credit there. ``conv_type_id`` is empty for the models without one.

    Raises ``ConfigError`` when fewer than two labels are stored.
    """
    labels = stored_labels(conn)
    if len(labels) < 2:
        held = f"only {str(labels[0])!r}'s" if labels else "none"
        raise ConfigError(
            f"Comparing models needs the stored credit of two models or more; the database holds {held}: "
            "run another model over the same dates first (attribution run --model last-touch)"
        )
    reported = _reported_cost(conn)
    cost, dates = _channel_sums(reported, ("cost",)), reported.select("date").unique()
    credit = pl.concat([_label_credit(conn, label, dates, cost["channel_name"]) for label in labels])
    frame = credit.join(cost, on="channel_name", how="left").with_columns(pl.col("cost").fill_null(0.0))
    total = pl.col("ihc").sum().over(LABEL_COLUMNS)
    frame = frame.with_columns(credit_share=pl.when(total > 0).then(pl.col("ihc") / total))
    return with_ratios(frame).select(COMPARISON_COLUMNS).sort("channel_name", *LABEL_COLUMNS)


def channel_totals(conn: Connection) -> pl.DataFrame:
    """The stored report's totals per channel over all its dates, most revenue first: ``channel_name``,
    ``cost``, ``ihc``, ``ihc_revenue``, ``CPO``, ``ROAS`` (summed as the comparison sums, exactly)."""
    figures = ("cost", "ihc", "ihc_revenue")
    rows = conn.execute(
        select(*(channel_reporting.c[name] for name in ("channel_name", *figures)))
    ).fetchall()
    report = pl.DataFrame(
        rows, schema={"channel_name": pl.String, **dict.fromkeys(figures, pl.Float64)}, orient="row"
    )
    totals = _channel_sums(report, figures).sort("ihc_revenue", "channel_name", descending=[True, False])
    return with_ratios(totals)


def stored_credit_by_date(conn: Connection) -> pl.DataFrame:
    """Every stored credit label's credit per channel and session date, over the dates of the stored report:
    columns ``model`` (the label as shown: ``linear``, ``ihc (default)``), ``channel_name``, ``date``, ``ihc``.

    Why per date: the dashboard compares the models over the dates its reader selects, as every other figure
    of the page."""
    dates = _reported_cost(conn).select("date").unique()
    frames = [
        _dated_credit(conn, label, dates).select("channel_name", "date", "ihc", model=pl.lit(str(label)))
        for label in stored_labels(conn)
    ]
    schema = {"channel_name": pl.String, "date": pl.String, "ihc": pl.Float64, "model": pl.String}
    return pl.concat([pl.DataFrame(schema=schema), *frames]).select("model", "channel_name", "date", "ihc")


def _reported_cost(conn: Connection) -> pl.DataFrame:
    c = channel_reporting.c
    rows = conn.execute(select(c.channel_name, c.date, c.cost)).fetchall()
    schema = {"channel_name": pl.String, "date": pl.String, "cost": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _label_credit(
    conn: Connection, label: CreditLabel, dates: pl.DataFrame, channels: pl.Series
) -> pl.DataFrame:
    """``label``'s credit and revenue per channel over ``dates``, a row for each of ``channels`` and each
    channel it credits."""
    sums = _channel_sums(_dated_credit(conn, label, dates), ("ihc", "ihc_revenue"))
    every = pl.concat([channels.to_frame(), sums.select("channel_name")]).unique()
    return every.join(sums, on="channel_name", how="left").with_columns(
        pl.col("ihc", "ihc_revenue").fill_null(0.0), **label_literals(label)
    )


def _dated_credit(conn: Connection, label: CreditLabel, dates: pl.DataFrame) -> pl.DataFrame:
    """``label``'s credit and revenue per channel and date, of ``dates`` only."""
    return credit_by_channel_date(conn, None, None, label).join(dates, on="date", how="semi")


def _channel_sums(frame: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    """``columns`` summed per channel exactly (``math.fsum``), so no row order changes a bit."""
    schema = {"channel_name": pl.String, **dict.fromkeys(columns, pl.Float64)}
    sums = [
        (channel, *(math.fsum(group[name].to_list()) for name in columns))
        for (channel,), group in frame.partition_by("channel_name", as_dict=True).items()
    ]
    return pl.DataFrame(sums, schema=schema, orient="row")
