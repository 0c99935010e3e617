"""The channel report: per channel and session date, cost, credit and credit-weighted revenue.

Why two independent sums: cost comes from the sessions themselves (each session once, NULL cost as 0),
so sessions that led to no conversion keep their cost and sessions shared by two journeys are not counted
twice; credit comes from the stored attribution joined to the conversions' revenue.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, bindparam, delete, func, select, text

from attribution.warehouse import channel_reporting

_REPORT_SQL = """
INSERT INTO channel_reporting (channel_name, date, cost, ihc, ihc_revenue)
SELECT channel_name, date, SUM(cost), SUM(ihc), SUM(ihc_revenue)
FROM (
    SELECT s.channel_name, s.event_date AS date, COALESCE(c.cost, 0.0) AS cost, 0.0 AS ihc, 0.0 AS ihc_revenue
    FROM session_sources s
    LEFT JOIN session_costs c ON c.session_id = s.session_id
    {where}
    UNION ALL
    SELECT s.channel_name, s.event_date, 0.0, a.ihc, a.ihc * v.revenue
    FROM attribution_customer_journey a
    JOIN session_sources s ON s.session_id = a.session_id
    JOIN conversions v ON v.conv_id = a.conv_id
    {where}
) AS parts
GROUP BY channel_name, date
"""


def build_channel_report(conn: Connection, dates: Collection[str] | None = None) -> int:
    """Recompute ``channel_reporting`` for the given session dates (all dates when ``None``).

    Runs inside the caller's transaction; returns the number of report rows now in the table.
    """
    if dates is None:
        conn.execute(delete(channel_reporting))
        conn.execute(text(_REPORT_SQL.format(where="")))
    elif dates:
        chosen = sorted(dates)
        conn.execute(delete(channel_reporting).where(channel_reporting.c.date.in_(chosen)))
        statement = text(_REPORT_SQL.format(where="WHERE s.event_date IN :dates"))
        conn.execute(statement.bindparams(bindparam("dates", expanding=True)), {"dates": chosen})
    return conn.scalar(select(func.count()).select_from(channel_reporting))
