"""Attribution models benchmark: every model on a million in-memory journeys, time and peak memory.

Journeys are built in memory like the challenge data: 16 channels, 58 % one-session journeys and a power-law
tail to 40 sessions (mean about 1.9), log-logistic gaps; as many non-converting (null) paths, for Markov
and Shapley. Each scenario runs in its own child process, timed from journeys in memory to per-session
credit (for Markov and Shapley: building the model from its null paths, learning from the journeys,
attributing them), twice: "cold" is the first call in the process (memory still to be allocated, thread
pools to start), "warm" the second. Peak memory is the cold call's peak RSS above the RSS once the data was
loaded (Linux: the peak is reset through /proc/self/clear_refs).
Usage:
    python benchmarks/models.py                         # every scenario, 1,000,000 journeys
    python benchmarks/models.py --journeys 100000 --scenarios markov-1 shapley
    python benchmarks/models.py --json benchmarks/results/models.json
    python benchmarks/models.py --compare old.json new.json
    python benchmarks/models.py --scenarios learn-markov-1 learn-markov-3 learn-markov-3-30ch ca-markov-1

The "learn-" scenarios time only the path model's learning (counting distinct paths, the chain or the
coalitions, the scores); "-30ch" ones run on paths over 30 channels instead of 16. With ChannelAttribution
installed (pip install channelattribution; never needed by the tests), its "ca-markov-" scenarios time its
markov_model on the same paths, given as distinct paths with counts as it expects, and the closing lines
compare its channel conversions with the project's global split (``path_model.global_credit``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from attribution.models import IHC, get_model
from attribution.models.ihc_training import train_ihc
from attribution.models.path_model import code_paths, global_credit, indexed_paths
from attribution.sample_data.generate import CHANNELS
from attribution.vocabulary import journey_paths

HEURISTIC_TARGET, PATH_MODEL_TARGET, TRAIN_TARGET, IHC_TARGET = 1.0, 2.0, 5.0, 1.0
LENGTHS = np.arange(1, 41)
TAIL = LENGTHS[1:] ** -2.9
LENGTH_P = np.concatenate([[0.58], 0.42 * TAIL / TAIL.sum()])
START = np.datetime64("2023-09-01T00:00:00", "s")

Timed = Callable[[], object]
"""The timed part of a scenario; building it (outside the timing) may prepare data, e.g. train IHC."""


def attribute_with(name: str, **options: object) -> Callable[[pl.DataFrame, pl.DataFrame], Timed]:
    """A registry model built and run on the journeys (path models get the null paths)."""

    def prepare(journeys: pl.DataFrame, nulls: pl.DataFrame) -> Timed:
        extra = {"null_paths": nulls} if name in ("markov", "shapley") else {}
        return lambda: get_model(name, **extra, **options).attribute(journeys)

    return prepare


def learn_with(name: str, **options: object) -> Callable[[pl.DataFrame, pl.DataFrame], Timed]:
    """A path model learning its channel scores from the journeys and null paths (no attribution);
    it returns the scores' global split, to set beside ChannelAttribution's."""

    def prepare(journeys: pl.DataFrame, nulls: pl.DataFrame) -> Timed:
        paths, conversions = journey_paths(journeys), journeys["conv_id"].n_unique()
        model = lambda: get_model(name, null_paths=nulls, conversion_paths=paths, **options)  # noqa: E731
        return lambda: global_credit(model().trained_scores, conversions)

    return prepare


def on_distinct_paths(name: str, **options: object) -> Callable[[pl.DataFrame, pl.DataFrame], Timed]:
    """A path model's step on the distinct paths already counted (``CodedPaths``), as ChannelAttribution is
    fed: only the chain or the coalitions and the scores are timed; it returns their global split."""

    def prepare(journeys: pl.DataFrame, nulls: pl.DataFrame) -> Timed:
        model = get_model(name, **options)
        coded = code_paths(indexed_paths(journey_paths(journeys)), indexed_paths(nulls))
        conversions = journeys["conv_id"].n_unique()

        def timed() -> dict[str, float]:
            scores = dict(zip(coded.channels, model.score_channels(coded).tolist(), strict=True))
            return global_credit(scores, conversions)

        return timed

    return prepare


def channel_attribution(order: int) -> Callable[[pl.DataFrame, pl.DataFrame], Timed]:
    """ChannelAttribution's markov_model on the distinct paths with their counts, as it is meant to be fed;
    ``seed``: its simulation's (``noise_runs`` repeats it over several, for its seed-to-seed noise)."""

    def prepare(journeys: pl.DataFrame, nulls: pl.DataFrame, seed: int = 0) -> Timed:
        import ChannelAttribution

        frame = counted_paths(journeys, nulls).to_pandas()
        options = {"order": order, "verbose": False, "flg_pro": False, "seed": seed}

        def timed() -> dict[str, float]:
            result = ChannelAttribution.markov_model(
                frame, "path", "conversions", var_null="nulls", **options
            )
            return dict(zip(result["channel_name"], result["total_conversions"], strict=True))

        return timed

    return prepare


