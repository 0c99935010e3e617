"""Secrets kept out of what is shown: which names hold secrets, and how a quoted secret is blanked.

Why whole tokens only: blanking every occurrence of a short secret (a one-character key) would blank those
characters all over a message, making it unreadable while hiding nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

HIDDEN = "***"
SECRET_NAME_WORDS = ("secret", "token", "password", "passwd", "pwd")
"""An option or URL query parameter whose name contains one of these holds a secret."""


def is_secret_name(name: str) -> bool:
    """Whether an option or query parameter of this name holds a secret (``password``, ``aws_secret_key``)."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_NAME_WORDS)


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
