"""What a drill found: per-check verdicts, the timeline, measured RTO and RPO.

A drill *passes* only when the runbook succeeded in the sandbox, every
``verify`` check passed, the measured RTO is within the strictest ``rto`` of
the recoveries it launched, and the data it brought back is no older than the
mirror's ``rpo``. Anything else is a failed drill (exit 3): a rehearsal that
could not prove recovery is exactly the finding a drill exists to report.

Measured RTO = first runbook step start → last verify check pass (SPEC §5:
"first step start to last verify pass"). RPO of the restored data = the age
of the snapshot used, at the moment the drill started.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from drorch.objectives import met
from drorch.ports.errors import EXIT_FAILED, EXIT_OBJECTIVES_MISSED, EXIT_OK

__all__ = ["CheckResult", "DrillResult", "Phase", "SnapshotUsed"]


@dataclass(frozen=True)
class CheckResult:
    """One verify check (or an automatic checksum check of restored data)."""

    name: str  # "http http://10.0.0.5/health", "checksum data"
    kind: str  # http | tcp | command | checksum
    passed: bool
    detail: str  # last probe's answer, or the first mismatching file
    attempts: int = 1
    started: float | None = None
    finished: float | None = None


@dataclass(frozen=True)
class Phase:
    """One bar of the timeline: a runbook step, the verify stage or the cleanup."""

    name: str
    kind: str  # step | undo | verify | cleanup
    state: str  # done, failed, skipped, pending, running
    started: float | None
    finished: float | None
    detail: str = ""


@dataclass(frozen=True)
class SnapshotUsed:
    """The data a drill brought back: a repository snapshot or a provider (EBS) snapshot."""

    step: str
    mirror: str | None
    snapshot: str
    time: float | None  # epoch seconds; None when the provider would not say
    source: str  # "repository" or "provider"


@dataclass
class DrillResult:
    drill_id: str
    policy: str
    drill: str
    runbook: str
    started: float
    finished: float | None = None
    sandbox: bool = True
    run_id: str | None = None
    runbook_status: str = "not started"
    failed_step: str | None = None
    error: str | None = None
    interrupted: str | None = None  # "SIGTERM", "SIGINT": cleanup still ran
    rto_s: float | None = None
    rto_objective_s: float | None = None
    rpo_s: float | None = None
    rpo_objective_s: float | None = None
    snapshots: list[SnapshotUsed] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    sandbox_notes: list[str] = field(default_factory=list)  # what the sandbox kept from production
    cleanup: list[str] = field(default_factory=list)  # what was removed afterwards
    cleanup_errors: list[str] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)  # leftovers of earlier drills removed first

    @property
    def rto_met(self) -> bool | None:
        return met(self.rto_s, self.rto_objective_s)

    @property
    def rpo_met(self) -> bool | None:
        return met(self.rpo_s, self.rpo_objective_s)

    @property
    def checks_passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def passed(self) -> bool:
        return (self.runbook_status == "succeeded" and self.checks_passed
                and self.rto_met is not False and self.rpo_met is not False
                and self.interrupted is None)

    @property
    def verdict(self) -> str:
        if self.interrupted:
            return "interrupted"
        return "passed" if self.passed else "failed"

    @property
    def exit_code(self) -> int:
        """0 passed; 3 the drill ran and an objective or check failed; 1 it was interrupted."""
        if self.passed:
            return EXIT_OK
        return EXIT_FAILED if self.interrupted else EXIT_OBJECTIVES_MISSED

    def reasons(self) -> list[str]:
        """Why the drill failed, one short sentence each (empty when it passed)."""
        out = []
        if self.interrupted:
            during = f" during step '{self.failed_step}'" if self.failed_step else ""
            return [f"interrupted by {self.interrupted}{during}; the sandbox was cleaned up"]
        if self.runbook_status != "succeeded":
            where = f" at step '{self.failed_step}'" if self.failed_step else ""
            out.append(f"runbook {self.runbook} {self.runbook_status}{where}: {self.error or 'no detail'}")
        out += [f"check {c.name} failed: {c.detail}" for c in self.checks if not c.passed]
        if self.runbook_status == "succeeded" and not self.checks:
            out.append("no verify check ran")
        if self.rto_met is False:
            out.append(f"RTO {_dur(self.rto_s)} exceeds the objective of {_dur(self.rto_objective_s)}")
        if self.rpo_met is False:
            out.append(f"restored data was {_dur(self.rpo_s)} old, over the RPO of "
                       f"{_dur(self.rpo_objective_s)}")
        return out

    def summary(self) -> str:
        rto = f"RTO {_dur(self.rto_s)}" + (f" / {_dur(self.rto_objective_s)}" if self.rto_objective_s else "")
        rpo = f"RPO {_dur(self.rpo_s)}" + (f" / {_dur(self.rpo_objective_s)}" if self.rpo_objective_s else "")
        passed = sum(c.passed for c in self.checks)
        return (f"drill {self.drill} of policy {self.policy}: {self.verdict.upper()}; {rto}, {rpo}, "
                f"checks {passed}/{len(self.checks)} passed")

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed, "verdict": self.verdict, "rto_met": self.rto_met,
                               "rpo_met": self.rpo_met, "exit_code": self.exit_code,
                               "reasons": self.reasons()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DrillResult:
        fields = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        fields["snapshots"] = [SnapshotUsed(**s) for s in doc.get("snapshots", [])]
        fields["checks"] = [CheckResult(**c) for c in doc.get("checks", [])]
        fields["phases"] = [Phase(**p) for p in doc.get("phases", [])]
        return cls(**fields)


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def format_seconds(seconds: float | None) -> str:
    """``12.3s``, ``4.5m``, ``2.0h``; ``-`` for unknown."""
    return _dur(seconds)
