"""Names of a package that load on first use (PEP 562).

Why: importing a package should cost only what its user touches. ``import attribution`` or the CLI's
``--help`` must not pay for Polars, SQLAlchemy or an HTTP stack that a name they never use would need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_names(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name of ``homes`` imported from its home module
    (given relative to the package) when first asked for."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{homes[name]}"), name)

    return __getattr__
