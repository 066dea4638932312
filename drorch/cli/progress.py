"""Progress for people: a live bar on a terminal, plain lines elsewhere; MiB everywhere.

When the work's size is known (``start(total_bytes=...)``: the parent
snapshot's size or a pre-scan for an apply, the packs to copy for a
secondary target) both show done/total, the percentage and an ETA.
"""

from __future__ import annotations

import sys
import threading
import time

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

PLAIN_EVERY_S = 10.0
MiB = 2**20


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


class LineProgress:
    """For logs and pipes: one line when a phase starts, every 10 s, and when it ends."""

    def __init__(self, stream=sys.stderr) -> None:  # type: ignore[no-untyped-def]
        self._stream = stream
        self._lock = threading.Lock()
        self._reset("")

    def _reset(self, description: str, total: int | None = None) -> None:
        self._description = description
        self._total = total
        self._bytes = self._files = 0
        self._started = self._last = time.monotonic()

    def _line(self, state: str) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = self._bytes / elapsed
        files = f", {self._files} files" if self._files else ""
        done = f"{self._bytes / MiB:.1f}"
        if self._total:
            done += f" of {self._total / MiB:.1f} MiB ({min(self._bytes / self._total, 1):.0%})"
            if state == "at":
                left = max(self._total - self._bytes, 0)
                files += f", ETA {left / rate:.0f}s" if rate else ", ETA unknown"
        else:
            done += " MiB"
        print(f"{self._description}: {state} {done}{files}, {rate / MiB:.1f} MiB/s, {elapsed:.1f}s",
              file=self._stream, flush=True)

    def start(self, description: str, total_bytes: int | None = None) -> None:
        self._reset(description, total_bytes)
        if total_bytes is not None:
            print(f"{description}: {total_bytes / MiB:.1f} MiB to go", file=self._stream, flush=True)

    def advance(self, nbytes: int, files: int = 0) -> None:
        with self._lock:
            self._bytes += nbytes
            self._files += files
            if time.monotonic() - self._last >= PLAIN_EVERY_S:
                self._last = time.monotonic()
                self._line("at")

    def note(self, message: str) -> None:
        print(f"warning: {message}", file=self._stream, flush=True)

    def finish(self) -> None:
        self._line("done,")


def progress_for(console: Console, quiet: bool) -> TerminalProgress | LineProgress | None:
    if quiet:
        return None
    return TerminalProgress(console) if console.is_terminal else LineProgress()
