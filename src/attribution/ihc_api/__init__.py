"""Client and server of the IHC attribution API (the contract is in docs/ihc-api.md and ``contract.py``).

The pipeline uses ``IHCApiAttributor(ClientConfig(...))``; tests and benchmarks run ``create_app`` or
``attribution serve-ihc`` as the service. Names load on first use, so the server process does not
import the client's HTTP stack and the client does not import the server's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attribution.lazy import lazy_names

if TYPE_CHECKING:
    from attribution.ihc_api.client import IHCApiAttributor
    from attribution.ihc_api.config import ClientConfig
    from attribution.ihc_api.faults import FaultConfig
    from attribution.ihc_api.outcomes import BatchOutcome, ClientReport
    from attribution.ihc_api.packing import PackingPlan, lower_bound, pack_requests
    from attribution.ihc_api.server import create_app, serve

_HOMES = {
    "BatchOutcome": "outcomes",
    "ClientConfig": "config",
    "ClientReport": "outcomes",
    "FaultConfig": "faults",
    "IHCApiAttributor": "client",
    "PackingPlan": "packing",
    "create_app": "server",
    "lower_bound": "packing",
    "pack_requests": "packing",
    "serve": "server",
}

__all__ = [
    "BatchOutcome",
    "ClientConfig",
    "ClientReport",
    "FaultConfig",
    "IHCApiAttributor",
    "PackingPlan",
    "create_app",
    "lower_bound",
    "pack_requests",
    "serve",
]


__getattr__ = lazy_names(__name__, _HOMES)
