"""Query plans of every statement a run sends, taken as the run sends it, and the rule they must keep: no
full scan inside a loop (a statement whose work grows with one table's rows times another's).

Why plans, not timings: a plan is deterministic where a timing is not, and it names the loop that grows.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, event

PLANNED = ("SELECT", "WITH", "INSERT", "UPDATE", "DELETE")
"""Statements with a plan; DDL, pragmas, ``SET`` and ``VACUUM`` have none (and PostgreSQL's EXPLAIN would
abort the run's transaction on them)."""
INPUTS = ("session_sources", "conversions", "session_costs")


@dataclass
class Recorded:
    """Each planned statement's text and the full scans its plan runs inside a loop."""

    statements: list[str] = field(default_factory=list)
    loops: list[tuple[str, list[str]]] = field(default_factory=list)


@contextmanager
def recorded_plans() -> Iterator[Recorded]:
    """Record, while the block runs, the plan of every statement any engine sends (on its own connection, in
    its transaction, with its parameters), as the warehouse plans it at that moment."""
    recorded, lock = Recorded(), threading.Lock()

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        if executemany or not statement.lstrip().upper().startswith(PLANNED):
            return
        driver = conn.connection.driver_connection
        loops = _sqlite_loops(driver, statement, parameters) if conn.dialect.name == "sqlite" else []
        if conn.dialect.name == "postgresql":
            loops = _postgres_loops(driver, statement, parameters)
        with lock:
            recorded.statements.append(statement)
            if loops:
                recorded.loops.append((statement, loops))

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield recorded
    finally:
        event.remove(Engine, "before_cursor_execute", before)


def _sqlite_loops(driver, statement: str, parameters) -> list[str]:
    """SQLite's plan rows (``EXPLAIN QUERY PLAN``) that scan a whole table or index inside a loop: a
    ``SCAN`` after the first loop of its level (the loops of one level nest in order), or any ``SCAN`` under
    a correlated subquery (run once per outer row)."""
    rows = driver.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
    children: dict[int, list[tuple[int, str]]] = {}
    for node, parent, _unused, detail in rows:
        children.setdefault(parent, []).append((node, detail))
    found: list[str] = []

    def visit(parent: int, correlated: bool) -> None:
        loops = 0
        for node, detail in children.get(parent, []):
            if detail.startswith(("SCAN ", "SEARCH ")):
                loops += 1
                if detail.startswith("SCAN ") and (loops > 1 or correlated):
                    found.append(detail)
            visit(node, correlated or detail.startswith("CORRELATED"))

    visit(0, False)
    return found


def _postgres_loops(driver, statement: str, parameters) -> list[str]:
    """PostgreSQL's plan nodes (``EXPLAIN``) that scan an input table sequentially once per row of a nested
    loop's outer side, or once per row in a subplan that is not hashed."""
    with driver.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
        (plan,) = cursor.fetchone()
    found: list[str] = []

    def visit(node: dict, repeated: bool) -> None:
        if repeated and node["Node Type"] == "Seq Scan" and node.get("Relation Name") in INPUTS:
            found.append(f"Seq Scan on {node['Relation Name']} (repeated)")
        children = node.get("Plans", [])
        for index, child in enumerate(children):
            inner = node["Node Type"] == "Nested Loop" and index == 1
            subplan = child.get("Parent Relationship") == "SubPlan" and not _hashed(node, child)
            visit(child, repeated or inner or subplan)

    visit((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"], False)
    return found


def _hashed(parent: dict, child: dict) -> bool:
    """Whether a subplan runs once into a hash table (``hashed SubPlan n``), as its parent's filter says."""
    name = child.get("Subplan Name", "")
    return f"hashed {name}" in json.dumps(parent)
