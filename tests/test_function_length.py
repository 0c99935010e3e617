"""No function of the package or the DAG is over 40 lines (issue 22), so each can be read at once.

A function's length is counted from its ``def`` to its last line, docstring included, decorators not.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "attribution"
MAX_LINES = 40


def _lengths(source: str) -> Iterator[tuple[str, int]]:
    """Each function's qualified name (``Class.method``, ``outer.inner``) and its length in lines."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield f"{prefix}{child.name}", child.end_lineno - child.lineno + 1
            name = getattr(child, "name", None)
            yield from walk(child, f"{prefix}{name}." if isinstance(name, str) else prefix)

    yield from walk(ast.parse(source), "")


def _over_limit() -> dict[str, int]:
    """Every function of the package and the DAG over ``MAX_LINES``, by ``path:qualified name``."""
    paths = [*PACKAGE.rglob("*.py"), *(ROOT / "dags").rglob("*.py")]
    over = {}
    for path in sorted(paths):
        where = path.relative_to(PACKAGE if path.is_relative_to(PACKAGE) else ROOT)
        for name, lines in _lengths(path.read_text()):
            if lines > MAX_LINES:
                over[f"{where}:{name}"] = lines
    return over


def test_no_function_is_over_40_lines():
    over = _over_limit()
    assert not over, (
        f"Functions over {MAX_LINES} lines: split them into helpers that each do one thing:\n"
        + "\n".join(f"  {name}: {lines} lines" for name, lines in sorted(over.items()))
    )


def test_a_length_counts_from_def_to_the_last_line_docstring_included_decorators_not():
    source = (
        '@decorator\ndef outer():\n    """Doc."""\n\n    def inner():\n        pass\n\n    return inner\n'
    )
    assert dict(_lengths(source)) == {"outer": 7, "outer.inner": 2}
