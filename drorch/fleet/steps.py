"""One runbook step on an agent: the local engine's step machinery, fed by the workflow.

The workflow sends the step's place (runbook key, index, phase) and the
scope (vars, outputs of finished steps, skipped steps); the agent reads the
runbook from its own copy of the policy, so a step runs with the paths and
files of the host it runs on. Rendering, deadline, retries and the action's
``run`` are ``StepAttempts`` and the step classes of ``drorch.runbook``:
there is no second copy of any step's logic.

Also builds the workflow's view of a runbook (``step_specs``): where each
step runs and how long it may take, read from the same model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from drorch.fleet.messages import StepInput, StepSpec
from drorch.policy import Policy, load_policy
from drorch.policy.hosts import LOCAL_HOST
from drorch.ports.deadline import Deadline
from drorch.ports.errors import StepFailed, UsageError
from drorch.runbook.attempts import StepAttempts
from drorch.runbook.backends import RegistryBackends
from drorch.runbook.model import Runbook, Step, load_runbook
from drorch.runbook.steps import Action, StepContext
from drorch.runbook.templating import Scope, TemplateError, evaluate_when

__all__ = ["load_policy_runbook", "prepare_step", "step_specs"]


def load_policy_runbook(policy: Policy, which: str) -> tuple[Runbook, Path]:
    path = policy.runbooks.get(which)
    if path is None:
        raise UsageError(f"policy {policy.metadata.name} has no {which} runbook",
                         hint=f"add runbooks: {{{which}: runbooks/{which}.yaml}} to the policy")
    return load_runbook(path, policy=policy), Path(path)


def step_specs(runbook: Runbook, start_host: str) -> list[StepSpec]:
    """Each step with the host it runs on (``on:``, else where the run starts)."""
    specs = []
    for index, step in enumerate(runbook.steps):
        message = step.approve.message if step.approve is not None else ""
        when = step.when if step.approve is not None else None
        specs.append(StepSpec(index, step.name, step.action_key, step.on or start_host, step.timeout_s(),
                              step.action.idempotent, step.undo is not None, message, when))
    return specs


def default_start_host(policy: Policy) -> str:
    """Where steps without ``on:`` run when ``--host`` is not given: the first host, else local."""
    return policy.hosts[0].name if policy.hosts else LOCAL_HOST


def prepare_step(policy_path: Path, step: StepInput, *, attempt: int
                 ) -> dict[str, Any] | Callable[[], dict[str, Any]]:
    """A result now (skipped, refused) or the blocking call that runs the step."""
    policy = load_policy(policy_path)
    runbook, file = load_policy_runbook(policy, step.runbook)
    spec = runbook.steps[step.index]
    body = spec if step.phase == "do" else spec.undo
    if body is None:
        return {"state": "failed", "error": f"step '{spec.name}' has no undo"}
    if attempt > 1 and not body.action.idempotent:
        return {"state": "failed", "error": f"step '{spec.name}' was interrupted mid-way (its agent "
                "stopped) and is not idempotent, so it may have done part of its work; check what it "
                "did, then run the runbook again"}
    scope = Scope(vars=step.vars, outputs=dict(step.outputs), run_id=step.run_id, skipped=set(step.skipped))
    if step.phase == "do" and spec.when is not None:
        try:
            if not evaluate_when(spec.when, scope):
                return {"state": "skipped", "outputs": {}}
        except TemplateError as error:
            return {"state": "failed", "error": f"when: {error}"}
    return lambda: _run_body(policy, policy_path, file, step, spec, scope)


def _run_body(policy: Policy, policy_path: Path, file: Path, step: StepInput, spec: Step,
              scope: Scope) -> dict[str, Any]:
    body = spec if step.phase == "do" else spec.undo
    assert body is not None
    attempts = StepAttempts()
    backends = RegistryBackends()

    def attempt_fn(action: Action, number: int, deadline: Deadline) -> dict[str, Any]:
        ctx = StepContext(run_id=step.run_id, step=spec.name, phase=step.phase, attempt=number,
                          deadline=deadline, backends=backends, base_dir=file.parent, policy=policy,
                          policy_path=policy_path, log=attempts.log)
        return action.run(ctx)

    try:
        rendered, outputs = attempts.run(body.action, scope, timeout_s=body.timeout_s(),
                                         max_attempts=body.attempts(), attempt_fn=attempt_fn)
    except StepFailed as error:
        return {"state": "failed", "error": str(error), "tail": error.tail, "attempts": attempts.attempts}
    return {"state": "done", "outputs": outputs, "summary": rendered.summary(),
            "attempts": attempts.attempts, "tail": attempts.tail}
