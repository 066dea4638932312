"""The live progress bar of a terminal: rich.Progress behind drorch's Progress protocol.

Apart from ``drorch.cli.progress`` so that runs without a terminal (cron, systemd,
pipes: where most backups run) do not import rich's progress and live display.
"""

from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from drorch.cli.progress import MiB


class _MiBColumn(ProgressColumn):
    """Done / total and speed, in MiB (rich's own columns mix MB and MiB)."""

    def render(self, task: Task) -> Text:
        total = f" / {task.total / MiB:.1f}" if task.total is not None else ""
        speed = task.finished_speed or task.speed or 0
        return Text(f"{task.completed / MiB:.1f}{total} MiB, {speed / MiB:.1f} MiB/s")


class TerminalProgress:
    """rich.Progress behind drorch's Progress protocol; safe to call from worker threads."""

    def __init__(self, console: Console) -> None:
        self._bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), _MiBColumn(),
            TextColumn("{task.fields[files]} files"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console, transient=False)
        self._task: TaskID | None = None
        self._files = 0
        self._lock = threading.Lock()

    def start(self, description: str, total_bytes: int | None = None) -> None:
        self._files = 0
        self._bar.start()
        self._task = self._bar.add_task(description, total=total_bytes, files=0)

    def advance(self, nbytes: int, files: int = 0) -> None:
        if self._task is None:
            return
        with self._lock:
            self._files += files
            self._bar.update(self._task, advance=nbytes, files=self._files)

    def note(self, message: str) -> None:
        self._bar.console.print(f"[yellow]warning:[/] {message}", highlight=False)

    def finish(self) -> None:
        if self._task is not None:
            self._bar.stop()
            self._task = None
