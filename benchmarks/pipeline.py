"""Pipeline benchmark: generate challenge-like databases and time every step of a first run, a whole-range
rerun and two daily runs (the history's last two days, as a scheduler runs them).

Scenarios are named; each run happens in a fresh child process so its peak memory (max RSS) is its own.
Databases are laid out as real tables are (``arrival``: rows by user and time, ids in random key order);
``--layout sorted`` adds the generator's key-ordered layout, which flatters key lookups, and prints the
ratio of the two. ``--days`` sets the history's length (repeatable: one database per length);
``--daily N`` also checks that N daily runs leave the tables and CSV of one run over their days;
``--restate-days N`` also times the last day with a restatement window of N days, inputs unchanged, then
after a restatement of the window's first day, against the same day without one.
``--cli`` runs each run as a user does, through the ``attribution`` command under ``/usr/bin/time`` (its wall
and peak memory as that measures them, the pipeline's own step times from the run's record), and prints the
import of the run's modules in a fresh interpreter, the bulk of a run's start-up: the fixed cost a small
daily run pays (``--scenario 2k --cli``).
``--model`` (repeatable; ``all``: every local model and Markov of orders 1 to 3, ``markov:3`` an order) runs
the same four runs for each model, each from its own fresh copy, so every model's first run is timed as a
new user meets it (no index yet). Each database is generated once into benchmarks/data/ and kept pristine;
every benchmark runs on a fresh copy. Beside the pipeline's own seconds, ``wall`` is the child process's
whole life, start-up and exit included, as ``/usr/bin/time`` sees a command.
Usage:
    python benchmarks/pipeline.py                     # every scenario, arrival layout, its own days
    python benchmarks/pipeline.py --scenario default --json results/default.json
    python benchmarks/pipeline.py --scenario default --days 10 --days 90 --layout arrival --layout sorted
    python benchmarks/pipeline.py --scenario default --scenario 5m --model all
    python benchmarks/pipeline.py --scenario 1m-orders --model all      # a million orders, 2M users
    python benchmarks/pipeline.py --scenario 10m --days 100 --restate-days 3   # daily runs with a window
    python benchmarks/pipeline.py --scenario 2k --cli   # a tiny file: the attribution command's fixed cost
    python benchmarks/pipeline.py --compare old.json new.json
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from itertools import product
from pathlib import Path

from attribution.reporting.files import CSV_NAME
from attribution.sample_data.options import DEFAULT_LAYOUT, LAYOUTS, Layout

HERE = Path(__file__).resolve().parent
RUNS = ("first", "rerun", "first day", "day")
WINDOW_RUNS = ("window", "restated")
"""With ``--restate-days N``: the last day again with that window, its inputs unchanged, then after a
restatement of the window's first day."""
"""A first run (building the journey indexes), a whole-range rerun, then daily runs as a scheduler starts
them: the history's last day but one (the first bounded run, building the date indexes), then its last day."""
DATA = HERE / "data"
DEFAULT_MODEL = "ihc"


@dataclass(frozen=True)
class Scenario:
    name: str
    sessions: int
    conversions: int
    days: int = 10
    seed: int = 42
    layout: Layout = DEFAULT_LAYOUT
    users: int | None = None
    """``None``: as the generator derives them from the sessions."""

    @property
    def stem(self) -> str:
        """The name of its database: size, history and layout, so that no other layout is reused."""
        return f"{self.name}-{self.days}d-{self.layout}"


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("default", 500_000, 2_000),
        Scenario("2k", 2_000, 100),  # a run's fixed cost: start-up, the steps' own overhead, exit
        Scenario("1m", 1_000_000, 20_000),
        Scenario("5m", 5_000_000, 100_000),
        Scenario("10m", 10_000_000, 200_000),
        # A shop with a million orders a month: 990,000 buyers with about 2 sessions before their order, and
        # about a million users who never bought (the null paths Markov and Shapley learn from).
        Scenario("1m-orders", 4_000_000, 1_000_000, days=30, users=2_000_000),
    )
}


