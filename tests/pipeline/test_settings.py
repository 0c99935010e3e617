"""Settings as they may be shown: no password of the database URL in a repr or str."""

from __future__ import annotations

import pytest

from attribution import load_settings

URLS = [
    "postgresql+psycopg://analyst:s3cret@db.example:5432/warehouse",
    "postgresql+psycopg://analyst@db.example/warehouse?password=s3cret&sslmode=require",
]


@pytest.mark.parametrize("url", URLS)
def test_the_settings_repr_and_str_hide_the_database_password(url):
    settings = load_settings(db=url)
    for shown in (repr(settings), str(settings)):
        assert "s3cret" not in shown and "db.example" in shown
    assert settings.db == url  # hidden only when shown
