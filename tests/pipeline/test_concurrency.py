"""Two runs at once on one SQLite file, as two users or a user and a scheduler start them: both end well (or
one waits and reports the lock), and the tables equal one of the two serial orders, never a mix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from attribution import load_settings, run
from attribution.warehouse.generate import generate_database
from tests.oracle import read_tables

MODELS = ("last-touch", "first-touch")
REPEATS = 6


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("concurrent") / "source.db"
    generate_database(path, sessions=60_000, conversions=1_500, days=5, seed=21)
    return path


def serial(source: Path, folder: Path, order: tuple[str, ...]) -> tuple:
    """The tables after the models' runs one after the other, in ``order``."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"{'-then-'.join(order)}.db"
    shutil.copy(source, db)
    for model in order:
        run(load_settings(db=str(db), out=str(folder / model), model=model, formats=("csv",)))
    return read_tables(str(db))


def start_run(db: Path, model: str, out: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "attribution",
        "run",
        "--db",
        str(db),
        "--model",
        model,
        "--out",
        str(out),
    ]
    return subprocess.Popen(
        [*command, "--format", "csv"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )


def test_two_cli_runs_at_once_end_as_one_of_the_serial_orders(source, tmp_path):
    references = [serial(source, tmp_path, order) for order in (MODELS, MODELS[::-1])]
    for attempt in range(REPEATS):
        db = tmp_path / f"shared-{attempt}.db"
        shutil.copy(source, db)
        runs = [start_run(db, model, tmp_path / f"out-{attempt}-{model}") for model in MODELS]
        results = [(process.wait(timeout=300), process.stderr.read()) for process in runs]
        assert all("disk I/O error" not in stderr for _, stderr in results), results
        assert all(code == 0 for code, _ in results), results
        assert read_tables(str(db)) in references, f"attempt {attempt}: the tables are a mix of both runs"