def generate(scenario: Scenario, path: Path | None = None) -> tuple[Path, float]:
    """A fresh database for the scenario (the first run must find it without the pipeline's indexes)."""
    from attribution.sample_data.generate import generate_database

    path = path or DATA / f"{scenario.stem}.db"
    path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    generate_database(
        path,
        sessions=scenario.sessions,
        conversions=scenario.conversions,
        days=scenario.days,
        users=scenario.users,
        seed=scenario.seed,
        layout=scenario.layout,
    )
    return path, time.perf_counter() - began


def time_index_build(timings: list[float]) -> None:
    """Record the seconds of each ``ensure_indexes`` call of this process's runs in ``timings``.

    Why wrap it: the index build is a one-off inside the ``prepare`` step; timing it on its own says how
    much of a first run it is.
    """
    from attribution.warehouse import schema as warehouse

    ensure_indexes = warehouse.ensure_indexes

    def timed(*args, **kwargs):
        began = time.perf_counter()
        try:
            return ensure_indexes(*args, **kwargs)
        finally:
            timings.append(time.perf_counter() - began)

    warehouse.ensure_indexes = timed


def model_options(model: str) -> dict:
    """Settings for a model named as ``--model`` takes it: ``markov:3`` is Markov of order 3."""
    name, _, order = model.partition(":")
    return {"model": name, **({"markov_order": int(order)} if order else {})}


def measure_run(
    db: str, out: str, start: str = "", end: str = "", model: str = DEFAULT_MODEL, restate_days: str = "0"
) -> dict:
    """Run the pipeline once in this process (over ``[start, end)`` when given, with a restatement window of
    ``restate_days``) and return its step times and peak memory."""
    from attribution import load_settings, run

    index_build: list[float] = []
    time_index_build(index_build)
    bounds = {"start": start, "end": end} if start else {}
    options = {**bounds, **model_options(model), "restate_days": int(restate_days)}
    summary = run(load_settings(db=db, out=out, create_indexes=True, **options))  # a first run builds them
    return {
        "seconds": summary.seconds,
        "index_seconds": sum(index_build) if index_build else None,
        "journeys": summary.journeys,
        "sessions": summary.sessions,
        "peak_mb": peak_mb(),
    }


def last_days(db: str | Path, count: int) -> list[str]:
    """The history's last ``count`` days, up to its last conversion date: what daily runs cover."""
    with closing(sqlite3.connect(db)) as con:
        last = date.fromisoformat(con.execute("SELECT MAX(conv_date) FROM conversions").fetchone()[0])
    return [(last - timedelta(days=back)).isoformat() for back in reversed(range(count))]


def next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def peak_mb() -> float:
    """This process's peak resident memory in MB.

    Why ``VmHWM`` first: on Linux a child started by fork and exec inherits its parent's ``ru_maxrss``, so a
    child smaller than the benchmark's own process would report the parent's peak; ``VmHWM`` starts afresh
    at exec.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_in_child(
    db: str | Path,
    out: Path,
    start: str = "",
    end: str = "",
    model: str = DEFAULT_MODEL,
    restate_days: int = 0,
) -> dict:
    """``measure_run`` in a fresh process, so the peak memory is this run's alone; adds the child's wall time."""
    began = time.perf_counter()
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(db), str(out), start, end, model, str(restate_days)],
        capture_output=True,
        text=True,
    )
    if child.returncode:
        sys.exit(f"The pipeline run on {db} failed:\n{child.stderr}")
    return {**json.loads(child.stdout.splitlines()[-1]), "child_seconds": time.perf_counter() - began}


def run_command(
    db: str | Path,
    out: Path,
    start: str = "",
    end: str = "",
    model: str = DEFAULT_MODEL,
    restate_days: int = 0,
) -> dict:
    """The run as the ``attribution`` command under ``/usr/bin/time`` (the ``run_in_child`` of ``--cli``): its
    wall, CPU seconds (user and system: what a busy machine changes least) and peak memory as ``time`` reports
    them, the step times from the run's record."""
    name, _, order = model.partition(":")
    options = ["--model", name, *(["--markov-order", order] if order else [])]
    options += [*(["--start", start, "--end", end] if start else []), "--restate-days", str(restate_days)]
    command = [str(Path(sys.executable).with_name("attribution")), "run", "--db", str(db), "--out", str(out)]
    timed = ["/usr/bin/time", "-f", "%e %U %S %M", *command, *options]
    child = subprocess.run(timed, capture_output=True, text=True)
    if child.returncode:
        sys.exit(f"The attribution command on {db} failed:\n{child.stderr}")
    wall, user, system, peak_kb = child.stderr.split()[-4:]
    with closing(sqlite3.connect(db)) as con:
        (summary,) = con.execute(
            "SELECT summary FROM attribution_runs WHERE status = 'succeeded' ORDER BY rowid DESC LIMIT 1"
        ).fetchone()
    seconds = json.loads(summary)["seconds"]
    cpu = float(user) + float(system)
    return {
        "seconds": seconds,
        "child_seconds": float(wall),
        "cpu_seconds": cpu,
        "peak_mb": int(peak_kb) / 1024,
    }


