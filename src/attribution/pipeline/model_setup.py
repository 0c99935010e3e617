"""The attributor a run uses, built from its settings: what the model learns from the warehouse first.

Why here, not in ``models``: models are pure; the IHC engine's stored parameters, and the paths Markov and
Shapley learn from, are read from the warehouse by this layer and handed in.
"""

from __future__ import annotations

from sqlalchemy import Engine

from attribution.models import Attributor, check_model_name, get_model
from attribution.models.names import IHC_ENGINE, PATH_MODELS
from attribution.paths import build_conversion_paths, build_null_paths
from attribution.pipeline.settings import Settings


def build_model(
    settings: Settings, engine: Engine | None = None, *, conversion_paths: bool = True
) -> Attributor:
    """The attributor ``settings.model`` names, ready to run on ``engine`` (default: the settings' warehouse).

    ``ihc-api`` gets a client configured from the settings; ``ihc`` the parameters stored for the
    conversion type; ``markov`` and ``shapley`` learn from the run's null paths and, unless
    ``conversion_paths`` is false (a caller that streams the range's journeys anyway and trains the model
    on them, ``PathModel.trained_on``), from its converting paths, read here.
    """
    if settings.remote:
        from attribution.ihc_api.client import IHCApiAttributor  # its HTTP stack: only for a run that sends

        return IHCApiAttributor(settings.ihc_api)
    check_model_name(settings.model.name)
    if engine is None:
        with settings.open_warehouse() as owned:
            return build_model(settings, owned, conversion_paths=conversion_paths)
    learned = _learned_options(settings, engine, conversion_paths)
    return get_model(settings.model.name, **settings.model.options(), **learned)


def reads_null_paths(model: str) -> bool:
    """Whether the model learns from null paths: the range's sessions of users who never converted."""
    return model in PATH_MODELS


def learns_from_warehouse(model: str) -> bool:
    """Whether building the model reads the warehouse first (stored IHC parameters, or paths to learn)."""
    return model == IHC_ENGINE or reads_null_paths(model)


def _learned_options(settings: Settings, engine: Engine, conversion_paths: bool) -> dict[str, object]:
    if settings.model.name == IHC_ENGINE:
        from attribution.store.parameters import load_parameters  # numpy: IHC runs only

        return {"parameters": load_parameters(engine, settings.ihc_api.conv_type_id)}
    if not reads_null_paths(settings.model.name):
        return {}
    paths = (engine, settings.time_range, settings.journey_options)
    learned: dict[str, object] = {"null_paths": build_null_paths(*paths)}
    if conversion_paths:
        learned["conversion_paths"] = build_conversion_paths(*paths)
    return learned
