"""RPO compliance, read from the repositories themselves (the truth), and the last drills.

A target breaches its mirror's RPO when its newest snapshot of the mirror is
older than the RPO, or when it has none or cannot be read: an unknown copy is
never reported as a good one.

Drills come from the state database (their history lives nowhere else): the
last result of each drill of the policy, its measured RTO against the
objective. A drill whose last run failed, was interrupted or missed its RTO or
RPO is a breach. A drill that never ran is shown as such but is not a breach
(a new installation would otherwise fail its first status).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from drorch.engine.connect import open_repository
from drorch.engine.plan import mirror_snapshots
from drorch.objectives import met
from drorch.policy import Mirror, Policy
from drorch.ports.errors import DrorchError
from drorch.repository.snapshot import load_snapshots
from drorch.repository.timefmt import format_ns, now_ns
from drorch.secrets import KeySource

if TYPE_CHECKING:
    from drorch.state.drills import DrillDocuments


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
class DrillStatus:
    drill: str
    schedule: str | None
    verdict: str  # passed, failed, interrupted, never
    last_run: float | None  # epoch seconds the last drill started
    drill_id: str | None = None
    rto_s: float | None = None
    rto_objective_s: float | None = None
    rpo_s: float | None = None
    rpo_objective_s: float | None = None
    checks_passed: int = 0
    checks: int = 0
    reason: str | None = None  # why the last drill failed

    @property
    def breach(self) -> bool:
        return self.verdict in ("failed", "interrupted")

    @property
    def rto_met(self) -> bool | None:
        return met(self.rto_s, self.rto_objective_s)


@dataclass(frozen=True)
class StatusReport:
    policy: str
    mirrors: tuple[MirrorStatus, ...]
    drills: tuple[DrillStatus, ...] = ()

    @property
    def breach(self) -> bool:
        return any(m.breach for m in self.mirrors) or any(d.breach for d in self.drills)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self) | {"breach": self.breach}
        doc["drills"] = [asdict(d) | {"breach": d.breach, "rto_met": d.rto_met} for d in self.drills]
        return doc

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
        lines += _drill_lines(self.policy, self.drills)
        return "\n".join(lines) + "\n"


_DRILL_HELP = (
    ("drorch_drill_last_run_timestamp_seconds", "When the last drill started (-1: never ran)."),
    ("drorch_drill_passed", "1 when the last drill passed, 0 when it did not, -1 when it never ran."),
    ("drorch_drill_rto_seconds", "Recovery time measured by the last drill (-1: not measured)."),
    ("drorch_drill_rto_objective_seconds", "RTO objective of the drill (-1: none)."),
    ("drorch_drill_rpo_seconds", "Age of the data the last drill restored (-1: not measured)."),
    ("drorch_drill_rpo_objective_seconds", "RPO objective of the data the drill restores (-1: none)."),
    ("drorch_drill_breach", "1 when the last drill failed, was interrupted or missed an objective."),
)


def _drill_lines(policy: str, drills: tuple[DrillStatus, ...]) -> list[str]:
    lines = []
    for name, text in _DRILL_HELP:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge"]
    for d in drills:
        labels = f'policy="{policy}",drill="{d.drill}"'
        passed = -1 if d.verdict == "never" else int(d.verdict == "passed")
        values = (_gauge(d.last_run), str(passed), _gauge(d.rto_s), _gauge(d.rto_objective_s),
                  _gauge(d.rpo_s), _gauge(d.rpo_objective_s), str(int(d.breach)))
        lines += [f"{name}{{{labels}}} {value}" for (name, _), value in zip(_DRILL_HELP, values, strict=True)]
    return lines


def _gauge(value: float | None) -> str:
    return "-1" if value is None else f"{value:.3f}"


def policy_status(policy: Policy, keys: KeySource, *, history: DrillDocuments | None = None) -> StatusReport:
    """Mirrors from their repositories; drills from ``history`` (default: the state database)."""
    return StatusReport(policy.metadata.name,
                        tuple(_mirror_status(policy, m, keys) for m in policy.mirrors),
                        _drill_status(policy, history))


def _drill_status(policy: Policy, history: DrillDocuments | None) -> tuple[DrillStatus, ...]:
    if not policy.drills:
        return ()
    if history is None:
        from drorch.state.drills import DrillDocuments

        history = DrillDocuments()
    latest = history.latest_documents(policy.metadata.name)
    out = []
    for drill in policy.drills:
        last = latest.get(drill.name)
        if last is None:
            out.append(DrillStatus(drill.name, drill.schedule, "never", None))
            continue
        reasons, checks = last.get("reasons") or [], last.get("checks") or []
        out.append(DrillStatus(drill.name, drill.schedule, last["verdict"], last["started"], last["drill_id"],
                               last.get("rto_s"), last.get("rto_objective_s"), last.get("rpo_s"),
                               last.get("rpo_objective_s"), sum(bool(c.get("passed")) for c in checks),
                               len(checks), "; ".join(reasons) if reasons else None))
    return tuple(out)


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
