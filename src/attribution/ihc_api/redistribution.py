"""The optional ``redistribution_parameter`` for the server: the logic lives in ``attribution.models``.

Why there: the local engine applies the same rules (``IHC(parameters, redistribution)``), so one
implementation serves both; this module keeps the server's import path and names.
"""

from __future__ import annotations

from attribution.models.ihc import combined_ihc, redistribute

__all__ = ["combined_ihc", "redistribute"]