STARTUP_IMPORTS = "import attribution.cli, attribution.pipeline.in_process"
"""What a run imports before its first step (the CLI, the settings, the pipeline)."""


def startup_seconds(repeat: int = 5) -> float:
    """The fastest of ``repeat`` imports of ``STARTUP_IMPORTS`` in a fresh interpreter: a run's start-up
    before its first step, without the interpreter's own start (about 20 ms)."""
    code = f"import time; t = time.perf_counter(); {STARTUP_IMPORTS}; print(time.perf_counter() - t)"
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(repeat)
    ]
    return min(float(child.stdout) for child in runs)


def pristine(scenario: Scenario) -> tuple[Path, float | None]:
    """The scenario's database as generated (no index, no output), and the generation's seconds if it was
    generated now: it is generated once and kept, since 10M sessions take minutes (delete it to regenerate)."""
    path = DATA / f"{scenario.stem}.pristine.db"
    if path.exists():
        return path, None
    partial, seconds = generate(scenario, path.with_suffix(".partial"))
    return partial.rename(path), seconds


def working_copy(scenario: Scenario) -> tuple[Path, float | None]:
    """A fresh copy of the scenario's pristine database, and the generation's seconds (``pristine``)."""
    source, generate_seconds = pristine(scenario)
    db = DATA / f"{scenario.stem}.db"
    shutil.copyfile(source, db)
    return db, generate_seconds


def scheduled_runs(
    db: str | Path,
    out: Path,
    days: list[str],
    after: Callable[[str], None] = lambda _label: None,
    model: str = DEFAULT_MODEL,
    restate_days: int = 0,
    runner: Callable[..., dict] = run_in_child,
) -> dict:
    """The ``RUNS`` on ``db``, in order, each in a fresh process (``runner``: ``run_in_child``, or
    ``run_command`` for ``--cli``), the daily ones over
    ``days`` (the history's last two: ``last_days``); with ``restate_days``, then the last day again with
    that restatement window, its inputs unchanged (``window``), and once more after a restatement of the
    window's first day (``restated``). ``after`` is called with each run's label once it has ended."""
    before, day = days
    bounds = {"first": (), "rerun": (), "first day": (before, day), "day": (day, next_day(day))}
    runs = {}
    for label in RUNS:
        runs[label] = runner(db, out, *(bounds[label] or ("", "")), model=model)
        after(label)
    if restate_days:
        for label in WINDOW_RUNS:
            if label == "restated":
                restate(db, (date.fromisoformat(day) - timedelta(days=restate_days)).isoformat())
            runs[label] = runner(db, out, day, next_day(day), model=model, restate_days=restate_days)
            after(label)
    return runs


def restate(db: str | Path, day: str) -> None:
    """Double the cost of every session of ``day``, as an ad platform restating its spend."""
    with closing(sqlite3.connect(db)) as con, con:
        con.execute(
            "UPDATE session_costs SET cost = cost * 2 WHERE session_id IN "
            "(SELECT session_id FROM session_sources WHERE event_date = ?)",
            (day,),
        )


