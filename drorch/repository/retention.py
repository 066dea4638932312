"""Which snapshots a retention policy keeps, with restic's ``forget --keep-*`` semantics.

Snapshots are taken newest first; each rule keeps the newest snapshot of each of
its last N periods (hour, day, ISO week, month, year) that has one; ``last``
keeps the N newest. A snapshot any rule keeps is kept. With no rule at all,
everything is kept: forgetting needs an explicit rule. Snapshots dated in the
future (``repository.clock``) are kept and not counted, so a skewed clock can
never make retention forget the snapshot just taken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from drorch.repository.clock import split_future
from drorch.repository.snapshot import Snapshot
from drorch.repository.timefmt import to_datetime

_PERIODS: dict[str, Callable[[datetime], object]] = {
    "last": lambda t: t,
    "hourly": lambda t: (t.year, t.month, t.day, t.hour),
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: t.isocalendar()[:2],
    "monthly": lambda t: (t.year, t.month),
    "yearly": lambda t: t.year,
}


@dataclass(frozen=True)
class RetentionDecision:
    keep: list[Snapshot]
    forget: list[Snapshot]


def apply_retention(snapshots: list[Snapshot], rules: dict[str, int]) -> RetentionDecision:
    """Split ``snapshots`` into kept and forgotten; ``rules`` maps last/hourly/... to counts."""
    active = {name: count for name, count in rules.items() if count and name in _PERIODS}
    newest_first = sorted(snapshots, key=lambda s: s.time_ns, reverse=True)
    if not active:
        return RetentionDecision(newest_first, [])
    newest_first, future = split_future(newest_first)
    remaining = dict(active)
    last_period: dict[str, object] = {}
    keep: list[Snapshot] = list(future)
    forget: list[Snapshot] = []
    for index, snapshot in enumerate(newest_first):
        when = to_datetime(snapshot.time_ns)
        kept = False
        for name in active:
            period = index if name == "last" else _PERIODS[name](when)
            if remaining[name] > 0 and last_period.get(name, _UNSET) != period:
                last_period[name] = period
                remaining[name] -= 1
                kept = True
        (keep if kept else forget).append(snapshot)
    return RetentionDecision(keep, forget)


_UNSET = object()
