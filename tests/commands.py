"""The ``attribution`` command as a user runs it: a separate process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def attribution(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "attribution", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )
