"""Progress for people: a live bar on a terminal, plain lines elsewhere; MiB everywhere.

When the work's size is known (``start(total_bytes=...)``: the parent
snapshot's size or a pre-scan for an apply, the packs to copy for a
secondary target) both show done/total, the percentage and an ETA.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from drorch.cli.livebar import TerminalProgress

PLAIN_EVERY_S = 10.0
MiB = 2**20


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
    """A live bar on a terminal (rich.progress is imported only then), plain lines elsewhere."""
    if quiet:
        return None
    if not console.is_terminal:
        return LineProgress()
    from drorch.cli.livebar import TerminalProgress

    return TerminalProgress(console)
