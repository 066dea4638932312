"""Warnings about the repository that do not stop the work: one line each on stderr.

A damaged snapshot file that is skipped, a key file that is refused, a snapshot
dated in the future: the operation goes on, and the operator is told once per
process (plan, apply and retention read the same snapshots several times).
Messages go to the ``drorch`` logger; with no logging configured Python's last-
resort handler prints them on stderr, and tests read them with ``caplog``.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("drorch")
_seen: set[str] = set()
_lock = threading.Lock()


def warn(message: str) -> None:
    """Say ``message`` once per process, prefixed with ``warning:``."""
    with _lock:
        if message in _seen:
            return
        _seen.add(message)
    log.warning("warning: %s", message)
