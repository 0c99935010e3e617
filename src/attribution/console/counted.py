"""A progress bar's column shown only while its task's total is known (no ``0/?`` for a step without parts).

Why a module of its own: it subclasses Rich's column, so importing it imports Rich's progress bars, which
only a command that shows one needs."""

from __future__ import annotations

from rich.console import RenderableType
from rich.progress import ProgressColumn, Task


class WhenCounted(ProgressColumn):
    """``column``, or nothing while the task's total is unknown."""

    def __init__(self, column: ProgressColumn) -> None:
        super().__init__()
        self.column = column

    def render(self, task: Task) -> RenderableType:
        return self.column.render(task) if task.total is not None else ""
