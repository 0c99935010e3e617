"""IHC API benchmark: the original one-at-a-time 199-session batches against the client's defaults.

Journeys come from benchmarks/pipeline.py's default database (generated if missing, in the arrival layout
real tables have; its name says so); the service is the project's IHC
server, started as a subprocess with an added latency per request to stand in for the internet.
Scenarios run in order against one server:
    original-199     one request at a time, at most 199 sessions (and 100 journeys) of whole journeys
    client-defaults  the client as configured by default: 100 journeys / 3000 sessions, 4 in flight
Usage:
    python benchmarks/ihc_api.py                       # both scenarios, 200 ms latency
    python benchmarks/ihc_api.py --json results/ihc_api.json
    python benchmarks/ihc_api.py --compare old.json new.json
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from attribution.ihc_api.local import LocalServer
from pipeline import DATA, SCENARIOS, generate

DEFAULT_DB = DATA / f"{SCENARIOS['default'].stem}.db"
SPEEDUP_TARGET = 3.5
PACKING_SLACK = 1.05


@dataclass(frozen=True)
class Scenario:
    name: str
    max_journeys: int
    max_sessions: int
    concurrency: int


SCENARIOS = (Scenario("original-199", 100, 199, 1), Scenario("client-defaults", 100, 3000, 4))


def load_journeys(db: Path) -> pl.DataFrame:
    """Every journey of the database, generating the default database first if it is missing."""
    from attribution.journeys import build_journeys
    from attribution.warehouse.engine import connect

    if not db.exists():
        generate(SCENARIOS["default"], db)
    engine = connect(str(db))
    try:
        return pl.concat([chunk.journeys for chunk in build_journeys(engine)])
    finally:
        engine.dispose()


def measure(scenario: Scenario, journeys: pl.DataFrame, url: str, api_key: str) -> dict:
    """Send every journey once as the scenario says; time it and compare its requests with the lower bound."""
    from attribution.ihc_api import ClientConfig, IHCApiAttributor, lower_bound

    config = ClientConfig(
        base_url=url,
        api_key=api_key,
        conv_type_id="default",
        max_journeys=scenario.max_journeys,
        max_sessions=scenario.max_sessions,
        concurrency=scenario.concurrency,
    )
    began = time.perf_counter()
    report = IHCApiAttributor(config).attribute_batches(journeys, lambda outcome: None)
    seconds = time.perf_counter() - began
    lengths = journeys.group_by("conv_id").len()["len"]
    sent_sessions = int(lengths.clip(upper_bound=scenario.max_sessions).sum())
    bound = lower_bound(lengths.len(), sent_sessions, scenario.max_journeys, scenario.max_sessions)
    return {
        "scenario": asdict(scenario),
        "seconds": seconds,
        "requests": report.requests,
        "lower_bound": bound,
        "journeys_ok": report.journeys_ok,
        "journeys_failed": report.journeys_failed,
        "journeys_truncated": report.journeys_truncated,
    }


def bench(db: Path, latency_ms: float) -> dict:
    journeys = load_journeys(db)
    api_key = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="ihc-benchmark-") as folder:  # private (0700): no planted link
        log = Path(folder) / "server.log"
        with LocalServer.launch(log, "--latency-ms", str(latency_ms), api_key=api_key) as server:
            runs = [measure(scenario, journeys, server.url, api_key) for scenario in SCENARIOS]
    return {
        "db": str(db),
        "latency_ms": latency_ms,
        "journeys": journeys["conv_id"].n_unique(),
        "sessions": journeys.height,
        "runs": runs,
        "speedup": runs[0]["seconds"] / runs[1]["seconds"],
    }


def show(result: dict) -> None:
    print(
        f"{result['journeys']:,} journeys, {result['sessions']:,} sessions from {result['db']}; "
        f"server latency {result['latency_ms']:.0f} ms"
    )
    print(
        f"{'scenario':<17}{'requests':>9}{'lower bound':>13}{'ratio':>8}{'seconds':>9}{'ok':>7}{'truncated':>11}"
    )
    for run in result["runs"]:
        print(
            f"{run['scenario']['name']:<17}{run['requests']:>9}{run['lower_bound']:>13}"
            f"{run['requests'] / run['lower_bound']:>8.3f}{run['seconds']:>9.2f}"
            f"{run['journeys_ok']:>7}{run['journeys_truncated']:>11}"
        )
    defaults = result["runs"][1]
    within = defaults["requests"] <= PACKING_SLACK * defaults["lower_bound"]
    print(
        f"client-defaults is {result['speedup']:.2f}x faster (target >= {SPEEDUP_TARGET}x: "
        f"{'met' if result['speedup'] >= SPEEDUP_TARGET else 'MISSED'}); its requests are "
        f"{'within' if within else 'NOT within'} {PACKING_SLACK - 1:.0%} of the lower bound"
    )


def compare(old_path: Path, new_path: Path) -> None:
    old, new = json.loads(old_path.read_text()), json.loads(new_path.read_text())
    for before, after in zip(old["runs"], new["runs"], strict=True):
        a, b = before["seconds"], after["seconds"]
        print(f"{after['scenario']['name']:<17} {a:8.2f} s -> {b:8.2f} s ({b / a:5.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help="generated here if missing")
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"))
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    result = bench(args.db, args.latency_ms)
    show(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
