"""``--dry-run``: the steps a run would take, every template resolved that can be.

Variables (with ``--var`` overrides) and ``run.id`` are filled in; outputs of
earlier steps do not exist before the run, so they show as ``<STEP.KEY>``.
A ``when`` that depends only on variables is decided here; one that reads
outputs is decided at run time. Nothing is journalled and no provider is
contacted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from drorch.policy.durations import format_duration
from drorch.ports.errors import StepFailed
from drorch.runbook.attempts import render_action
from drorch.runbook.model import Runbook, StepBody
from drorch.runbook.templating import Scope, TemplateError, evaluate_when, parse_refs

__all__ = ["PlannedStep", "RunPlan", "plan_run"]


@dataclass(frozen=True)
class PlannedStep:
    name: str
    action: str
    summary: str
    runs: str  # "yes", "no (when: ...)", "decided at run time (when: ...)"
    timeout: str
    attempts: str
    undo: str | None


@dataclass(frozen=True)
class RunPlan:
    runbook: str
    variables: dict[str, str]
    steps: list[PlannedStep]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _summary(body: StepBody | Any, scope: Scope) -> str:
    try:
        action = render_action(body.action, scope)
    except StepFailed as error:
        return f"(cannot render: {error.message})"
    return f"{body.action_key} {action.summary()}"


def _runs(when: str | bool | None, scope: Scope) -> str:
    if when is None:
        return "yes"
    if isinstance(when, str) and any(r.kind == "outputs" for r in parse_refs(when)):
        return f"decided at run time (when: {when})"
    try:
        return "yes" if evaluate_when(when, scope) else f"no (when: {when})"
    except TemplateError as error:
        return f"fails: {error}"


def plan_run(runbook: Runbook, variables: dict[str, str]) -> RunPlan:
    scope = Scope(vars=variables, placeholders=True)
    steps = []
    for step in runbook.steps:
        attempts = step.attempts()
        steps.append(PlannedStep(
            name=step.name, action=step.action_key, summary=_summary(step, scope),
            runs=_runs(step.when, scope),
            timeout=format_duration(timedelta(seconds=step.timeout_s())),
            attempts="until timeout" if attempts == float("inf") else str(int(attempts)),
            undo=_summary(step.undo, scope) if step.undo is not None else None))
    return RunPlan(runbook.name, variables, steps)
