"""Database URLs as the pipeline parses and shows them: a user name or password with an unencoded '@' is
refused in one line that shows no part of it, never split at a guess (the driver would then name part of the
password as the host)."""

from __future__ import annotations

import logging

import pytest

from attribution import load_settings, run
from attribution.errors import ConfigError
from attribution.warehouse.engine import connect, redact_url

SECRET_PARTS = ("Kq7", "Zx9-w")
"""The two halves of the password ``Kq7@Zx9-w``: neither may be shown."""
UNENCODED = [
    "postgresql+psycopg://analyst:Kq7@Zx9-w@127.0.0.1:5432/warehouse",
    "postgresql+psycopg://analyst:Kq7@Zx9-w/x@127.0.0.1/warehouse",  # a '/' in it too: no host to take
    "postgresql+psycopg://analyst:Kq7@Zx9-w?x@127.0.0.1/warehouse",
    "redshift+redshift_connector://analyst:Kq7@Zx9-w@cluster.example.com:5439/dev",
    "postgresql+psycopg://ana@lyst:Kq7Zx9-w@127.0.0.1/warehouse?sslpassword=Kq7@Zx9-w",
]


def shows_no_secret(text: str) -> bool:
    return not any(part in text for part in SECRET_PARTS)


@pytest.mark.parametrize("url", UNENCODED)
def test_a_url_with_an_unencoded_at_is_shown_without_any_part_of_its_credentials(url):
    assert shows_no_secret(redact_url(url)), redact_url(url)


@pytest.mark.parametrize("url", UNENCODED)
def test_a_url_with_an_unencoded_at_is_refused_in_one_line_saying_how_to_write_it(url):
    with pytest.raises(ConfigError, match=r"more than one '@'.*%40") as raised:
        connect(url)
    assert shows_no_secret(str(raised.value)) and "\n" not in str(raised.value)


def test_the_refusal_reaches_the_caller_and_the_logs_without_the_password(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as raised:
        run(load_settings(db=UNENCODED[0], out=str(tmp_path)))
    assert shows_no_secret(str(raised.value)) and shows_no_secret(caplog.text), caplog.text


def test_an_encoded_at_and_an_at_in_a_sqlite_path_are_read_as_written(tmp_path):
    engine = connect("postgresql+psycopg://analyst:Kq7%40Zx9-w@127.0.0.1:5432/warehouse")
    assert (engine.url.password, engine.url.host) == ("Kq7@Zx9-w", "127.0.0.1")
    engine.dispose()
    path = tmp_path / "a@b@c.db"
    engine = connect(f"sqlite:///{path}", must_exist=False)
    assert engine.url.database == str(path)
    engine.dispose()
    assert shows_no_secret(redact_url("postgresql+psycopg://analyst:Kq7%40Zx9-w@127.0.0.1/warehouse"))
