"""What is shown kept clean: which names hold secrets, how a quoted secret is blanked, and text from data as
one printable line (``one_line``).

Why whole tokens only: blanking every occurrence of a short secret (a one-character key) would blank those
characters all over a message, making it unreadable while hiding nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

HIDDEN = "***"
_BREAKS = re.compile(r"[\t\n\v\f\r\x1c-\x1e\x85\u2028\u2029]+")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""C0, DEL and C1 control characters: ESC (terminal sequences), BEL, CR, ..."""
SECRET_NAME_WORDS = ("secret", "token", "password", "passwd", "pwd")
"""An option or URL query parameter whose name contains one of these holds a secret."""


def is_secret_name(name: str) -> bool:
    """Whether an option or query parameter of this name holds a secret (``password``, ``aws_secret_key``)."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_NAME_WORDS)


def has_unencoded_at(url: str) -> bool:
    """Whether ``url`` names a host (``scheme://`` and no path right after) and holds more than one ``@``
    after its scheme: an ``@`` of its user name or password (or elsewhere) not written as ``%40``.

    Why refused rather than guessed: parsers split such a URL at different ``@`` (SQLAlchemy at the first
    after the password's colon, urllib at the last), so a driver takes the rest of the password for the host
    and names it in its error; nor can the credentials' end be told from the text, since a password may
    hold a ``/`` or a ``?`` as well. A SQLite URL (``sqlite:////path``) names no host: its path may hold any.
    """
    _scheme, separator, rest = url.partition("://")
    return bool(separator) and not rest.startswith("/") and rest.count("@") > 1


def hide_credentials(url: str) -> str:
    """``url`` as it may be shown: a ``user:password@`` hidden, and the value of a query parameter whose
    name holds a secret (``?token=``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    scheme, separator, rest = url.partition("://")
    if separator and "@" in parts.path + parts.query + parts.fragment:
        # A password holding "/", "?" or "#" ends the authority early (urllib's split): all before the last
        # "@" may be credentials, so all of it is hidden.
        return hide_credentials(f"{scheme}://{HIDDEN}@{rest.rpartition('@')[2]}")
    host = parts.netloc.rpartition("@")[2]
    pairs = [pair.partition("=") for pair in parts.query.split("&")] if parts.query else []
    query = "&".join(
        f"{name}={HIDDEN}" if is_secret_name(unquote(name)) else name + sign + value
        for name, sign, value in pairs
    )
    netloc = f"{HIDDEN}@{host}" if "@" in parts.netloc else host
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def scrub(text: str, secrets: Iterable[str], hidden: str = HIDDEN) -> str:
    """``text`` with each secret blanked wherever it stands as a whole token, not inside a longer word."""
    for secret in sorted({secret for secret in secrets if secret}, key=len, reverse=True):
        text = _token_pattern(secret).sub(hidden, text)
    return text


def _token_pattern(secret: str) -> re.Pattern[str]:
    """``secret``, not preceded or followed by a word character where its own edge is one."""
    before = r"(?<!\w)" if re.match(r"\w", secret[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", secret[-1]) else ""
    return re.compile(before + re.escape(secret) + after)


def one_line(text: object) -> str:
    """``text`` as one printable line: line breaks and tabs as one space, other control characters dropped.

    Why: text from data or a service (a channel name, an id, an error body) that reaches a log, a table or a
    terminal must not forge a log line, move the cursor or retitle the window (``ESC]0;...``).
    """
    return _CONTROLS.sub("", _BREAKS.sub(" ", str(text)))
