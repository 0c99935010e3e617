"""A run loads only what its path needs: the libraries of other models, of the IHC API, of the columnar scan
and of exports it was not asked for stay unimported, so a small daily run's fixed cost is its own work.

Not a timing test: it names the modules, which is what the start-up's time is made of.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable

from tests.cases import PAID

OFF_THE_PATH = {
    "scipy": "Markov's chain solver",
    "httpx": "the IHC API client",
    "connectorx": "the columnar cost scan of a big SQLite file (a child process of its own)",
    "tableauhyperapi": "the Tableau extract",
    "tableauserverclient": "publishing to Tableau",
    "pyarrow": "nothing: Polars writes Parquet itself",
    "plotly": "nothing: the dashboard draws its own charts",
    "fsspec": "an object store: an --out (or an extract) given as a URL",
}
OFF_THE_COMMAND_S_RUN = {
    "rich.progress": "the progress bar: only on a terminal (off one the transient bar shows nothing)",
    "attribution.ihc_api.client": "the IHC API's client: a run of ihc-api",
    "attribution.ihc_api.packing": "the IHC API's requests",
    **{
        f"attribution.models.{name}": "another model"
        for name in ("markov", "shapley", "last_touch", "linear")
    },
}


def loaded_after(code: str, names: Iterable[str] = OFF_THE_PATH, **environ: str) -> list[str]:
    """Which of ``names`` a fresh interpreter holds after running ``code`` (with ``environ`` added)."""
    script = f"import sys\n{code}\nprint('loaded:', *sorted({set(names)!r} & set(sys.modules)))"
    env = {**os.environ, **environ}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    (loaded,) = [line for line in done.stdout.splitlines() if line.startswith("loaded:")]
    return loaded.split()[1:]


def command_run(db: str, out: object) -> str:
    """Code that runs ``attribution run`` on ``db`` as the command does (its exit code 0 checked)."""
    return (
        "from attribution.cli import main\n"
        f"sys.argv = ['attribution', 'run', '--db', {db!r}, '--out', {str(out)!r}]\n"
        "try:\n    main()\nexcept SystemExit as done:\n    assert not done.code, done.code\n"
    )


def test_the_runners_import_none_of_the_libraries_off_a_run_s_path():
    code = "import attribution.pipeline.in_process, attribution.pipeline.scheduled"
    assert loaded_after(code) == []


def test_a_run_of_a_small_file_loads_none_of_them_either(make_sqlite, tmp_path):
    """The whole run, the dashboard included: its model (the local IHC engine), the session-cost sum of an open
    range (SQLite's own join on a small table) and CSV, Parquet and HTML files."""
    db, out = make_sqlite(PAID), tmp_path / "reports"
    code = (
        "from attribution import load_settings, run\n"
        f"run(load_settings(db={db!r}, out={str(out)!r}, formats=('csv', 'parquet', 'html')))"
    )
    assert loaded_after(code) == []
    assert sorted(path.name for path in out.iterdir()) == [
        "channel_reporting.csv",
        "channel_reporting.parquet",
        "dashboard.html",
    ]


def test_a_rule_based_model_s_run_loads_no_numpy(make_sqlite, tmp_path):
    """NumPy is for the models that sum by journey or solve (the IHC engine, Markov, Shapley), not the rule-based
    ones: the report's exact sums take Python floats."""
    db, out = make_sqlite(PAID), tmp_path / "reports"
    code = (
        "from attribution import load_settings, run\n"
        f"run(load_settings(db={db!r}, out={str(out)!r}, model='last-touch'))"
    )
    assert loaded_after(code, {**OFF_THE_PATH, "numpy": "the IHC engine's and the path models' sums"}) == []
    assert (out / "channel_reporting.csv").is_file()


def test_the_command_s_run_of_a_small_file_loads_only_its_own_model(make_sqlite, tmp_path):
    """``attribution run`` as a scheduler starts it (flags, the summary's table, its output not a terminal),
    with the local IHC engine: no other model, not the IHC API's client, no object store library, no
    progress bar."""
    db, out = make_sqlite(PAID), tmp_path / "reports"
    code = command_run(db, out)
    assert loaded_after(code, {**OFF_THE_PATH, **OFF_THE_COMMAND_S_RUN}) == []
    assert (out / "channel_reporting.csv").is_file()


def test_on_a_terminal_the_command_shows_its_progress(make_sqlite, tmp_path):
    """The other side: where the output is a terminal (Rich's ``TTY_COMPATIBLE`` says so here), the bar loads."""
    db, out = make_sqlite(PAID), tmp_path / "reports"
    code = command_run(db, out)
    assert loaded_after(code, {"rich.progress"}, TTY_COMPATIBLE="1") == ["rich.progress"]


def test_the_command_s_start_up_is_frozen_before_its_run(make_sqlite, tmp_path):
    """What the command imported is out of the collector's walks before the run starts (``cli._start_up``):
    the run's collections walk only what it makes. Counted, not timed."""
    db, out = make_sqlite(PAID), tmp_path / "reports"
    code = (
        "import gc\n"
        "from attribution.pipeline import in_process\n"
        "run = in_process.run\n"
        "in_process.run = lambda *args: print('frozen:', gc.get_freeze_count(), gc.isenabled()) or run(*args)\n"
    ) + command_run(db, out)
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}"], capture_output=True, text=True, check=True
    )
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("frozen:")]
    frozen, enabled = line.split()[1:]
    assert int(frozen) > 10_000
    assert enabled == "True"


def test_markov_loads_scipy_when_it_solves_a_chain():
    """The other side of the rule: the model that needs SciPy still gets it, on first use."""
    code = (
        "import polars as pl\n"
        "from attribution.models import get_model\n"
        "journeys = pl.DataFrame({'conv_id': ['c', 'c'], 'session_id': ['a', 'b'], "
        "'timestamp': ['2023-09-01 10:00:00', '2023-09-01 11:00:00'], 'channel_name': ['x', 'y']})\n"
        "get_model('markov').attribute(journeys)"
    )
    assert loaded_after(code) == ["scipy"]
