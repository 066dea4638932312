"""Standby copies in ``status`` and its metrics: what each holds and how far it trails.

- **standby lag**: how far the copy trails the target, in snapshot time (the
  newest snapshot at the mirror's first target minus the one the copy holds;
  0 when current). Over the RPO it is a breach, unless the standby follows
  ``manual`` (it moves only when asked) or was promoted (it serves).
- **data lag**: from the applied snapshot being taken to it being live at
  the standby; a write at the source becomes visible after at most the time
  to its next snapshot plus this.

The figures come from the state database of the standby's host (the
follower records each sync there); a standby that never synced is shown as
such, not as a good copy and not as a breach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from drorch.repository.timefmt import format_ns

if TYPE_CHECKING:
    from drorch.policy import Mirror, Policy
    from drorch.state.standby import StandbyStates

__all__ = ["StandbyStatus", "standby_status"]


@dataclass(frozen=True)
class StandbyStatus:
    host: str | None
    path: str
    follow: str
    snapshot: str | None  # what the copy holds; None: never synced
    snapshot_time: str | None
    applied_at: float | None
    lag_s: float | None  # standby lag; None: unknown (never synced, or the target unreadable)
    data_lag_s: float | None
    promoted: bool
    rpo_s: float

    @property
    def breach(self) -> bool:
        if self.promoted or self.follow == "manual" or self.lag_s is None:
            return False
        return self.lag_s > self.rpo_s


def standby_status(policy: Policy, mirror: Mirror, newest_ns: int | None,
                   standbys: StandbyStates | None) -> StandbyStatus | None:
    """The standby of ``mirror`` given the newest snapshot time at its first target."""
    standby = mirror.standby
    if standby is None:
        return None
    if standbys is None:
        from drorch.state.standby import StandbyStates

        standbys = StandbyStates()
    record = standbys.get(policy.metadata.name, mirror.name)
    held_ns = record.snapshot_time_ns if record else None
    lag = None if held_ns is None or newest_ns is None else max(0.0, (newest_ns - held_ns) / 1e9)
    return StandbyStatus(standby.host, str(standby.path), standby.follow,
                         record.snapshot if record else None,
                         format_ns(held_ns) if held_ns is not None else None,
                         record.applied_at if record else None, lag,
                         record.data_lag_s if record else None,
                         bool(record and record.promoted), mirror.rpo.total_seconds())
