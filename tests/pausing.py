"""``python -m tests.pausing POINT ROOT ARGS...``: the ``attribution`` command (or ``-c CODE``), stopped at one point of its
file publishing so a test can SIGKILL it exactly there (``Paused``).

A point is ``before:GLOB`` or ``after:GLOB``: the first ``os.replace`` whose destination, relative to the
folder ``ROOT``, matches ``GLOB`` (fnmatch: ``*`` crosses folders). Every file the export places, in its
staging folder or in ``ROOT``, arrives by ``os.replace``, so the points name the same moments in any
version of the code: ``after:channel_reporting.csv`` is "the CSV is in place, the other files not yet".
The process stops itself (SIGSTOP), so the test knows it is there without polling. Why a wrapper here and
not a hook in the package: production code carries nothing for it.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


def _pause_at(point: str, root: Path) -> None:
    when, _, pattern = point.partition(":")
    replace, reached = os.replace, False

    def pausing_replace(src: os.PathLike | str, dst: os.PathLike | str, **kwargs: object) -> None:
        nonlocal reached
        target = Path(os.path.abspath(dst))
        here = not reached and target.is_relative_to(root)
        here = here and fnmatch.fnmatch(str(target.relative_to(root)), pattern)
        if here and when == "before":
            reached = True
            os.kill(os.getpid(), signal.SIGSTOP)
        replace(src, dst, **kwargs)
        if here and when == "after":
            reached = True
            os.kill(os.getpid(), signal.SIGSTOP)

    os.replace = pausing_replace


@dataclass
class Paused:
    """A command started with a pause point: ``stopped`` says whether it reached it (else it ended)."""

    process: subprocess.Popen
    stopped: bool
    log: Path

    @classmethod
    def start(cls, point: str, root: Path, *args: str, log: Path) -> Paused:
        command = [sys.executable, "-m", "tests.pausing", point, str(root.resolve()), *args]
        with log.open("w") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=_REPO)
        _, status = os.waitpid(process.pid, os.WUNTRACED)
        if os.WIFSTOPPED(status):
            return cls(process, True, log)
        process.returncode = os.waitstatus_to_exitcode(status)
        return cls(process, False, log)

    def kill(self) -> None:
        """SIGKILL the stopped command and reap it."""
        self.process.kill()
        os.waitpid(self.process.pid, 0)

    def resume(self) -> int:
        """Let the stopped command go on; its exit code."""
        os.kill(self.process.pid, signal.SIGCONT)
        _, status = os.waitpid(self.process.pid, 0)
        return os.waitstatus_to_exitcode(status)


_REPO = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    _pause_at(sys.argv[1], Path(sys.argv[2]))
    if sys.argv[3] == "-c":  # a scheduler's task: Python code
        exec(sys.argv[4])
    else:
        sys.argv = ["attribution", *sys.argv[3:]]
        from attribution.cli import main

        main()
