"""What a run did, read back from the journal: steps, undo, timeline, measured RTO.

The journal is the only source: the result printed at the end of a run, by
``drorch runbook show`` and by ``drorch test`` is the same object, so what the
operator saw and what is stored never disagree.

Measured RTO = from the start of the first step to the last successful
``wait`` (the last proof that service is back); a runbook without ``wait``
steps ends its RTO when its last step finishes. It is measured only for a
run that succeeded; a failed run did not recover.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from drorch.objectives import met
from drorch.ports.errors import EXIT_FAILED, EXIT_OBJECTIVES_MISSED, EXIT_OK
from drorch.runbook.journal import Event, Journal, StepRow

__all__ = ["RunResult", "StepResult", "load_result", "measure_rto"]

FINISHED_OK = "succeeded"
RESUMABLE = ("running", "stopped", "undoing")


@dataclass(frozen=True)
class StepResult:
    name: str
    action: str
    phase: str  # "do" or "undo"
    state: str  # done, failed, skipped, running (interrupted), pending
    attempts: int = 0
    started: float | None = None
    finished: float | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    tail: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


@dataclass(frozen=True)
class RunResult:
    run_id: str
    runbook: str
    status: str  # running, succeeded, failed, failed-undo, stopped, undoing
    started: float
    finished: float | None
    steps: list[StepResult]
    undo: list[StepResult]
    timeline: list[Event]
    rto_s: float | None = None
    rto_objective_s: float | None = None
    failed_step: str | None = None
    error: str | None = None

    @property
    def rto_met(self) -> bool | None:
        return met(self.rto_s, self.rto_objective_s)

    @property
    def exit_code(self) -> int:
        """0 recovered; 3 recovered but slower than the RTO; 1 anything else."""
        if self.status != FINISHED_OK:
            return EXIT_FAILED
        return EXIT_OBJECTIVES_MISSED if self.rto_met is False else EXIT_OK

    @property
    def failed(self) -> StepResult | None:
        return next((s for s in self.steps if s.name == self.failed_step), None)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["timeline"] = [asdict(e) for e in self.timeline]
        return doc | {"exit_code": self.exit_code, "rto_met": self.rto_met}


def _step(row: StepRow) -> StepResult:
    return StepResult(row.name, row.action, row.phase, row.state, row.attempts, row.started,
                      row.finished, row.outputs, row.error, row.tail)


def measure_rto(rows: dict[tuple[str, int], StepRow]) -> float | None:
    """First step start → last ``wait`` pass (or last step end); see the module docstring."""
    done = [r for (phase, _), r in rows.items() if phase == "do" and r.started is not None]
    if not done:
        return None
    start = min(r.started for r in done if r.started is not None)
    waits = [r.finished for r in done if r.action == "wait" and r.state == "done" and r.finished]
    ends = waits or [r.finished for r in done if r.finished is not None]
    return max(ends) - start if ends else None


def load_result(journal: Journal, run_id: str, step_names: list[str] | None = None) -> RunResult:
    """The run as the journal records it; ``step_names`` lists steps that never started too."""
    run = journal.run(run_id)
    rows = journal.steps(run.id)
    steps = [_step(r) for (phase, _), r in sorted(rows.items()) if phase == "do"]
    if step_names is not None:
        started = {s.name for s in steps}
        steps += [StepResult(name, "", "do", "pending") for name in step_names if name not in started]
        order = {name: i for i, name in enumerate(step_names)}
        steps.sort(key=lambda s: order.get(s.name, len(order)))
    undo = [_step(r) for (phase, _), r in sorted(rows.items(), key=lambda kv: -kv[0][1])
            if phase == "undo"]
    return RunResult(run.id, run.runbook, run.status, run.started, run.finished, steps, undo,
                     journal.timeline(run.id), run.rto_s, run.rto_objective_s, run.failed_step,
                     run.error)
