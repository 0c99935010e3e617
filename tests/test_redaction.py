"""Secrets blanked in what is shown, whole tokens only, so a short secret cannot mangle a message."""

from __future__ import annotations

import pytest

from attribution.redaction import hide_credentials, is_secret_name, one_line, scrub


@pytest.mark.parametrize(
    ("text", "secret", "shown"),
    [
        ("Illegal header value b'k3y-A_9\\r'", "k3y-A_9", "Illegal header value b'***\\r'"),
        ("user:pa$$@host", "pa$$", "user:***@host"),
        (
            "The API key in the x-api-key header was refused.",
            "e",
            "The API key in the x-api-key header was refused.",
        ),
        ("key e refused", "e", "key *** refused"),
    ],
)
def test_a_secret_is_blanked_where_it_stands_alone_and_nowhere_else(text, secret, shown):
    assert scrub(text, [secret]) == shown


@pytest.mark.parametrize(("name", "secret"), [("password", True), ("sslpassword", True), ("sslmode", False)])
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("bad body\r\n2026-12-07 INFO forged", "bad body 2026-12-07 INFO forged"),
        ("\x1b]0;title\x07Owned \x1b[31mRed\x9b0m", "]0;titleOwned [31mRed0m"),
        ("tab\tand\u2028separator\x00", "tab and separator"),
        ("Organic Traffic [/] ü", "Organic Traffic [/] ü"),
    ],
)
def test_one_line_keeps_text_and_drops_line_breaks_and_control_characters(text, shown):
    assert one_line(text) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:s3cret@api.example/v1", "https://***@api.example/v1"),
        (
            "https://u:s3/cr?et#x@api.example/v1",
            "https://***@api.example/v1",
        ),  # the password ends the authority
        ("https://api.example/v1?token=s3cret", "https://api.example/v1?token=***"),
        ("https://api.example/v1", "https://api.example/v1"),
    ],
)
def test_a_url_is_shown_without_any_part_of_its_password(url, shown):
    assert hide_credentials(url) == shown
    assert "s3" not in hide_credentials(url)
