"""The ``attribution`` command as a user runs it: a separate process."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest.mock import patch

from attribution import cli


def attribution(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "attribution", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def attribution_in_process(*args: str) -> tuple[int, str]:
    """``attribution ARGS`` through the CLI's entry point in this process (no interpreter start: a fraction
    of the time): the exit code and stderr; an error the entry point does not turn into one line escapes as
    the exception itself."""
    stderr = io.StringIO()
    with (
        redirect_stdout(io.StringIO()),
        redirect_stderr(stderr),
        patch.object(sys, "argv", ["attribution", *args]),
    ):
        try:
            cli.main()
        except SystemExit as exit_:
            return int(exit_.code or 0), stderr.getvalue()
    return 0, stderr.getvalue()
