"""The models' names apart from the models (for a fast CLI start) stay equal to the registry's."""

import pytest

from attribution.errors import ConfigError
from attribution.models import MODELS, check_model_name
from attribution.models.names import LOCAL_MODELS, MODEL_NAMES, REMOTE_MODELS


def test_the_names_are_the_registry_and_the_remote_models_sorted():
    assert tuple(sorted(MODELS)) == LOCAL_MODELS
    assert tuple(sorted([*MODELS, *REMOTE_MODELS])) == MODEL_NAMES


def test_a_typo_gets_the_closest_name():
    with pytest.raises(ConfigError, match="Did you mean 'linear'"):
        check_model_name("lineer")
