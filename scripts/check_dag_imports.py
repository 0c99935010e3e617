"""The DAG contract: a DAG file imports no ``attribution`` module when Airflow parses it.

Why a check of its own: the scheduler parses DAG files every few seconds, in a process that must stay free
of the package (its Polars, SQLAlchemy and drivers); the tasks import it inside their functions, when they
run. import-linter sees every import of a file alike, wherever it stands, so this check reads where each
one stands: inside a function (or under ``if TYPE_CHECKING:``) is fine, anywhere else is a violation.

Run by ``make lint``: ``python scripts/check_dag_imports.py [FOLDER]`` (default ``dags``); exits 1 naming
each violation as ``path:line``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "attribution"


def violations(source: str, path: str) -> Iterator[str]:
    """``path:line: ...`` for each import of the package that runs when the file is parsed."""
    yield from _visit(ast.parse(source, path).body, path)


def _visit(statements: list[ast.stmt], path: str) -> Iterator[str]:
    for node in statements:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue  # runs when a task runs, not when the file is parsed
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _visit(node.orelse, path)
            continue
        for name in _imported(node):
            if name == PACKAGE or name.startswith(f"{PACKAGE}."):
                yield f"{path}:{node.lineno}: imports {name} when the DAG is parsed; import it inside a task"
        for field in ("body", "orelse", "finalbody", "handlers"):
            yield from _visit(getattr(node, field, []), path)


def _imported(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    return []


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def main(folder: str = "dags") -> int:
    found = [
        line for path in sorted(Path(folder).glob("*.py")) for line in violations(path.read_text(), str(path))
    ]
    for line in found:
        print(line)
    print(f"DAG contract: {'BROKEN' if found else 'KEPT'} ({len(found)} module-level import(s) of {PACKAGE})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
