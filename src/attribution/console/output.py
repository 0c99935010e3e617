"""The terminal: the two consoles, the one way data reaches them (``shown``), and the progress bars.

Why one ``shown``: data (a channel name, an id, a path, an error) may hold control characters or Rich
markup; it reaches the terminal as one printable line, its markup printed as text. Why Rich is imported on
first use: ``attribution --help`` and a command's start do not pay for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from attribution.redaction import one_line

if TYPE_CHECKING:
    from rich.console import Console

OnProgress = Callable[[str, int, "int | None"], None]
"""A step's name, its parts done and their total (``None``: not counted)."""


@cache
def console() -> Console:
    """The standard output."""
    from rich.console import Console

    return Console()


@cache
def errors() -> Console:
    """The standard error, its lines never wrapped (one error, one line)."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def shown(value: object) -> str:
    """``value`` as the terminal may show it: one line without control characters, its Rich markup
    (``[/]``, ``[link=...]``) printed as text."""
    from rich.markup import escape

    return escape(one_line(value))


def say(text: str) -> None:
    """A line of data on the standard output, exactly as given (no highlighting, no wrapping)."""
    console().print(shown(text), highlight=False, soft_wrap=True)


def warn(text: str) -> None:
    errors().print(f"[yellow]{shown(text)}[/yellow]")


def print_paths(paths: dict[str, str | Path]) -> None:
    for name, path in paths.items():
        console().print(f"{name:>8} report: [bold]{shown(path)}[/bold]")


@contextmanager
def progress(first: str = "starting") -> Iterator[OnProgress]:
    """A progress bar for the duration: a step's name, and where its parts can be counted, a bar,
    ``done/total`` and the time left; yields the callback that moves it.

    Off a terminal (a scheduler's log, a pipe) the bar, being transient, would show nothing: Rich's progress
    module and its refresh thread are then left out.
    """
    if not console().is_terminal:
        yield lambda _step, _done, _total: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from attribution.console.counted import WhenCounted

    counted = WhenCounted(TextColumn("{task.completed:,.0f}/{task.total:,.0f}"))
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        counted,
        WhenCounted(TimeRemainingColumn()),
    )
    with Progress(*columns, TimeElapsedColumn(), console=console(), transient=True) as bar:
        task = bar.add_task(first, total=None)

        def show(step: str, done: int, total: int | None) -> None:
            bar.update(task, description=step.replace("_", " "), completed=done, total=total)

        yield show
