"""Settings as they may be shown (no password of the database URL in a repr or str), and the one list of
option names a mapping of options may use."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from attribution import load_settings
from attribution.errors import ConfigError
from attribution.pipeline.settings import OPTIONS, Settings, public_options

URLS = [
    "postgresql+psycopg://analyst:s3cret@db.example:5432/warehouse",
    "postgresql+psycopg://analyst@db.example/warehouse?password=s3cret&sslmode=require",
]


@pytest.mark.parametrize("url", URLS)
def test_the_settings_repr_and_str_hide_the_database_password(url):
    settings = load_settings(db=url)
    for shown in (repr(settings), str(settings)):
        assert "s3cret" not in shown and "db.example" in shown
    assert settings.warehouse.db == url  # hidden only when shown


SECRET_SPELLINGS = [
    "db",
    "Db",
    "DB",
    "ihc_api_key",
    "IHC_API_KEY",
    "Ihc_Api_Key",
    "storage_options",
    "Storage_Options",
    "tableau_token_secret",
    "Tableau_Token_Secret",
    "tableau_token_name",
    "TABLEAU_URL",
]


@pytest.mark.parametrize("name", SECRET_SPELLINGS)
def test_a_mapping_of_options_never_sets_a_secret_or_a_connection_in_any_spelling(name):
    """Issue 21 item 3: the DAG's refusal was case-sensitive while Settings matches names in any case."""
    with pytest.raises(ConfigError, match="must not hold") as refused:
        public_options({name: "k3y-abc"}, "Variable attribution_options")
    assert "k3y-abc" not in str(refused.value) and len(str(refused.value).splitlines()) == 1


def test_options_are_matched_without_case_and_by_their_aliases():
    given = {"Lookback_Days": 30, "IHC_API_URL": "http://127.0.0.1:9", "conv_type_id": "shop"}
    options = public_options(given, "Variable attribution_options")
    assert options == {"lookback_days": 30, "ihc_url": "http://127.0.0.1:9", "conv_type_id": "shop"}
    assert load_settings(**options).range.lookback_days == 30


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"lookback": 3}, "unknown option 'lookback'"),
        ({"model": "linear", "MODEL": "markov"}, "'model' is given twice"),
        ([["model", "linear"]], "expected a JSON object"),
    ],
)
def test_a_bad_mapping_of_options_is_one_line_naming_it(given, message):
    with pytest.raises(ConfigError, match=message):
        public_options(given, "Variable attribution_options")


def test_the_cli_and_the_library_match_names_as_the_variable_does():
    assert load_settings(IHC_API_KEY="k3y-abc").ihc_api.api_key.get_secret_value() == "k3y-abc"
    with pytest.raises(ConfigError, match="'ihc_api_key' is given twice"):
        load_settings(ihc_api_key="a", IHC_API_KEY="b")


def test_the_settings_repr_and_str_hide_credentials_in_the_ihc_url():
    """Issue 21 item 11: ``repr(Settings)`` showed the user and password inside ``ihc_url``."""
    settings = load_settings(ihc_url="https://analyst:s3cret@ihc.example/v1?token=t0ken&region=eu")
    for shown in (repr(settings), str(settings)):
        assert "s3cret" not in shown and "t0ken" not in shown and "analyst" not in shown
        assert "ihc.example/v1" in shown and "region=eu" in shown


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("lookback_days", 36_501),
        ("chunk_conversions", 10**12),
        ("half_life_hours", float("inf")),
        ("max_journeys", 10**9),
        ("max_sessions", 10**12),
        ("concurrency", 10**6),
        ("rate_limit", float("nan")),
        ("max_requests", 10**15),
        ("max_retries", 10**6),
        ("max_connection_failures", 10**9),
        ("request_timeout", float("inf")),
    ],
)
def test_every_numeric_setting_is_bounded_with_one_line_naming_it(name, value):
    """Issue 21 item 12: numbers past what a warehouse or the client can compute (a lookback SQLite turns into
    NULL, a timeout of inf) passed the settings."""
    with pytest.raises(ConfigError, match=f"^Bad setting {name}: ") as refused:
        load_settings(**{name: value})
    assert len(str(refused.value).splitlines()) == 1


def test_the_tableau_token_secret_never_shows_in_the_settings_or_the_target():
    settings = load_settings(
        tableau_url="https://u:pw@tableau.example",
        tableau_project="Marketing",
        tableau_token_name="ci",
        tableau_token_secret="pat-s3cret",
    )
    for shown in (repr(settings), str(settings), repr(settings.tableau_target)):
        assert "pat-s3cret" not in shown
    assert ":pw@" not in repr(settings) + repr(settings.tableau_target) and "tableau.example" in repr(
        settings
    )


def leaves(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every setting's path in the groups (the IHC API's client-only fields aside)."""
    paths = set()
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            paths |= leaves(kind, (*prefix, name))
        elif (*prefix, name) not in CLIENT_ONLY:
            paths.add((*prefix, name))
    return paths


CLIENT_ONLY = {("ihc_api", name) for name in ("backoff_base", "backoff_max", "redistribution", "transport")}


def test_one_table_names_every_setting_once_and_the_groups_stay_few():
    """Issue 22 item 4: flags, environment variables and DAG params map onto the groups through one table."""
    paths = [option.path for option in OPTIONS.values()]
    assert sorted(paths) == sorted(leaves(Settings)) and len(set(paths)) == len(paths)
    assert len(Settings.model_fields) <= 8


def test_the_environment_keeps_its_names_and_a_flag_beats_it(monkeypatch):
    monkeypatch.setenv("IHC_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("attribution_request_timeout", "5")
    monkeypatch.setenv("ATTRIBUTION_FORMATS", '["csv"]')
    monkeypatch.setenv("ATTRIBUTION_DB", "env.db")
    settings = load_settings(db="flag.db")
    assert (settings.ihc_api.base_url, settings.ihc_api.timeout) == ("http://127.0.0.1:9", 5.0)
    assert (settings.output.formats, settings.warehouse.db) == (("csv",), "flag.db")
    assert settings.replaced(request_timeout=7.0).ihc_api.timeout == 7.0