def mam_shapley(journeys: pl.DataFrame, nulls: pl.DataFrame) -> Timed:
    """DP6's marketing-attribution-models (MAM 2.x) Shapley on the same distinct paths, in its grouped format
    (one row per path and outcome with its count); its own preprocessing is part of what is timed."""
    from mam import MAM

    counted = counted_paths(journeys, nulls)
    grouped = pl.concat(
        [
            counted.select("path", occurrences="conversions", converted=pl.lit(True)),
            counted.select("path", occurrences="nulls", converted=pl.lit(False)),
        ]
    ).filter(pl.col("occurrences") > 0)

    def timed() -> dict[str, float]:
        mam = MAM(grouped, "grouped_journey", "path", "converted", occurrences_colname="occurrences")
        shares = mam.run_shapley().to_polars()
        return dict(zip(shares["channels"], shares["attribution"], strict=True))

    return timed


def counted_paths(journeys: pl.DataFrame, nulls: pl.DataFrame) -> pl.DataFrame:
    """Each distinct channel sequence ("A > B") with how many journeys and null paths follow it."""
    return (
        pl.concat(
            [
                _path_texts(journeys.rename({"conv_id": "path_id"})).with_columns(conversions=1, nulls=0),
                _path_texts(nulls).with_columns(conversions=0, nulls=1),
            ]
        )
        .group_by("path")
        .agg(pl.col("conversions", "nulls").sum())
    )


def _path_texts(paths: pl.DataFrame) -> pl.DataFrame:
    ordered = paths.sort("path_id", "timestamp", "session_id")
    return ordered.group_by("path_id").agg(path=pl.col("channel_name").str.join(" > "))


def train(journeys: pl.DataFrame, nulls: pl.DataFrame) -> Timed:
    return lambda: train_ihc(journeys)


def trained_ihc(journeys: pl.DataFrame, nulls: pl.DataFrame) -> Timed:
    model = IHC(train_ihc(journeys))
    return lambda: model.attribute(journeys)


SCENARIOS: dict[str, tuple[float | None, Callable[[pl.DataFrame, pl.DataFrame], Timed]]] = {
    **{
        name: (HEURISTIC_TARGET, attribute_with(name))
        for name in ("first-touch", "last-touch", "last-non-direct", "linear", "time-decay", "position-based")
    },
    "markov-1": (PATH_MODEL_TARGET, attribute_with("markov", order=1)),
    **{f"markov-{order}": (None, attribute_with("markov", order=order)) for order in (2, 3)},
    "shapley": (PATH_MODEL_TARGET, attribute_with("shapley")),
    "ihc-train": (TRAIN_TARGET, train),
    "ihc": (IHC_TARGET, attribute_with("ihc")),
    "ihc-trained": (IHC_TARGET, trained_ihc),
    **{f"learn-markov-{order}": (None, learn_with("markov", order=order)) for order in (1, 2, 3)},
    "learn-shapley": (None, learn_with("shapley")),
    "learn-markov-3-30ch": (None, learn_with("markov", order=3)),
    **{f"paths-markov-{order}": (None, on_distinct_paths("markov", order=order)) for order in (1, 2, 3)},
    "paths-markov-3-30ch": (None, on_distinct_paths("markov", order=3)),
    "paths-shapley": (None, on_distinct_paths("shapley")),
    **(
        {f"ca-markov-{order}": (None, channel_attribution(order)) for order in (1, 2, 3)}
        | {"ca-markov-3-30ch": (None, channel_attribution(3))}
        if importlib.util.find_spec("ChannelAttribution")
        else {}
    ),
    **({"mam-shapley": (None, mam_shapley)} if importlib.util.find_spec("mam") else {}),
}
"""Scenario name: (target seconds, or None without one, what to time)."""


