"""Query plans of every statement a run sends, taken as the run sends it, and the rule they must keep: no
full scan inside a loop (a statement whose work grows with one table's rows times another's).

Why plans, not timings: a plan is deterministic where a timing is not, and it names the loop that grows.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
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
def _each_planned(planned: Callable[[str, object, str, object], None]) -> Iterator[None]:
    """Call ``planned(dialect name, driver connection, statement, parameters)`` for every statement with a
    plan that any engine sends while the block runs (on its own connection, in its transaction)."""

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        if not executemany and statement.lstrip().upper().startswith(PLANNED):
            planned(conn.dialect.name, conn.connection.driver_connection, statement, parameters)

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(Engine, "before_cursor_execute", before)


@contextmanager
def recorded_plans() -> Iterator[Recorded]:
    """Record, while the block runs, the plan of every statement any engine sends (on its own connection, in
    its transaction, with its parameters), as the warehouse plans it at that moment."""
    recorded, lock = Recorded(), threading.Lock()

    def planned(dialect: str, driver, statement: str, parameters) -> None:
        loops = _sqlite_loops(driver, statement, parameters) if dialect == "sqlite" else []
        if dialect == "postgresql":
            loops = _postgres_loops(driver, statement, parameters)
        with lock:
            recorded.statements.append(statement)
            if loops:
                recorded.loops.append((statement, loops))

    with _each_planned(planned):
        yield recorded


@dataclass(frozen=True)
class Read:
    """How one statement reads one table: by a range of the named index (``served``), or not."""

    statement: str
    served: bool
    how: str


def unserved(reads: list[Read]) -> str:
    """The reads no index range serves, each as its plan and the start of its statement (empty: none)."""
    return "\n\n".join(
        f"{read.how}\n{' '.join(read.statement.split())[:300]}" for read in reads if not read.served
    )


@contextmanager
def recorded_reads(table: str, index: str, selecting: re.Pattern[str]) -> Iterator[list[Read]]:
    """Record how each statement whose text matches ``selecting`` reads ``table``, whose index ``index`` the
    run built: whether a condition on that index serves its filter. SQLite's plan names the index, and
    ``SEARCH`` where a condition bounds it (``SCAN`` where it is read whole, or no row names it where another
    way is taken); PostgreSQL's is taken with sequential scans disabled, so that it shows whether an index
    *can* serve the filter (on a few thousand rows a sequential scan is cheaper, and chosen), and an index
    scan must have an ``Index Cond``."""
    reads: list[Read] = []

    def planned(dialect: str, driver, statement: str, parameters) -> None:
        if not selecting.search(statement):
            return
        if dialect == "sqlite":
            rows = driver.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
            named = [detail for *_unused, detail in rows if f"INDEX {index} " in f"{detail} "]
            served = bool(named) and all(detail.startswith("SEARCH ") for detail in named)
            reads.append(Read(statement, served, "; ".join(named) or "no index named"))
        elif dialect == "postgresql":
            nodes = [node for node in _postgres_nodes(driver, statement, parameters, seqscan=False)]
            scans = [
                node
                for node in nodes
                if node.get("Relation Name") == table or node.get("Index Name") == index
            ]
            served = bool(scans) and all("Index Cond" in node for node in scans if node.get("Index Name"))
            served = served and not any(node["Node Type"] == "Seq Scan" for node in scans)
            how = "; ".join(f"{node['Node Type']} {node.get('Index Cond', '')}" for node in scans)
            reads.append(Read(statement, served, how))

    with _each_planned(planned):
        yield reads


@contextmanager
def recorded_filters(table: str, selecting: re.Pattern[str]) -> Iterator[list[tuple[str, str]]]:
    """Record, for each statement whose text matches ``selecting``, PostgreSQL's row filters on ``table``
    (``Filter`` of its plan's nodes that read it, conditions in the order they are evaluated), as
    (statement, filter) pairs; other warehouses record none."""
    filters: list[tuple[str, str]] = []

    def planned(dialect: str, driver, statement: str, parameters) -> None:
        if dialect == "postgresql" and selecting.search(statement):
            for node in _postgres_nodes(driver, statement, parameters):
                if node.get("Relation Name") == table and "Filter" in node:
                    filters.append((statement, node["Filter"]))

    with _each_planned(planned):
        yield filters


CONDITIONS = ("Filter", "Join Filter", "Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond")
"""The parts of a PostgreSQL plan node that a row, or a pair of rows, is tested against."""


@contextmanager
def recorded_conditions(selecting: re.Pattern[str]) -> Iterator[list[str]]:
    """Record every condition (``CONDITIONS``) of PostgreSQL's plan of each statement whose text matches
    ``selecting``; other warehouses record none."""
    conditions: list[str] = []

    def planned(dialect: str, driver, statement: str, parameters) -> None:
        if dialect == "postgresql" and selecting.search(statement):
            for node in _postgres_nodes(driver, statement, parameters):
                conditions.extend(node[part] for part in CONDITIONS if part in node)

    with _each_planned(planned):
        yield conditions


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
    plan = _postgres_plan(driver, statement, parameters)
    found: list[str] = []

    def visit(node: dict, repeated: bool) -> None:
        if repeated and node["Node Type"] == "Seq Scan" and node.get("Relation Name") in INPUTS:
            found.append(f"Seq Scan on {node['Relation Name']} (repeated)")
        children = node.get("Plans", [])
        for index, child in enumerate(children):
            inner = node["Node Type"] == "Nested Loop" and index == 1
            subplan = child.get("Parent Relationship") == "SubPlan" and not _hashed(node, child)
            visit(child, repeated or inner or subplan)

    visit(plan, False)
    return found


def _postgres_plan(driver, statement: str, parameters, *, seqscan: bool = True) -> dict:
    """PostgreSQL's plan of ``statement`` (``EXPLAIN (FORMAT JSON)``), its top node; ``seqscan`` false:
    planned with sequential scans disabled (for this one EXPLAIN)."""
    with driver.cursor() as cursor:
        if not seqscan:
            cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
            (plan,) = cursor.fetchone()
        finally:
            if not seqscan:
                cursor.execute("RESET enable_seqscan")
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def _postgres_nodes(driver, statement: str, parameters, *, seqscan: bool = True) -> Iterator[dict]:
    """Every node of ``_postgres_plan``, depth first."""
    pending = [_postgres_plan(driver, statement, parameters, seqscan=seqscan)]
    while pending:
        node = pending.pop()
        yield node
        pending.extend(node.get("Plans", []))


def _hashed(parent: dict, child: dict) -> bool:
    """Whether a subplan runs once into a hash table (``hashed SubPlan n``), as its parent's filter says."""
    name = child.get("Subplan Name", "")
    return f"hashed {name}" in json.dumps(parent)


@contextmanager
def recorded_full_scans(selecting: re.Pattern[str]) -> Iterator[list[tuple[str, list[str]]]]:
    """Record, for each statement whose text matches ``selecting``, every read of a whole table or index:
    SQLite's ``SCAN`` of anything but a subquery it materialised; PostgreSQL's (planned with sequential
    scans disabled, so that it shows whether an index *can* serve each read) ``Seq Scan`` or index scan
    without an ``Index Cond``. As (statement, scans) pairs, for the statements that have any."""
    found: list[tuple[str, list[str]]] = []

    def planned(dialect: str, driver, statement: str, parameters) -> None:
        if not selecting.search(statement):
            return
        scans: list[str] = []
        if dialect == "sqlite":
            rows = [
                detail for *_unused, detail in driver.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            ]
            derived = {
                detail.split()[-1] for detail in rows if detail.startswith(("MATERIALIZE ", "CO-ROUTINE "))
            }
            scans = [d for d in rows if d.startswith("SCAN ") and d.split()[1] not in {*derived, "CONSTANT"}]
        elif dialect == "postgresql":
            scans = [
                f"{node['Node Type']} on {node.get('Relation Name', node.get('Index Name'))}"
                for node in _postgres_nodes(driver, statement, parameters, seqscan=False)
                if node["Node Type"] == "Seq Scan"
                or (node["Node Type"] in ("Index Scan", "Index Only Scan") and "Index Cond" not in node)
            ]
        if scans:
            found.append((statement, scans))

    with _each_planned(planned):
        yield found
