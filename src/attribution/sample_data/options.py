"""The generator's options and their defaults, apart from the generator (which imports NumPy, Polars and
ADBC): ``attribution generate --help`` shows them and stays fast."""

from __future__ import annotations

from typing import Literal, get_args

Layout = Literal["arrival", "sorted"]
"""Physical row order. ``arrival``: as real exports store rows, by user and time, so that the random
64-character ids come in random key order. ``sorted``: by primary key, which makes every key lookup
sequential and flatters scans; kept for comparisons."""
LAYOUTS: tuple[Layout, ...] = get_args(Layout)

DEFAULT_LAYOUT: Layout = "arrival"
DEFAULT_SESSIONS = 500_000
DEFAULT_CONVERSIONS = 2_000
DEFAULT_DAYS = 10
DEFAULT_SEED = 42
