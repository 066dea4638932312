"""Snapshots dated in the future: how ``latest``, retention and status treat clock skew.

A snapshot's time is the clock of the machine that took it. One taken with a
clock running ahead (or planted with a future time) would otherwise rank as the
newest for years: ``latest`` would restore it instead of the snapshot just
taken, retention keeping the newest N would forget the real newest one, and
status would show a negative age that hides an RPO breach.

The rule: a snapshot dated more than ``FUTURE_TOLERANCE_S`` after now is
*future-dated*. It is never chosen as ``latest`` while a snapshot that is not
future-dated exists, never counted by retention rules and never forgotten by
them (keeping data is the safe side of a doubt), and status reports it as a
problem of the target. Each one is named in a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from drorch.ports.notices import warn
from drorch.repository.timefmt import format_ns, now_ns

if TYPE_CHECKING:
    from drorch.repository.snapshot import Snapshot

FUTURE_TOLERANCE_S = 300  # clocks of healthy machines agree within seconds; NTP steps stay below


def is_future(snapshot: Snapshot, now: int | None = None) -> bool:
    return snapshot.time_ns > (now_ns() if now is None else now) + FUTURE_TOLERANCE_S * 1_000_000_000


def split_future(snapshots: Sequence[Snapshot], now: int | None = None
                 ) -> tuple[list[Snapshot], list[Snapshot]]:
    """(not future-dated, future-dated), each in the given order; warns about the second."""
    now = now_ns() if now is None else now
    present = [s for s in snapshots if not is_future(s, now)]
    future = [s for s in snapshots if is_future(s, now)]
    for snapshot in future:
        warn(describe_future(snapshot))
    return present, future


def describe_future(snapshot: Snapshot) -> str:
    return (f"snapshot {snapshot.id[:8]} is dated {format_ns(snapshot.time_ns)[:19]}Z, in the future "
            "(clock skew?); it is not used as latest and retention keeps it")


def newest(snapshots: Sequence[Snapshot], now: int | None = None) -> Snapshot | None:
    """The newest snapshot that is not future-dated; the newest at all if every one is."""
    present, future = split_future(snapshots, now)
    pool = present or future
    return max(pool, key=lambda s: s.time_ns) if pool else None
