"""Retention under suspicion: keep what came before an unacknowledged flagged snapshot.

If a snapshot looks like ransomware, the copies before it are the ones that
matter, and ordinary retention would forget them one run at a time while the
attack is being investigated. So every snapshot taken at or before the newest
unacknowledged flagged snapshot of the mirror is kept until `drorch ack`.
"""

from __future__ import annotations

from drorch.repository.snapshot import Snapshot


def hold_back(forget: list[Snapshot], hold_ns: int | None) -> tuple[list[Snapshot], list[str]]:
    """Split what retention would forget into (still forgotten, reasons for those kept)."""
    if hold_ns is None:
        return forget, []
    kept = [s for s in forget if s.time_ns <= hold_ns]
    reasons = [f"{s.id[:8]}: held, it precedes a flagged snapshot (drorch ack releases it)"
               for s in kept]
    return [s for s in forget if s.time_ns > hold_ns], reasons
