"""The ``attribution`` command as a user runs it: a separate process, one per command line, or one that runs
many command lines, each at a barrier shared with other runs (``CommandProcess``)."""

from __future__ import annotations

import io
import multiprocessing
import subprocess
import sys
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from unittest.mock import patch

BARRIER_SECONDS = 120


def attribution(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "attribution", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


class CommandProcess:
    """A process of its own that runs ``attribution`` command lines one at a time through ``cli.main``, each
    released by a barrier it shares with the other runs of the test (another ``CommandProcess``, a DAG run).

    Why not a new process per run: Python's start-up and the imports cost about two seconds, the run on a tiny
    database a fraction of that; the command line, its error handler and exit code are the same.
    """

    def __init__(self, barrier: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._commands, self._results = context.Queue(), context.Queue()
        self._process = context.Process(target=_serve, args=(barrier, self._commands, self._results))
        self._process.start()

    @staticmethod
    def barrier(parties: int) -> Any:
        """A barrier for ``parties`` runs: ``CommandProcess`` instances and the test's own thread."""
        return multiprocessing.get_context("spawn").Barrier(parties, timeout=BARRIER_SECONDS)

    def start(self, *args: str, delay: float = 0.0) -> None:
        """Run ``attribution ARGS`` once every party reached the barrier, ``delay`` seconds after it."""
        self._commands.put((args, delay))

    def result(self) -> tuple[int, str]:
        """The exit code and the standard error of the last run."""
        return self._results.get(timeout=BARRIER_SECONDS)

    def close(self) -> None:
        self._commands.put(None)
        self._process.join(timeout=30)


def _serve(barrier: Any, commands: Any, results: Any) -> None:
    from attribution import cli  # imported once: every run after the first starts at once

    while (command := commands.get()) is not None:
        args, delay = command
        barrier.wait()
        time.sleep(delay)
        results.put(_run(cli.main, args))


def _run(main: Any, args: tuple[str, ...]) -> tuple[int, str]:
    """``main`` as ``attribution ARGS``: its exit code and standard error (a crash: 99 and the traceback)."""
    errors = io.StringIO()
    with (
        redirect_stderr(errors),
        redirect_stdout(io.StringIO()),
        patch.object(sys, "argv", ["attribution", *args]),
    ):
        try:
            main()
        except SystemExit as exc:
            return (exc.code if isinstance(exc.code, int) else 1), errors.getvalue()
        except Exception:  # the test reports it, with its traceback
            return 99, errors.getvalue() + traceback.format_exc()
    return 0, errors.getvalue()


def assert_ended_well(results: list[tuple[int, str]]) -> None:
    """Runs at once ended well: each exit 0, or exit 1 with one line saying it waited for the lock in vain;
    never a disk I/O error, never a traceback."""
    assert all("disk I/O error" not in stderr for _, stderr in results), results
    assert any(code == 0 for code, _ in results), results
    for code, stderr in results:
        assert code == 0 or (code == 1 and len(stderr.strip().splitlines()) == 1 and "lock" in stderr), (
            results
        )


def attribution_in_process(*args: str) -> tuple[int, str]:
    """``attribution ARGS`` through the CLI's entry point in this process (no interpreter start: a fraction
    of the time): the exit code and stderr (a crash: 99 and the traceback)."""
    from attribution import cli

    return _run(cli.main, args)
