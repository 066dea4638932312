"""Is there data to recover? A mirror's newest snapshot at a target, read from the repository.

Drills and the ``--dry-run`` preflight ask the same question before they trust
a recovery: does the mirror have a snapshot at all, and is the newest one
within the mirror's ``rpo``? The answer is read from the repository itself
(the source of truth, as ``status`` does), never from a provider's copy or a
mock: an EBS snapshot says when it was made, not how old its data is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from drorch.policy.durations import format_duration
from drorch.ports.errors import DrorchError

if TYPE_CHECKING:
    from drorch.policy import Policy
    from drorch.repository.snapshot import Snapshot
    from drorch.secrets import KeySource

__all__ = ["Freshness", "mirror_freshness", "snapshot_time"]


@dataclass(frozen=True)
class Freshness:
    mirror: str
    target: str
    rpo_s: float
    snapshot: Snapshot | None = None
    age_s: float | None = None  # at ``now``
    error: str | None = None  # the repository could not be read

    @property
    def problem(self) -> str | None:
        """One sentence when there is no usable data, else None."""
        where = f"mirror {self.mirror} at target {self.target}"
        if self.error is not None:
            return f"cannot read {where}: {self.error}"
        if self.snapshot is None:
            return f"{where} has no snapshot, so there is no data to recover"
        if self.age_s is not None and self.age_s > self.rpo_s:
            return (f"the newest snapshot of {where} ({self.snapshot.id[:8]}) is {_dur(self.age_s)} old, "
                    f"over its RPO of {_dur(self.rpo_s)}")
        return None

    def describe(self) -> str:
        if self.problem is not None:
            return self.problem
        assert self.snapshot is not None and self.age_s is not None
        return (f"newest snapshot {self.snapshot.id[:8]} of mirror {self.mirror} is {_dur(self.age_s)} old "
                f"(RPO {_dur(self.rpo_s)})")


def _dur(seconds: float) -> str:
    return format_duration(timedelta(seconds=max(1, round(seconds))))


def mirror_freshness(policy: Policy, mirror: str, keys: KeySource | None, *, target: str | None = None,
                     now: float) -> Freshness:
    """The newest snapshot of ``mirror`` at ``target`` (default: its first) and its age at ``now``."""
    from drorch.engine.connect import open_repository
    from drorch.engine.plan import mirror_snapshots
    from drorch.repository.snapshot import load_snapshots
    from drorch.secrets import key_source

    spec = policy.mirror(mirror)
    target = target or spec.targets[0]
    rpo_s = spec.rpo.total_seconds()
    try:
        keys = keys or key_source(policy.encryption)
        snapshots = mirror_snapshots(load_snapshots(open_repository(policy, target, keys)), mirror)
    except DrorchError as err:
        return Freshness(mirror, target, rpo_s, error=str(err))
    if not snapshots:
        return Freshness(mirror, target, rpo_s)
    newest = max(snapshots, key=lambda s: s.time_ns)
    return Freshness(mirror, target, rpo_s, newest, max(0.0, now - newest.time_ns / 1e9))


def snapshot_time(policy: Policy, target: str, snapshot_id: str, keys: KeySource) -> float | None:
    """When repository snapshot ``snapshot_id`` (or a unique prefix) at ``target`` was taken."""
    from drorch.engine.connect import open_repository
    from drorch.repository.snapshot import find_snapshot, load_snapshots

    try:
        found = find_snapshot(load_snapshots(open_repository(policy, target, keys)), snapshot_id)
    except DrorchError:
        return None
    return found.time_ns / 1e9 if found else None
