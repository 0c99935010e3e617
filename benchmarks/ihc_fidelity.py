"""IHC fidelity benchmark: how far each credit rule is from the real IHC service's answers.

On the fixture of real answers (975 journeys, ``tests/fixtures/ihc-real-answers.csv``), the mean absolute
error per phase and of ``ihc``, over the sessions of journeys of two or more sessions, of: the engine's
shipped defaults; ``calibrate-ihc`` under cross-validation (folds of whole journeys); ``train-ihc`` on the
same journeys (no answers used); linear credit; and a naive phase rule (initializer all on the first
session, holder evenly over holder-engaged sessions, closer all on the last closer-eligible one, the
calibrated phase weights). Figures are quoted in docs/models.md, outside pass/fail.
Usage:
    python benchmarks/ihc_fidelity.py
    python benchmarks/ihc_fidelity.py --folds 10 --json benchmarks/results/ihc_fidelity.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import polars as pl

from attribution.models import IHC, IHCParameters, Linear
from attribution.models.base import JOURNEY
from attribution.models.ihc import combined_ihc, timed_sessions
from attribution.models.ihc_answers import answer_journeys, check_answers
from attribution.models.ihc_calibration import DEFAULT_FOLDS, Fidelity, compare, cross_validate
from attribution.models.ihc_training import TrainingDataWarning, train_ihc
from attribution.pipeline.calibration import read_answers

ANSWERS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ihc-real-answers.csv"


def naive_phases(journeys: pl.DataFrame) -> pl.DataFrame:
    """The naive phase rule, combined with the calibrated phase weights."""
    sessions = timed_sessions(journeys)
    engaged = (pl.col("holder_engagement") == 1) & (pl.col("length") >= 2)
    last_eligible = pl.col("position") == pl.col("position").filter("closer_eligible").max().over(JOURNEY)
    phases = sessions.with_columns(
        initializer=(pl.col("position") == 0).cast(pl.Float64),
        holder=pl.when(engaged).then(1 / engaged.sum().over(JOURNEY)).otherwise(0.0),
        closer=last_eligible.cast(pl.Float64),
    )
    return phases.select(
        "conv_id", "session_id", "initializer", "holder", "closer", combined_ihc(phases, IHCParameters())
    )


def trained(journeys: pl.DataFrame) -> pl.DataFrame:
    """``train-ihc`` on the answers' journeys (fewer than the vendor recommends: the warning is expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingDataWarning)
        return IHC(train_ihc(journeys)).attribute(journeys)


def measure(answers: pl.DataFrame, folds: int) -> dict[str, Fidelity]:
    journeys = answer_journeys(answers)
    return {
        "defaults": compare(IHC().attribute(journeys), answers),
        f"calibrate, {folds}-fold cross-validated": cross_validate(answers, folds=folds),
        "train-ihc": compare(trained(journeys), answers),
        "linear": compare(Linear().attribute(journeys), answers),
        "naive phase rule": compare(naive_phases(journeys), answers),
    }


def show(results: dict[str, Fidelity]) -> None:
    print(f"{'credit rule':<36}{'initializer':>12}{'holder':>9}{'closer':>9}{'ihc':>9}")
    for name, error in results.items():
        cells = zip((error.initializer, error.holder, error.closer, error.ihc), (12, 9, 9, 9), strict=True)
        print(f"{name:<36}" + "".join(f"{'-' if math.isnan(v) else f'{v:.4f}':>{w}}" for v, w in cells))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--answers", type=Path, default=ANSWERS)
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    answers = check_answers(read_answers(args.answers))
    began = time.perf_counter()
    results = measure(answers, args.folds)
    seconds = time.perf_counter() - began
    multi = answers.filter(pl.len().over("conversion_id") >= 2)
    print(
        f"{answers['conversion_id'].n_unique():,} journeys, {multi['conversion_id'].n_unique():,} of two or more sessions ({multi.height:,} sessions); {seconds:.1f} s"
    )
    show(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        runs = [{"rule": name, **asdict(error)} for name, error in results.items()]
        args.json.write_text(
            json.dumps({"answers": str(args.answers), "folds": args.folds, "runs": runs}, indent=2)
        )


if __name__ == "__main__":
    main()