WIDE_CHANNELS = (*CHANNELS, *(f"Channel {i}" for i in range(len(CHANNELS) + 1, 31)))
"""The 30 channels of the "-30ch" scenarios: the generator's 16 and 14 more."""


def build_paths(n: int, seed: int, converting: bool, channels: tuple[str, ...] = CHANNELS) -> pl.DataFrame:
    """``n`` journeys (or null paths) with challenge-like lengths and a power-law mix of ``channels``."""
    rng = np.random.default_rng(seed)
    lengths = rng.choice(LENGTHS, size=n, p=LENGTH_P)
    path = np.repeat(np.arange(n), lengths)
    last = np.r_[path[1:] != path[:-1], True]
    share = 1 / np.arange(1, len(channels) + 1) ** 0.8
    channel = rng.choice(len(channels), size=path.size, p=share / share.sum())
    u = rng.random(path.size)
    # Seconds from each session to the next one (log-logistic, median a day), or to the conversion.
    gaps = np.where(last, 60.0, 24 * 3600 * (u / (1 - u)) ** 0.5)
    after = np.r_[np.cumsum(gaps[::-1])[::-1], 0.0]  # after[i] = sum of gaps[i:]
    to_end = after[:-1] - after[np.flatnonzero(last) + 1][path]  # seconds from a session to its path's end
    end = START + rng.integers(0, 30 * 24 * 3600, n).astype("timedelta64[s]")
    timestamps = end[path] - to_end.astype("timedelta64[s]")
    frame = pl.DataFrame(
        {
            "path_id": path,
            "session_id": np.arange(path.size) + (0 if converting else 10**9),
            "timestamp": timestamps.astype("datetime64[ms]"),
            "channel_name": pl.Series(channels).gather(channel),
            "conv_ts": end[path].astype("datetime64[ms]"),
            "last": last,
        }
    ).with_columns(
        pl.col("path_id", "session_id").cast(pl.String),
        pl.col("timestamp", "conv_ts").dt.strftime("%Y-%m-%d %H:%M:%S"),
    )
    if not converting:
        return frame.select("path_id", "timestamp", "session_id", "channel_name")
    return frame.select(
        conv_id="path_id",
        conv_ts="conv_ts",
        revenue=pl.lit(50.0),
        session_id="session_id",
        timestamp="timestamp",
        channel_name="channel_name",
        holder_engagement=pl.lit(1, pl.Int8),
        closer_engagement=(pl.col("last") | (pl.col("session_id").cast(pl.Int64) % 3 == 0)).cast(pl.Int8),
        impression_interaction=pl.lit(0, pl.Int8),
        conversion=pl.col("last").cast(pl.Int8),
    )


def _memory_kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def child(scenario: str, data: Path, seeds: int) -> None:
    """Run one scenario on the saved data and print its figures as one JSON line; ChannelAttribution's
    also with ``seeds`` - 1 more seeds (not timed), for its seed-to-seed noise."""
    wide = "-30ch" if scenario.endswith("-30ch") else ""
    journeys = pl.read_parquet(data / f"journeys{wide}.parquet")
    nulls = pl.read_parquet(data / f"nulls{wide}.parquet")
    prepare = SCENARIOS[scenario][1]
    timed = prepare(journeys, nulls)
    Path("/proc/self/clear_refs").write_text("5")
    before = _memory_kib("VmRSS")
    began = time.perf_counter()
    result = timed()
    seconds = time.perf_counter() - began
    peak = (_memory_kib("VmHWM") - before) / 1024
    rows = result.height if isinstance(result, pl.DataFrame) else None
    shares = result if isinstance(result, dict) else None
    del result
    began = time.perf_counter()
    timed()
    warm = time.perf_counter() - began
    figures = {"scenario": scenario, "seconds": seconds, "warm_seconds": warm, "peak_mib": peak, "rows": rows}
    figures["channel_conversions"] = shares
    if scenario.startswith("ca-"):
        figures["seed_conversions"] = [shares] + [
            prepare(journeys, nulls, seed)() for seed in range(1, seeds)
        ]
    print(json.dumps(figures))


