"""SIGINT and SIGTERM as an exception, so a stopped run unwinds like a failed one: its transaction rolls
back, its run record is closed as ``interrupted`` and its files are left as they were.

Why an exception raised by the handler: Python runs a signal handler in the main thread between two
bytecodes, so the exception surfaces at the next Python step (a statement the warehouse is running, a commit
included, finishes first) and every ``with`` block on the way out closes as it does for an error.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from attribution.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextmanager
def stopping_on_signals(*, ignored: bool = False) -> Iterator[None]:
    """SIGINT and SIGTERM raise ``Interrupted`` in the main thread while the block runs, or with ``ignored``
    are held off (the few statements that close a run's record); elsewhere, or in another thread, the
    handlers stay as they are."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.SIG_IGN if ignored else _raise
    before = {signum: signal.signal(signum, handler) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def exit_code(interrupted: Interrupted) -> int:
    """The shell's code for a process ended by the signal: 128 + its number (130 for SIGINT, 143 for
    SIGTERM)."""
    return 128 + interrupted.signum
