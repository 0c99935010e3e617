"""Hand-built input databases: sessions, conversions and costs written as short readable rows."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import insert

from attribution.warehouse.engine import connect
from attribution.warehouse.schema import create_input_tables
from attribution.warehouse.tables import conversions, session_costs, session_sources


@dataclass(frozen=True)
class Session:
    session_id: str
    user_id: str
    timestamp: str
    channel: str = "Direct Traffic"
    holder: int = 1
    closer: int = 0
    impression: int = 0
    cost: float | None = None
    has_cost_row: bool = True


@dataclass(frozen=True)
class Conversion:
    conv_id: str
    user_id: str
    timestamp: str
    revenue: float = 100.0


@dataclass(frozen=True)
class Case:
    sessions: list[Session] = field(default_factory=list)
    conversions: list[Conversion] = field(default_factory=list)


def write_case(db: str, case: Case) -> None:
    """Create the three input tables and fill them with the case's rows."""
    engine = connect(db, must_exist=False)
    create_input_tables(engine)
    with engine.begin() as conn:
        if case.sessions:
            conn.execute(insert(session_sources), [_session_row(s) for s in case.sessions])
            costs = [{"session_id": s.session_id, "cost": s.cost} for s in case.sessions if s.has_cost_row]
            if costs:
                conn.execute(insert(session_costs), costs)
        if case.conversions:
            conn.execute(insert(conversions), [_conversion_row(c) for c in case.conversions])
    engine.dispose()


def _session_row(s: Session) -> dict:
    day, time = s.timestamp.split(" ")
    return {
        "session_id": s.session_id,
        "user_id": s.user_id,
        "event_date": day,
        "event_time": time,
        "channel_name": s.channel,
        "holder_engagement": s.holder,
        "closer_engagement": s.closer,
        "impression_interaction": s.impression,
    }


def _conversion_row(c: Conversion) -> dict:
    day, time = c.timestamp.split(" ")
    return {
        "conv_id": c.conv_id,
        "user_id": c.user_id,
        "conv_date": day,
        "conv_time": time,
        "revenue": c.revenue,
    }