def run_scenario(scenario: str, data: Path, repeat: int, seeds: int) -> dict:
    """The scenario's run with the best cold time over ``repeat`` child processes."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--child", scenario, "--data", str(data), "--ca-seeds", str(seeds)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda run: run["seconds"])
    return {**best, "target": SCENARIOS[scenario][0]}


def bench(journeys: int, scenarios: list[str], repeat: int, seeds: int, show: Callable[[dict], None]) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        frame = build_paths(journeys, seed=1, converting=True)
        frame.write_parquet(data / "journeys.parquet")
        build_paths(journeys, seed=2, converting=False).write_parquet(data / "nulls.parquet")
        if any(scenario.endswith("-30ch") for scenario in scenarios):
            build_paths(journeys, 1, True, WIDE_CHANNELS).write_parquet(data / "journeys-30ch.parquet")
            build_paths(journeys, 2, False, WIDE_CHANNELS).write_parquet(data / "nulls-30ch.parquet")
        header = {"journeys": journeys, "sessions": frame.height, "null_paths": journeys, "channels": 16}
        print(f"{journeys:,} journeys, {frame.height:,} sessions, {journeys:,} null paths, 16 channels")
        print(f"{'scenario':<16}{'cold s':>8}{'warm s':>8}{'target':>8}{'peak MiB':>10}")
        runs = []
        for scenario in scenarios:
            runs.append(run_scenario(scenario, data, repeat, seeds))
            show(runs[-1])
    show_against_channel_attribution(runs)
    return {**header, "repeat": repeat, "runs": runs}


NOISE_LIMIT = 3.0
"""A channel's global split is within ChannelAttribution's noise when it is at most this many standard
deviations of CA's seed-to-seed results from their mean (CA estimates removal effects by simulation)."""


def show_against_channel_attribution(runs: list[dict]) -> None:
    """Per ChannelAttribution scenario, how far the project's global split (from its "paths-" run, else its
    "learn-" run) is from CA's conversions, in conversions and in CA's own seed-to-seed deviations."""
    by_name = {run["scenario"]: run for run in runs}
    for name, run in by_name.items():
        if not name.startswith("ca-"):
            continue
        counterpart = by_name.get(name.replace("ca-", "paths-", 1)) or by_name.get(
            name.replace("ca-", "learn-", 1)
        )
        if counterpart is None:
            continue
        ours, seeds = counterpart["channel_conversions"], run["seed_conversions"]
        theirs = np.array([[seed.get(channel, 0.0) for channel in ours] for seed in seeds])
        gap = np.array(list(ours.values())) - theirs.mean(axis=0)
        spread = theirs.std(axis=0, ddof=1) if len(seeds) > 1 else np.full(gap.size, np.nan)
        worst = int(np.argmax(np.abs(gap)))
        deviations = np.abs(gap) / spread
        verdict = "within" if (deviations <= NOISE_LIMIT).all() else "NOT within"
        print(
            f"{name} ({len(seeds)} seeds) vs {counterpart['scenario']}: largest gap {gap[worst]:+,.1f} conversions"
            f" ({list(ours)[worst]}); at most {np.nanmax(deviations):.1f} of CA's seed-to-seed deviations:"
            f" {verdict} its noise ({NOISE_LIMIT:g})"
        )


def show_run(run: dict) -> None:
    cold, warm, target = run["seconds"], run["warm_seconds"], run["target"]
    if target is None:
        verdict, shown = "", "-"
    else:
        verdict = "met" if cold <= target else "met warm only" if warm <= target else "MISSED"
        shown = f"{target:.1f}"
    print(f"{run['scenario']:<16}{cold:>8.2f}{warm:>8.2f}{shown:>8}{run['peak_mib']:>10.0f}  {verdict}")


def compare(old_path: Path, new_path: Path) -> None:
    old = {run["scenario"]: run for run in json.loads(old_path.read_text())["runs"]}
    for run in json.loads(new_path.read_text())["runs"]:
        if run["scenario"] in old:
            a, b = old[run["scenario"]]["seconds"], run["seconds"]
            print(f"{run['scenario']:<16} {a:7.2f} s -> {b:7.2f} s ({b / a:5.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--repeat", type=int, default=1, help="child runs per scenario; the best is kept")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"))
    parser.add_argument(
        "--ca-seeds", type=int, default=10, help="ChannelAttribution runs per scenario (seeds 0, 1, ...)"
    )
    parser.add_argument("--child", choices=list(SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.ca_seeds)
    elif args.compare:
        compare(*args.compare)
    else:
        result = bench(args.journeys, args.scenarios, args.repeat, args.ca_seeds, show_run)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
