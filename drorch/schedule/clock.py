"""The scheduler's view of time: wall clock for cron, monotonic clock for jump detection.

Injected so tests drive the scheduler with a fake clock and never sleep.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (what cron expressions mean)."""
        ...

    def monotonic(self) -> float:
        """Seconds that only ever move forward at the real rate (for spotting clock jumps)."""
        ...

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        """Wait ``seconds`` or until ``stop`` is set, whichever comes first."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(max(0.0, seconds))
