"""RPO compliance, read from the repositories themselves (the truth), not from local state.

A target breaches its mirror's RPO when its newest snapshot of the mirror is
older than the RPO, or when it has none or cannot be read: an unknown copy is
never reported as a good one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from drorch.connect import open_repository
from drorch.errors import DrorchError
from drorch.plan import mirror_snapshots
from drorch.policy import Mirror, Policy
from drorch.repository.snapshot import load_snapshots
from drorch.repository.timefmt import format_ns, now_ns
from drorch.secrets import KeySource


@dataclass(frozen=True)
class TargetStatus:
    target: str
    role: str
    snapshot: str | None
    snapshot_time: str | None
    age_s: float | None
    lag_s: float | None  # how far behind the primary's newest snapshot; 0 on the primary
    breach: bool
    error: str | None = None


@dataclass(frozen=True)
class MirrorStatus:
    mirror: str
    mode: str
    rpo_s: float
    targets: tuple[TargetStatus, ...]

    @property
    def breach(self) -> bool:
        return any(t.breach for t in self.targets)


@dataclass(frozen=True)
class StatusReport:
    policy: str
    mirrors: tuple[MirrorStatus, ...]

    @property
    def breach(self) -> bool:
        return any(m.breach for m in self.mirrors)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"breach": self.breach}

    def to_prometheus(self) -> str:
        """Prometheus text exposition of the same figures."""
        lines = [
            "# HELP drorch_rpo_seconds Recovery point objective of the mirror.",
            "# TYPE drorch_rpo_seconds gauge",
            "# HELP drorch_snapshot_age_seconds Age of the newest snapshot on the target (-1: none).",
            "# TYPE drorch_snapshot_age_seconds gauge",
            "# HELP drorch_replication_lag_seconds How far the target trails the primary (-1: unknown).",
            "# TYPE drorch_replication_lag_seconds gauge",
            "# HELP drorch_rpo_breach 1 when the target is older than the RPO or unreadable.",
            "# TYPE drorch_rpo_breach gauge",
        ]
        for m in self.mirrors:
            lines.append(f'drorch_rpo_seconds{{policy="{self.policy}",mirror="{m.mirror}"}} {m.rpo_s:g}')
            for t in m.targets:
                labels = f'policy="{self.policy}",mirror="{m.mirror}",target="{t.target}"'
                lines.append(f"drorch_snapshot_age_seconds{{{labels}}} {_gauge(t.age_s)}")
                lines.append(f"drorch_replication_lag_seconds{{{labels}}} {_gauge(t.lag_s)}")
                lines.append(f"drorch_rpo_breach{{{labels}}} {int(t.breach)}")
        return "\n".join(lines) + "\n"


def _gauge(value: float | None) -> str:
    return "-1" if value is None else f"{value:.3f}"


def policy_status(policy: Policy, keys: KeySource) -> StatusReport:
    return StatusReport(policy.metadata.name, tuple(_mirror_status(policy, m, keys)
                                                    for m in policy.mirrors))


def _mirror_status(policy: Policy, mirror: Mirror, keys: KeySource) -> MirrorStatus:
    rpo_s = mirror.rpo.total_seconds()
    now = now_ns()
    newest: list[tuple[str, int | None, str | None]] = []
    for name in mirror.targets:
        try:
            snapshots = mirror_snapshots(load_snapshots(open_repository(policy, name, keys)),
                                         mirror.name)
            latest = max(snapshots, key=lambda s: s.time_ns) if snapshots else None
            newest.append((latest.id if latest else "", latest.time_ns if latest else None, None))
        except DrorchError as err:
            newest.append(("", None, str(err)))
    primary_time = newest[0][1]
    targets = []
    for index, (name, (snap_id, time_ns, error)) in enumerate(zip(mirror.targets, newest, strict=True)):
        age = None if time_ns is None else (now - time_ns) / 1e9
        lag = None if time_ns is None or primary_time is None else max(0.0, (primary_time - time_ns) / 1e9)
        targets.append(TargetStatus(
            name, "primary" if index == 0 else "secondary", snap_id or None,
            format_ns(time_ns) if time_ns is not None else None, age, lag,
            breach=age is None or age > rpo_s, error=error))
    return MirrorStatus(mirror.name, mirror.mode, rpo_s, tuple(targets))
