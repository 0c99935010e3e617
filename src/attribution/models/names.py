"""The models' names, apart from the models: what ``--model`` accepts, known without importing Polars.

Why apart: the CLI lists and checks names before any work, and its start must stay fast. A test keeps
``LOCAL_MODELS`` equal to the registry's names (``registry.MODELS``).
"""

from __future__ import annotations

from difflib import get_close_matches

from attribution.errors import ConfigError

LOCAL_MODELS = (
    "first-touch",
    "ihc",
    "last-non-direct",
    "last-touch",
    "linear",
    "markov",
    "position-based",
    "shapley",
    "time-decay",
)
"""The registry's models, sorted."""
REMOTE_MODELS = ("ihc-api",)
"""Models the pipeline builds itself (they need a client configuration, not constructor options)."""
IHC_ENGINE = "ihc"
"""The local IHC engine (``models.ihc.IHC``): it reads its stored parameters before a run."""
PATH_MODELS = ("markov", "shapley")
"""The models that learn from null paths (``models.path_model.PathModel``'s). Why names here: a run asks
before it builds its model, and must not import every model to know."""
MODEL_NAMES = tuple(sorted(LOCAL_MODELS + REMOTE_MODELS))
"""Every name ``--model`` accepts, sorted."""


def check_model_name(name: str) -> None:
    """Refuse an unknown model name with the closest known one and the full list."""
    if name not in MODEL_NAMES:
        close = get_close_matches(name, MODEL_NAMES, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"Unknown model '{name}'.{hint} Known models: {', '.join(MODEL_NAMES)}")