def bench(
    scenario: Scenario, daily: int, model: str = DEFAULT_MODEL, restate_days: int = 0, cli: bool = False
) -> dict:
    db, generate_seconds = working_copy(scenario)
    out = DATA / f"{scenario.stem}-reports"
    runner = run_command if cli else run_in_child
    runs = scheduled_runs(db, out, last_days(db, 2), model=model, restate_days=restate_days, runner=runner)
    for result in runs.values():
        result["sessions_per_second"] = scenario.sessions / result["seconds"]["total"]
    checked = {"daily": check_daily_runs(db, out, daily)} if daily else {}
    db.unlink()  # the pristine file stays; a copy is gigabytes
    return {
        "scenario": asdict(scenario),
        "model": model,
        "restate_days": restate_days,
        "generate_seconds": generate_seconds,
        "cli": cli,
        **({"startup_seconds": startup_seconds()} if cli else {}),
        **runs,
        **checked,
    }


def check_daily_runs(db: Path, out: Path, count: int) -> dict:
    """``count`` daily runs over the history's last days, from empty output tables, against one run over
    the same days: exits unless both leave the same tables and a byte-identical CSV."""
    days = last_days(db, count)
    _empty_outputs(db)
    daily = [run_in_child(db, out, day, next_day(day)) for day in days]
    after_daily = _outputs(db, out)
    _empty_outputs(db)
    once = run_in_child(db, out, days[0], next_day(days[-1]))
    if _outputs(db, out) != after_daily:
        sys.exit(f"{count} daily runs on {db} left other tables or another CSV than one run over their days")
    totals = [run["seconds"]["total"] for run in daily]
    return {"days": count, "mean": sum(totals) / count, "max": max(totals), "once": once["seconds"]["total"]}


def _empty_outputs(db: Path) -> None:
    """Empty the output tables, so that each side of the comparison starts from nothing."""
    with closing(sqlite3.connect(db)) as con, con:
        con.execute("DELETE FROM attribution_customer_journey")
        con.execute("DELETE FROM channel_reporting")


def _outputs(db: Path, out: Path) -> tuple[list, list, bytes]:
    with closing(sqlite3.connect(db)) as con:
        credit = con.execute(
            "SELECT * FROM attribution_customer_journey ORDER BY conv_id, session_id"
        ).fetchall()
        report = con.execute("SELECT * FROM channel_reporting ORDER BY channel_name, date").fetchall()
    return credit, report, (out / CSV_NAME).read_bytes()


def show(result: dict) -> None:
    s = result["scenario"]
    print(
        f"\n{s['name']}, model {result['model']}: {s['sessions']:,} sessions, {s['conversions']:,} conversions, "
        f"{s['days']} days, {s['layout']} layout ("
        + (
            f"generated in {seconds:.1f} s)"
            if (seconds := result["generate_seconds"])
            else "generated earlier)"
        )
    )
    labels = [label for label in (*RUNS, *WINDOW_RUNS) if label in result]
    steps = list(dict.fromkeys(step for label in labels for step in result[label]["seconds"]))
    print(
        f"{'run':<10}"
        + "".join(f"{step:>14}" for step in steps)
        + f"{'wall':>8}{'cpu' if result.get('cli') else '':>8}{'sessions/s':>12}{'peak MB':>10}"
    )
    for label in labels:
        r = result[label]
        cpu = f"{r['cpu_seconds']:>8.2f}" if "cpu_seconds" in r else f"{'':>8}"
        print(
            f"{label:<10}"
            + "".join(f"{r['seconds'].get(step, 0):>14.2f}" for step in steps)
            + f"{r['child_seconds']:>8.2f}{cpu}{r['sessions_per_second']:>12,.0f}{r['peak_mb']:>10.0f}"
        )
    day, rerun = result["day"]["seconds"]["total"], result["rerun"]["seconds"]["total"]
    print(f"a daily run costs {day / rerun:.2f} of a whole-range rerun")
    if result.get("cli"):
        print(
            f"each run through the attribution command, wall and peak as /usr/bin/time measures them; the import "
            f"of the run's modules ({STARTUP_IMPORTS}) in a fresh interpreter: {result['startup_seconds']:.2f} s"
        )
    for label in WINDOW_RUNS:
        if label in result:
            window = result[label]["seconds"]["total"]
            print(
                f"{label}: a daily run with --restate-days {result['restate_days']} costs {window / day:.2f} of "
                f"one without, {window / rerun:.2f} of a whole-range rerun"
            )
    if daily := result.get("daily"):
        print(
            f"{daily['days']} daily runs (mean {daily['mean']:.2f} s, max {daily['max']:.2f} s) left the same "
            f"tables and a byte-identical CSV as one run over their days ({daily['once']:.2f} s)"
        )


