"""Models side by side on a range's journeys, outside a run: nothing is stored, no report is touched.

Why the journeys are read once: a path model (Markov, Shapley) learns from the range's converting paths,
which are these very journeys (same range, same journey options), so it is built without reading them again
(``build_model(conversion_paths=False)``) and trained on them (``PathModel.trained_on``).
"""

from __future__ import annotations

import polars as pl
from sqlalchemy import Engine

from attribution.errors import ConfigError
from attribution.models import Attributor
from attribution.models.comparison import SPLITS, compare_models, wide_comparison
from attribution.models.path_model import PathModel
from attribution.pipeline.model_setup import build_model, reads_null_paths
from attribution.pipeline.range_journeys import range_journeys
from attribution.pipeline.settings import Settings
from attribution.vocabulary import journey_paths


def compare_models_on_range(
    settings: Settings, names: list[str], value: str = "credit", split: str = "journey"
) -> pl.DataFrame:
    """Channel ``value`` (credit or revenue) per model on the range's journeys under ``split``
    (``models.comparison.SPLITS``): one column per model."""
    if value not in ("credit", "revenue"):
        raise ConfigError(f"Bad comparison value {value!r}: expected 'credit' or 'revenue'")
    if split not in SPLITS:
        raise ConfigError(f"Bad credit split {split!r}: expected {' or '.join(map(repr, SPLITS))}")
    journeys = range_journeys(settings, null_paths=any(reads_null_paths(name) for name in names))
    with settings.open_warehouse() as engine:
        models = {name: _model(settings, name, engine, journeys) for name in names}
    return wide_comparison(compare_models(journeys, models, split), value)


def _model(settings: Settings, name: str, engine: Engine, journeys: pl.DataFrame) -> Attributor:
    """The model ``name``, a path model trained on ``journeys`` (its converting paths) rather than reading
    them again."""
    model = build_model(settings.replaced(model=name), engine, conversion_paths=False)
    return model.trained_on(journey_paths(journeys)) if isinstance(model, PathModel) else model
