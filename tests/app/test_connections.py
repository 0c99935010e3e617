"""A scheduler's connections, as plain mappings, become settings: database URLs, the IHC API's base URL,
object store options and Tableau's settings, without the scheduler."""

from __future__ import annotations

import pytest

from attribution.app.connections import connection_url, http_url, s3_options, tableau_settings
from attribution.errors import ConfigError


def connection(conn_type: str, **fields: object) -> dict[str, object]:
    return {"conn_id": "attribution_db", "conn_type": conn_type, **fields}


@pytest.mark.parametrize(
    ("conn", "url"),
    [
        (connection("sqlite", host="/data/warehouse.db"), "sqlite:////data/warehouse.db"),
        (
            connection("postgres", host="db", port=5432, login="u", password="p@ss", schema="w"),
            "postgresql+psycopg://u:p%40ss@db:5432/w",
        ),
        (
            connection("redshift", host="c.example.com", port=5439, login="u", schema="dev"),
            "redshift+redshift_connector://u@c.example.com:5439/dev",
        ),
    ],
)
def test_a_connection_becomes_a_sqlalchemy_url(conn, url):
    assert connection_url(conn) == url


def test_a_connection_of_another_type_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match="add it by URI"):
        connection_url(connection("generic", host="/data/warehouse.db"))


def test_an_http_connection_gives_the_ihc_base_url():
    assert http_url(connection("generic", host="api.example.com")) == "https://api.example.com"
    assert http_url(connection("generic", host="http://127.0.0.1:8000")) == "http://127.0.0.1:8000"
    assert http_url(connection("http", host="127.0.0.1", port=8000)) == "http://127.0.0.1:8000"


def test_an_aws_connection_gives_only_the_options_it_holds():
    conn = connection("aws", login="AKIA", password="s3cret", extra={"endpoint_url": "http://127.0.0.1:9"})
    assert s3_options(conn) == {"key": "AKIA", "secret": "s3cret", "endpoint_url": "http://127.0.0.1:9"}
    with pytest.raises(ConfigError, match="give the object store as type aws"):
        s3_options(connection("generic"))


def test_a_tableau_connection_without_its_project_is_refused_naming_what_is_missing():
    conn = connection(
        "generic",
        host="https://tableau.example.com",
        login="ci",
        password="s3cret",
        extra={"site": "marketing"},
    )
    with pytest.raises(ConfigError, match='lacks its extra "project"') as refused:
        tableau_settings(conn)
    assert "s3cret" not in str(refused.value)
    conn["extra"]["project"] = "Marketing"
    assert tableau_settings(conn) == {
        "tableau_url": "https://tableau.example.com",
        "tableau_token_name": "ci",
        "tableau_token_secret": "s3cret",
        "tableau_site": "marketing",
        "tableau_project": "Marketing",
    }
