"""The project's IHC server as a child process on a free port: for ``attribution run --local-ihc``, demos,
tests and benchmarks.

Why a separate process: it is the real service boundary (real HTTP, its own event loop), and it can be
killed or faulted without touching the caller.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

STARTUP_SECONDS = 60


@dataclass
class LocalServer:
    """A running server: its URL, its process and the file its log goes to."""

    process: subprocess.Popen[str]
    log: Path
    url: str = ""

    @classmethod
    def launch(cls, log: Path, *flags: str, api_key: str, env: dict[str, str] | None = None) -> LocalServer:
        """Start ``python -m attribution serve-ihc --port 0 FLAGS`` accepting ``api_key`` (given by environment)."""
        environment = {**os.environ, "IHC_API_KEY": api_key, **(env or {})}
        command = [sys.executable, "-m", "attribution", "serve-ihc", "--port", "0", *flags]
        with log.open("w") as log_file:  # the log goes to a file: a full pipe would stall the server
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log_file, env=environment, text=True
            )
        return cls(process, log)

    def wait_ready(self) -> LocalServer:
        """Block until the server announces its URL (or fail with its log)."""
        ready, _, _ = select.select([self.process.stdout], [], [], STARTUP_SECONDS)
        line = self.process.stdout.readline() if ready else ""  # type: ignore[union-attr]
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"IHC server did not start: {line!r}\n{self.log.read_text()}")
        self.url = line.split()[-1]
        return self

    def stop(self) -> None:
        """Terminate the server (kill it if it does not stop within ten seconds)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> LocalServer:
        return self.wait_ready()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
