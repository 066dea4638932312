"""A step's time budget, shared by the engine and the code doing the step's work.

Every step runs against one ``Deadline``: its ``timeout`` covers every attempt
and every retry pause, so ``timeout: 10m`` means the step is over within ten
minutes whatever happens inside it. Code that polls (waits, cloud waiters)
sleeps through ``Deadline.sleep`` and checks ``Deadline.check``, so it stops
as soon as the engine gives up on it instead of running on in the background.
"""

from __future__ import annotations

import math
import threading
import time

from drorch.ports.errors import StepTimedOut


class Deadline:
    """Seconds left for a step; ``cancel()`` ends it early (the engine gave up)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds if math.isfinite(seconds) else math.inf
        self._cancelled = threading.Event()

    @classmethod
    def never(cls) -> Deadline:
        return cls(math.inf)

    def remaining(self) -> float:
        """Seconds left, never negative; 0 once cancelled."""
        if self._cancelled.is_set():
            return 0.0
        return max(0.0, self._end - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def cancel(self) -> None:
        self._cancelled.set()

    def check(self, doing: str = "") -> None:
        """Raise ``StepTimedOut`` when no time is left."""
        if self.expired:
            raise StepTimedOut(f"timed out{' ' + doing if doing else ''}")

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` or until the deadline, whichever is first; never past it."""
        self._cancelled.wait(min(seconds, self.remaining()))

    def bounded(self, seconds: float) -> float:
        """``seconds`` capped to what is left: a per-call timeout that respects the deadline."""
        return max(0.001, min(seconds, self.remaining()))
