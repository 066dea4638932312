"""RPO compliance, read from the repositories themselves (the truth), and the last drills.

A target breaches its mirror's RPO when its newest snapshot of the mirror is
older than the RPO, or when it has none or cannot be read: an unknown copy is
never reported as a good one. A snapshot dated in the future (clock skew,
``repository.clock``) is a problem of its target, reported as a breach; the age
is that of the newest snapshot that is not in the future, never negative.

Drills come from the state database (their history lives nowhere else): the
last result of each drill of the policy, its measured RTO against the
objective. A drill whose last run failed, was interrupted or missed its RTO or
RPO is a breach. A drill that never ran is shown as such but is not a breach
(a new installation would otherwise fail its first status).

Anomalies come from the state database too: a snapshot the detector flagged
(``drorch.anomaly``) and nobody acknowledged (``drorch ack``) is a breach,
named with what is abnormal about it, until it is acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from drorch.engine.connect import open_repository
from drorch.engine.plan import mirror_snapshots
from drorch.engine.standby_status import StandbyStatus, standby_status
from drorch.policy import Mirror, Policy
from drorch.policy.objectives import met
from drorch.ports.errors import DrorchError
from drorch.repository.clock import describe_future, split_future
from drorch.repository.snapshot import load_snapshots
from drorch.repository.timefmt import format_ns, now_ns
from drorch.secrets import KeySource

if TYPE_CHECKING:
    from drorch.anomaly import AnomalyStore, Flag
    from drorch.state.captured import Captured, CaptureLedger
    from drorch.state.drills import DrillDocuments
    from drorch.state.standby import StandbyStates


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
    # continuous mirrors: age of the data not yet captured, when the watcher confirmed that
    # nothing changed since this target's newest snapshot (else None: the snapshot's age counts)
    uncaptured_s: float | None = None


@dataclass(frozen=True)
class MirrorStatus:
    mirror: str
    mode: str
    rpo_s: float
    targets: tuple[TargetStatus, ...]
    anomalies: tuple[Flag, ...] = ()  # flagged snapshots not yet acknowledged
    standby: StandbyStatus | None = None

    @property
    def breach(self) -> bool:
        return (any(t.breach for t in self.targets) or bool(self.anomalies)
                or bool(self.standby and self.standby.breach))


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
        """Prometheus text exposition of the same figures, each metric family in one group."""
        lines = []
        for name, text, value in _MIRROR_METRICS:
            lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge"]
            lines += [f'{name}{{policy="{self.policy}",mirror="{m.mirror}"}} {value(m)}'
                      for m in self.mirrors]
        for name, text, target_value in _TARGET_METRICS:
            lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge"]
            lines += [f'{name}{{policy="{self.policy}",mirror="{m.mirror}",target="{t.target}"}} '
                      f"{target_value(t)}" for m in self.mirrors for t in m.targets]
        lines += _standby_lines(self.policy, self.mirrors)
        lines += _drill_lines(self.policy, self.drills)
        return "\n".join(lines) + "\n"


_MIRROR_METRICS: tuple[tuple[str, str, Callable[[MirrorStatus], str]], ...] = (
    ("drorch_rpo_seconds", "Recovery point objective of the mirror.", lambda m: f"{m.rpo_s:g}"),
    ("drorch_anomaly", "Flagged snapshots of the mirror nobody acknowledged (drorch ack).",
     lambda m: str(len(m.anomalies))),
)
_TARGET_METRICS: tuple[tuple[str, str, Callable[[TargetStatus], str]], ...] = (
    ("drorch_snapshot_age_seconds", "Age of the newest snapshot on the target (-1: none).",
     lambda t: _gauge(t.age_s)),
    ("drorch_replication_lag_seconds", "How far the target trails the primary (-1: unknown).",
     lambda t: _gauge(t.lag_s)),
    ("drorch_rpo_breach", "1 when the target is older than the RPO or unreadable.",
     lambda t: str(int(t.breach))),
)


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
    rows = []
    for d in drills:
        passed = -1 if d.verdict == "never" else int(d.verdict == "passed")
        rows.append((f'policy="{policy}",drill="{d.drill}"',
                     (_gauge(d.last_run), str(passed), _gauge(d.rto_s), _gauge(d.rto_objective_s),
                      _gauge(d.rpo_s), _gauge(d.rpo_objective_s), str(int(d.breach)))))
    lines = []
    for index, (name, text) in enumerate(_DRILL_HELP):
        lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge"]
        lines += [f"{name}{{{labels}}} {values[index]}" for labels, values in rows]
    return lines


_STANDBY_HELP = (
    ("drorch_standby_lag_seconds", "How far the standby copy trails the target's newest snapshot "
     "(-1: unknown)."),
    ("drorch_standby_data_lag_seconds", "From the applied snapshot being taken to it being live at the "
     "standby (-1: never synced)."),
    ("drorch_standby_applied_timestamp_seconds", "When the standby last applied a snapshot (-1: never)."),
    ("drorch_standby_promoted", "1 when the standby was promoted and serves (not following)."),
)


def _standby_lines(policy: str, mirrors: tuple[MirrorStatus, ...]) -> list[str]:
    shown = [m for m in mirrors if m.standby is not None]
    if not shown:
        return []
    lines = []
    for name, text in _STANDBY_HELP:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge"]
    for m in shown:
        s = m.standby
        assert s is not None
        labels = f'policy="{policy}",mirror="{m.mirror}",host="{s.host or ""}"'
        values = (_gauge(s.lag_s), _gauge(s.data_lag_s), _gauge(s.applied_at), str(int(s.promoted)))
        lines += [f"{name}{{{labels}}} {value}"
                  for (name, _), value in zip(_STANDBY_HELP, values, strict=True)]
    return lines


def _gauge(value: float | None) -> str:
    return "-1" if value is None else f"{value:.3f}"


def policy_status(policy: Policy, keys: KeySource, *, history: DrillDocuments | None = None,
                  anomalies: AnomalyStore | None = None, captured: CaptureLedger | None = None,
                  standbys: StandbyStates | None = None) -> StatusReport:
    """Mirrors from their repositories; drills and anomalies from the state database
    (or ``history`` and ``anomalies``), standby copies from ``standbys``.

    A ``schedule: continuous`` mirror whose watcher confirmed (in ``captured``, default the
    state database) that nothing changed since a target's newest snapshot is measured by
    the age of that confirmation, not of the snapshot (``drorch.state.captured``).
    """
    if anomalies is None:
        from drorch.anomaly import AnomalyStore

        anomalies = AnomalyStore()
    if captured is None and any(m.schedule == "continuous" for m in policy.mirrors):
        from drorch.state.captured import CaptureLedger

        captured = CaptureLedger()
    mirrors = [_mirror_status(policy, m, keys, captured, standbys) for m in policy.mirrors]
    flagged = [replace(m, anomalies=tuple(anomalies.flags(policy.metadata.name, m.mirror)))
               for m in mirrors]
    return StatusReport(policy.metadata.name, tuple(flagged), _drill_status(policy, history))


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


def _mirror_status(policy: Policy, mirror: Mirror, keys: KeySource,
                   captured: CaptureLedger | None, standbys: StandbyStates | None) -> MirrorStatus:
    rpo_s = mirror.rpo.total_seconds()
    ledger: Captured | None = None
    if captured is not None and mirror.schedule == "continuous":
        ledger = captured.get(policy.metadata.name, mirror.name)
    now = now_ns()
    newest: list[tuple[str, int | None, str | None]] = []
    for name in mirror.targets:
        try:
            snapshots = mirror_snapshots(load_snapshots(open_repository(policy, name, keys)),
                                         mirror.name)
            present, future = split_future(snapshots, now)
            latest = max(present, key=lambda s: s.time_ns) if present else None
            skew = describe_future(future[0]) if future else None  # a problem, never a fresh copy
            newest.append((latest.id if latest else "", latest.time_ns if latest else None, skew))
        except DrorchError as err:
            newest.append(("", None, str(err)))
    primary_time = newest[0][1]
    targets = []
    for index, (name, (snap_id, time_ns, error)) in enumerate(zip(mirror.targets, newest, strict=True)):
        age = None if time_ns is None else max(0.0, (now - time_ns) / 1e9)  # within the tolerance
        lag = None if time_ns is None or primary_time is None else max(0.0, (primary_time - time_ns) / 1e9)
        at_risk = age
        if ledger is not None and time_ns is not None:
            at_risk = ledger.age_s(time_ns / 1e9, now / 1e9)
        targets.append(TargetStatus(
            name, "primary" if index == 0 else "secondary", snap_id or None,
            format_ns(time_ns) if time_ns is not None else None, age, lag,
            breach=at_risk is None or at_risk > rpo_s or error is not None, error=error,
            uncaptured_s=at_risk if at_risk != age else None))
    standby = standby_status(policy, mirror, primary_time, standbys)
    return MirrorStatus(mirror.name, mirror.mode, rpo_s, tuple(targets), standby=standby)
