"""Hand-built input databases: sessions, conversions and costs written as short readable rows."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Column, Executable, MetaData, Table, insert, text

from attribution.warehouse.engine import connect
from attribution.warehouse.schema import create_input_tables
from attribution.warehouse.tables import INPUT_TABLES, conversions, session_costs, session_sources

_loose = MetaData()
LOOSE_TABLES = {
    table.name: Table(table.name, _loose, *(Column(c.name, c.type, nullable=True) for c in table.columns))
    for table in INPUT_TABLES
}
"""The input tables as a user's file may hold them: the same columns without keys or NOT NULL, so
duplicates and missing values can be written (and the input checks must find them)."""


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
    extra_costs: list[tuple[str, object]] = field(default_factory=list)
    """Cost rows beyond the sessions' own (a repeated or orphan ``session_id``, a cost of any value)."""


def write_case(db: str, case: Case, *, keyed: bool = True) -> None:
    """Create the three input tables and fill them with the case's rows; ``keyed`` false leaves out the
    keys and NOT NULL constraints (``LOOSE_TABLES``)."""
    engine = connect(db, must_exist=False)
    if keyed:
        create_input_tables(engine)
        tables = {table.name: table for table in (session_sources, conversions, session_costs)}
    else:
        _loose.create_all(engine)
        tables = LOOSE_TABLES
    costs = [{"session_id": s.session_id, "cost": s.cost} for s in case.sessions if s.has_cost_row]
    costs += [{"session_id": session_id, "cost": cost} for session_id, cost in case.extra_costs]
    rows = {
        "session_sources": [_session_row(s) for s in case.sessions],
        "session_costs": costs,
        "conversions": [_conversion_row(c) for c in case.conversions],
    }
    with engine.begin() as conn:
        for name, table_rows in rows.items():
            if table_rows:
                conn.execute(_insert(tables[name], keyed), table_rows)
    engine.dispose()


def _insert(table: Table, keyed: bool) -> Executable:
    """An insert of ``table``'s rows; into a loose table values go to the driver as they are (text in a
    number column too), without the column types' conversions."""
    if keyed:
        return insert(table)
    names = [column.name for column in table.columns]
    return text(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})")


def _split(timestamp: str | None) -> tuple[str | None, str | None]:
    """A case's ``date time`` text as its two columns (``None``: both NULL)."""
    if timestamp is None:
        return None, None
    day, _, time = timestamp.partition(" ")
    return day, time


def _session_row(s: Session) -> dict:
    day, time = _split(s.timestamp)
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
    day, time = _split(c.timestamp)
    return {
        "conv_id": c.conv_id,
        "user_id": c.user_id,
        "conv_date": day,
        "conv_time": time,
        "revenue": c.revenue,
    }


def land_sessions(db: str, sessions: list[Session]) -> None:
    """Insert sessions (and their cost rows) into a database already written: sessions that land late."""
    engine = connect(db)
    with engine.begin() as conn:
        conn.execute(insert(session_sources), [_session_row(s) for s in sessions])
        costs = [{"session_id": s.session_id, "cost": s.cost} for s in sessions if s.has_cost_row]
        if costs:
            conn.execute(insert(session_costs), costs)
    engine.dispose()


def restate_cost(db: str, session_id: str, cost: float | None) -> None:
    """Give a session one cost row of ``cost`` (replacing any it had): spend restated, or landed late."""
    engine = connect(db)
    with engine.begin() as conn:
        conn.execute(session_costs.delete().where(session_costs.c.session_id == session_id))
        conn.execute(insert(session_costs).values(session_id=session_id, cost=cost))
    engine.dispose()
