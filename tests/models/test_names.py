"""The models' names apart from the models (for a fast CLI start) stay equal to the registry's."""

import pytest

from attribution.errors import ConfigError
from attribution.models import MODELS, check_model_name
from attribution.models.names import IHC_ENGINE, LOCAL_MODELS, MODEL_NAMES, PATH_MODELS, REMOTE_MODELS
from attribution.models.path_model import PathModel


def test_the_names_are_the_registry_and_the_remote_models_sorted():
    assert tuple(sorted(MODELS)) == LOCAL_MODELS
    assert tuple(sorted([*MODELS, *REMOTE_MODELS])) == MODEL_NAMES


def test_each_model_is_registered_under_its_own_name():
    """The registry names each model's module, not its class: the class must answer to the same name."""
    assert {name: model.name for name, model in MODELS.items()} == {name: name for name in MODELS}


def test_the_names_a_run_asks_about_before_building_its_model_are_the_models_own():
    assert MODELS[IHC_ENGINE].name == IHC_ENGINE
    assert (
        tuple(sorted(name for name, model in MODELS.items() if issubclass(model, PathModel))) == PATH_MODELS
    )


def test_a_typo_gets_the_closest_name():
    with pytest.raises(ConfigError, match="Did you mean 'linear'"):
        check_model_name("lineer")
