"""Process locks on files (``flock``), the way drorch says "someone is already doing this".

The kernel releases an ``flock`` when its process dies, however it dies, so a
stale lock file never blocks the next run and "is it still going?" never
depends on a PID that may have been reused. The file holds the holder's PID
and a description, only for the message the loser prints.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["ProcessLock", "is_locked"]


class ProcessLock:
    """An exclusive, non-blocking lock on ``path``; ``acquire`` returns False when held."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1

    def acquire(self, description: str = "") -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {description}".strip().encode() + b"\n")
        self._fd = fd
        return True

    def holder(self) -> str:
        """What the current holder wrote: ``PID description``."""
        try:
            return self.path.read_text().strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ProcessLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_locked(path: Path) -> bool:
    """Whether a live process holds the lock at ``path`` (False if the file is absent)."""
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