def show_layout_ratios(results: list[dict]) -> None:
    """Sorted over arrival layout, total wall time, for each scenario measured in both: how much the
    key-ordered layout flatters the pipeline."""
    by_layout = {(r["scenario"]["name"], r["scenario"]["days"], r["scenario"]["layout"]): r for r in results}
    for (name, days, layout), arrival in by_layout.items():
        ordered = by_layout.get((name, days, "sorted"))
        if layout != "arrival" or ordered is None:
            continue
        ratios = ", ".join(
            f"{run} {ordered[run]['seconds']['total'] / arrival[run]['seconds']['total']:.2f}" for run in RUNS
        )
        print(f"{name}, {days} days, sorted / arrival layout: {ratios}")


def scenarios(names: list[str] | None, days: list[int] | None, layouts: list[str] | None) -> list[Scenario]:
    """The named scenarios (all by default) for each history length and layout asked for."""
    chosen = [SCENARIOS[name] for name in names or SCENARIOS]
    return [
        replace(scenario, days=length or scenario.days, layout=layout)
        for scenario, length, layout in product(chosen, days or [None], layouts or [DEFAULT_LAYOUT])
    ]


def models(names: list[str] | None) -> list[str]:
    """The models asked for; ``all``: every local model, and Markov of orders 2 and 3 beside order 1."""
    from attribution.models import MODELS

    if not names:
        return [DEFAULT_MODEL]
    every = [*sorted(MODELS), "markov:2", "markov:3"]
    return list(dict.fromkeys(model for name in names for model in (every if name == "all" else [name])))


def compare(old_path: Path, new_path: Path) -> None:
    old, new = json.loads(old_path.read_text()), json.loads(new_path.read_text())
    for before, after in zip(old, new, strict=True):
        for label in RUNS:
            a, b = before[label]["seconds"]["total"], after[label]["seconds"]["total"]
            print(f"{after['scenario']['name']:<8} {label:<10} {a:8.2f} s -> {b:8.2f} s ({b / a:5.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--days", type=int, action="append", help="days of history (default: the scenario's)")
    parser.add_argument("--layout", choices=LAYOUTS, action="append", help=f"default {DEFAULT_LAYOUT}")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"))
    parser.add_argument(
        "--daily",
        type=int,
        default=0,
        metavar="N",
        help="also check N daily runs against one run over their days",
    )
    parser.add_argument(
        "--model",
        action="append",
        help=f"a model, markov:ORDER, or all (default {DEFAULT_MODEL}); repeatable",
    )
    parser.add_argument(
        "--restate-days",
        type=int,
        default=0,
        metavar="N",
        help="also time the last day with a restatement window of N days, unchanged, then after a restatement",
    )
    parser.add_argument(
        "--cli",
        action="store_true",
        help="run each run through the attribution command under /usr/bin/time (wall, peak) and time the start-up",
    )
    parser.add_argument(
        "--child", nargs=6, help=argparse.SUPPRESS
    )  # database, output, start, end ("" for all), model, restatement window
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_run(*args.child)))
        return
    if args.compare:
        compare(*args.compare)
        return
    results = [
        bench(scenario, args.daily, model, args.restate_days, args.cli)
        for scenario in scenarios(args.scenario, args.days, args.layout)
        for model in models(args.model)
    ]
    for result in results:
        show(result)
    show_layout_ratios(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
