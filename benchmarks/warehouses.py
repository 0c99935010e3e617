"""Warehouse benchmark: the same pipeline on SQLite and on PostgreSQL, step by step, with peak memory.

The scenario's generated SQLite database (arrival layout) is loaded into a fresh PostgreSQL database with
``copy_inputs`` (timed: rows/s), then each warehouse runs the pipeline as a scheduler would
(``pipeline.scheduled_runs``: a first run building the indexes, a whole-range rerun, then the last two days
one by one), each in a fresh child process. The two warehouses' ``channel_reporting`` tables and CSVs must
agree, and every later run must leave the first run's table and CSV: the benchmark exits non-zero, saying
what differs, when they do not. Peak memory is the pipeline process's; the PostgreSQL server's own memory is
not in it, its tables' and indexes' sizes are reported instead.

With ``--typed`` the comparison is PostgreSQL's text copy against a typed copy of it, made in the same
database (schema ``typed``, the challenge's names): ``DATE`` and ``TIME`` columns, ``BOOLEAN`` flags,
``NUMERIC`` money, the same keys, rows in the same order. Both run the same pipeline, and their tables and
CSVs must be identical; SQLite is left out.

Usage:
    python benchmarks/warehouses.py                         # 10,000,000 sessions / 200,000 conversions, 10 days
    python benchmarks/warehouses.py --scenario 5m --days 30
    python benchmarks/warehouses.py --scenario default --json benchmarks/results/warehouses.json
    python benchmarks/warehouses.py --scenario 10m --days 100 --typed   # typed columns against text ones

The database is benchmarks/pipeline.py's pristine one (generated once, without pipeline indexes or output
tables); every SQLite first run starts from a fresh copy of it. The PostgreSQL database
(``--postgres``, default ``attribution_bench`` on the local server) is dropped and created on each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from attribution.reporting.channel_report import read_channel_report
from attribution.warehouse.copy_db import copy_inputs
from attribution.warehouse.engine import connect, redact_url
from attribution.warehouse.schema import refresh_statistics
from attribution.warehouse.tables import INPUT_TABLES
from pipeline import DATA, HERE, RUNS, SCENARIOS, Scenario, last_days, scheduled_runs
from pipeline import pristine as pipeline_pristine

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/attribution_bench"
RESULTS = HERE / "results"
WAREHOUSES = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "typed": "PostgreSQL typed"}
TYPED_SCHEMA = "typed"
TYPED = {
    "event_date": "CAST({} AS DATE)",
    "conv_date": "CAST({} AS DATE)",
    "event_time": "CAST({} AS TIME)",
    "conv_time": "CAST({} AS TIME)",
    "holder_engagement": "CAST({} AS BOOLEAN)",
    "closer_engagement": "CAST({} AS BOOLEAN)",
    "impression_interaction": "CAST({} AS BOOLEAN)",
    "revenue": "CAST(CAST({} AS TEXT) AS NUMERIC)",
    "cost": "CAST(CAST({} AS TEXT) AS NUMERIC)",
}
"""How the typed copy stores each column that is not text (money through its shortest text, so the decimal
is the float's exact digits and reads back as the same float)."""
TOLERANCE = 1e-9
"""Largest difference allowed between report numbers, relative to the number (absolute below 1):
the two warehouses add the same values in a different order."""
SIZES_SQL = """
SELECT c.relname, pg_relation_size(c.oid), pg_indexes_size(c.oid), pg_total_relation_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname = current_schema()
ORDER BY pg_total_relation_size(c.oid) DESC
"""


def working_copy(pristine: Path) -> Path:
    """A fresh copy for the SQLite runs, so the first run finds no index and the pristine file stays so."""
    copy = pristine.with_name(pristine.name.replace(".pristine", "-sqlite"))
    for leftover in (copy, Path(f"{copy}-wal"), Path(f"{copy}-shm"), Path(f"{copy}-journal")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(pristine, copy)
    return copy


def recreate_postgres(url: str) -> None:
    """Drop and create the benchmark's PostgreSQL database (nothing else on the server is touched)."""
    name = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def load_postgres(source: Path, url: str) -> dict:
    """Copy the input tables into PostgreSQL with ``copy_inputs``; rows and rows per second."""

    def progress(table: str, done: int, total: int) -> None:
        if done == total:
            print(f"  copied {table}: {total:,} rows", flush=True)

    began = time.perf_counter()
    rows = copy_inputs(str(source), url, on_progress=progress)
    seconds = time.perf_counter() - began
    return {"rows": rows, "seconds": seconds, "rows_per_second": sum(rows.values()) / seconds}


def load_typed(url: str) -> tuple[str, dict]:
    """A typed copy of the loaded text tables in schema ``TYPED_SCHEMA`` (``TYPED``; the same primary keys,
    rows in the same order), analysed as ``copy_inputs`` leaves its tables; the URL that reads it (its
    ``search_path``, where the runs also keep their output tables) and the seconds it took."""
    began = time.perf_counter()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {TYPED_SCHEMA}"))
        for table in INPUT_TABLES:
            items = ", ".join(f"{TYPED.get(c.name, '{}').format(c.name)} AS {c.name}" for c in table.columns)
            typed = f"{TYPED_SCHEMA}.{table.name}"
            conn.execute(text(f"CREATE TABLE {typed} AS SELECT {items} FROM public.{table.name}"))
            key = ", ".join(c.name for c in table.primary_key.columns)
            conn.execute(text(f"ALTER TABLE {typed} ADD PRIMARY KEY ({key})"))
    refresh_statistics(engine, [f"{TYPED_SCHEMA}.{table.name}" for table in INPUT_TABLES])
    engine.dispose()
    typed_url = make_url(url).update_query_dict({"options": f"-csearch_path={TYPED_SCHEMA}"})
    return typed_url.render_as_string(hide_password=False), {"seconds": time.perf_counter() - began}


def postgres_sizes(url: str) -> dict[str, dict[str, float]]:
    """Each table's heap, index and total size (``pg_total_relation_size``) in MB."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(SIZES_SQL)).fetchall()
    engine.dispose()
    mb = 1024 * 1024
    return {
        name: {"table": heap / mb, "indexes": ix / mb, "total": total / mb} for name, heap, ix, total in rows
    }


def read_report(db: str) -> pl.DataFrame:
    engine = connect(db)
    with engine.connect() as conn:
        report = read_channel_report(conn)
    engine.dispose()
    return report


def compare_reports(left: pl.DataFrame, right: pl.DataFrame, what: str) -> dict:
    """Whether two report tables agree: the same (channel, date) rows and numbers within ``TOLERANCE``."""
    keys = ["channel_name", "date"]
    if left.select(keys).rows() != right.select(keys).rows():
        only = set(left.select(keys).rows()) ^ set(right.select(keys).rows())
        return {"what": what, "ok": False, "detail": f"{len(only)} (channel, date) rows in one table only"}
    worst = 0.0
    for column in ("cost", "ihc", "ihc_revenue"):
        a, b = left[column].to_numpy(), right[column].to_numpy()
        scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), 1.0)
        worst = max(worst, float(np.max(np.abs(a - b) / scale, initial=0.0)))
    return {
        "what": what,
        "ok": worst <= TOLERANCE,
        "identical": left.equals(right),
        "rows": left.height,
        "max_relative_difference": worst,
    }


def compare_files(left: Path, right: Path, what: str) -> dict:
    return {"what": what, "ok": left.read_bytes() == right.read_bytes(), "bytes": left.stat().st_size}


def run_warehouse(name: str, db: str, out: Path, days: list[str]) -> tuple[dict, dict, list[dict]]:
    """The scheduled runs (``pipeline.scheduled_runs``: a first run, a rerun, two daily runs): their figures,
    the last report and CSV, and the checks that each later run left the first run's table and CSV."""
    reports, csvs = {}, {}

    def keep(label: str) -> None:
        reports[label] = read_report(db)
        csvs[label] = out / f"channel_reporting.{label.replace(' ', '-')}.csv"
        shutil.copyfile(out / "channel_reporting.csv", csvs[label])

    runs = scheduled_runs(db, out, days, keep)
    checks = [
        check
        for label in RUNS[1:]
        for check in (
            compare_reports(
                reports["first"], reports[label], f"{name}: the {label} leaves the first run's table"
            ),
            compare_files(csvs["first"], csvs[label], f"{name}: the {label} leaves the first run's CSV"),
        )
    ]
    return runs, {"report": reports["rerun"], "csv": csvs["rerun"]}, checks


def source_state() -> dict:
    """The commit and the uncommitted source files the figures were measured with."""
    git = ["git", "-C", str(HERE.parent)]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    status = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True).stdout
    return {"commit": commit, "uncommitted": [line[3:] for line in status.splitlines()]}


def bench(scenario: Scenario, postgres: str, typed: bool = False) -> dict:
    machine = {"cpus": os.cpu_count(), "load_average_before": os.getloadavg()}
    pristine, generate_seconds = pipeline_pristine(scenario)
    origin = f"generated in {generate_seconds:.1f} s" if generate_seconds else "generated earlier"
    print(f"database {pristine.name}: {origin}", flush=True)
    recreate_postgres(postgres)
    print(f"loading into {redact_url(postgres)} ...", flush=True)
    load = load_postgres(pristine, postgres)
    if typed:
        print(f"copying into schema {TYPED_SCHEMA} with typed columns ...", flush=True)
        typed_url, load["typed"] = load_typed(postgres)
        warehouses = {"postgresql": postgres, "typed": typed_url}
    else:
        warehouses = {"sqlite": str(working_copy(pristine)), "postgresql": postgres}
    sizes = {"loaded": postgres_sizes(postgres)}
    runs, outputs, checks = {}, {}, []
    for warehouse, db in warehouses.items():
        print(f"running on {WAREHOUSES[warehouse]} ...", flush=True)
        out = DATA / f"{scenario.stem}-reports-{warehouse}"
        runs[warehouse], outputs[warehouse], own_checks = run_warehouse(
            WAREHOUSES[warehouse], db, out, last_days(pristine, 2)
        )
        checks += own_checks
        for result in runs[warehouse].values():
            result["sessions_per_second"] = scenario.sessions / result["seconds"]["total"]
    sizes["after_runs"] = postgres_sizes(postgres)
    (one, left), (other, right) = ((WAREHOUSES[name], outputs[name]) for name in warehouses)
    checks += [
        compare_reports(left["report"], right["report"], f"{one} and {other} give the same table"),
        compare_files(left["csv"], right["csv"], f"{one} and {other} give the same CSV"),
    ]
    sqlite_db = warehouses.get("sqlite")
    return {
        "scenario": asdict(scenario),
        "database": origin,
        "load": load,
        "warehouses": list(warehouses),
        "runs": runs,
        "postgresql_mb": sizes,
        "sqlite_mb": Path(sqlite_db).stat().st_size / 1024 / 1024 if sqlite_db else None,
        "checks": checks,
        "machine": {**machine, "load_average_after": os.getloadavg()},
        "source": source_state(),
    }


def show(result: dict) -> None:
    s, load = result["scenario"], result["load"]
    print(
        f"\n{s['sessions']:,} sessions, {s['conversions']:,} conversions, {s['days']} days, {s['layout']} layout "
        f"(database {result['database']})"
    )
    print(
        f"load into PostgreSQL (copy_inputs): {sum(load['rows'].values()):,} rows in {load['seconds']:.1f} s, "
        f"{load['rows_per_second']:,.0f} rows/s"
    )
    if "typed" in load:
        print(f"typed copy (schema {TYPED_SCHEMA}, keys, VACUUM ANALYZE): {load['typed']['seconds']:.1f} s")
    warehouses = {name: WAREHOUSES[name] for name in result["warehouses"]}
    columns = [(w, label) for w in warehouses for label in RUNS]
    runs = [result["runs"][w][label] for w, label in columns]
    steps = list(dict.fromkeys(step for r in runs for step in r["seconds"]))
    print(f"\n{'seconds':<20}" + "".join(f"{f'{WAREHOUSES[w]} {label}':>22}" for w, label in columns))
    for step in steps:
        print(f"{step:<20}" + "".join(f"{r['seconds'].get(step, 0):>22.2f}" for r in runs))
        if step == "prepare":
            print(f"{'  of it indexes':<20}" + "".join(f"{r['index_seconds'] or 0:>22.2f}" for r in runs))
    rows = (
        ("child process", "child_seconds", ".2f"),
        ("sessions/s", "sessions_per_second", ",.0f"),
        ("peak MB (client)", "peak_mb", ",.0f"),
    )
    for name, key, form in rows:
        print(f"{name:<20}" + "".join(f"{r[key]:>22{form}}" for r in runs))
    for warehouse, name in warehouses.items():
        day, rerun = (result["runs"][warehouse][label]["seconds"]["total"] for label in ("day", "rerun"))
        print(f"{name}: a daily run costs {day / rerun:.2f} of a whole-range rerun")
    machine = result["machine"]
    print(
        f"machine: {machine['cpus']} CPUs, load average {machine['load_average_before'][0]:.2f} before, "
        f"{machine['load_average_after'][0]:.2f} after"
    )
    if "typed" in warehouses:
        for label in RUNS:
            text_total, typed_total = (
                result["runs"][w][label]["seconds"]["total"] for w in ("postgresql", "typed")
            )
            print(
                f"typed / text, {label}: {typed_total / text_total:.3f} ({typed_total:.2f} s / {text_total:.2f} s)"
            )
    if result["sqlite_mb"] is not None:
        print(f"\nSQLite file after the runs: {result['sqlite_mb']:,.0f} MB")
    print(f"{'PostgreSQL (tables of 1 MB or more), MB':<44}{'table':>10}{'indexes':>10}{'total':>10}")
    for stage, tables in result["postgresql_mb"].items():
        for name, size in tables.items():
            if size["total"] < 1:
                continue
            print(
                f"  {stage:<12}{name:<30}{size['table']:>10,.0f}{size['indexes']:>10,.0f}{size['total']:>10,.0f}"
            )
    print()
    for check in result["checks"]:
        print(("ok    " if check["ok"] else "FAILED ") + check["what"] + _check_detail(check))


def _check_detail(check: dict) -> str:
    if "detail" in check:
        return f": {check['detail']}"
    if "max_relative_difference" in check:
        exact = (
            "identical"
            if check["identical"]
            else f"max relative difference {check['max_relative_difference']:.1e}"
        )
        return f" ({check['rows']} rows, {exact})"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="10m")
    parser.add_argument("--days", type=int, help="days of history (default: the scenario's)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="database to drop, create and fill")
    parser.add_argument("--json", type=Path, help="where to write the results (default: benchmarks/results/)")
    parser.add_argument(
        "--typed", action="store_true", help="PostgreSQL's text copy against a typed copy (no SQLite)"
    )
    args = parser.parse_args()
    scenario = replace(SCENARIOS[args.scenario], days=args.days or SCENARIOS[args.scenario].days)
    result = bench(scenario, args.postgres, typed=args.typed)
    show(result)
    typed = "-typed" if args.typed else ""
    path = args.json or RESULTS / f"warehouses-{scenario.stem}{typed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {path}")
    failed = [check["what"] for check in result["checks"] if not check["ok"]]
    if failed:
        sys.exit("The warehouses disagree: " + "; ".join(failed))


if __name__ == "__main__":
    main()
