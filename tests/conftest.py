"""Shared fixtures: real database files built from small hand-written cases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.builders import Case, write_case


@pytest.fixture
def make_db(tmp_path: Path) -> Callable[[Case], str]:
    """Write a case into a fresh SQLite file and return its path."""
    counter = iter(range(1_000_000))

    def make(case: Case) -> str:
        path = tmp_path / f"case{next(counter)}.db"
        write_case(f"sqlite:///{path}", case)
        return str(path)

    return make
