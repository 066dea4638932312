"""Workflows: a mirror's job, the schedule's tick that starts it, a runbook across hosts.

Workflow code only decides what runs where; every byte is moved and every
step is done by an activity on the host's queue (``activities.py``), with the
same engine functions and step implementations the local CLI uses. The
engine's history is the journal: after an engine restart or a killed agent
the workflow replays it, so a finished step is never run again.

- ``MirrorJob`` (ID ``mirror:<policy>:<mirror>``): one activity, ``run_mirror``,
  retried on the host's next agent when its agent dies (heartbeat timeout).
- ``MirrorTick`` (what a Schedule starts): starts ``MirrorJob`` under the
  mirror's fixed ID and ends (the job is abandoned to run on its own); if a
  job is already running (a manual ``fleet run``, a slow previous run) the
  tick is skipped.
- ``FleetRunbook`` (ID = run ID ``fleet-…``): steps in order, each on its
  ``on:`` host; ``approve`` is a signal; on failure the ``undo`` of finished
  steps runs newest first, each on its step's host.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from drorch.fleet.messages import (
        JobInput,
        RunbookInput,
        StepInput,
        StepSpec,
        host_queue,
        mirror_workflow_id,
    )
    from drorch.runbook.templating import Scope, TemplateError, evaluate_when

__all__ = ["WORKFLOWS", "FleetRunbook", "MirrorJob", "MirrorTick"]

_AGENT_DEATH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                                 maximum_interval=timedelta(seconds=30))


@workflow.defn(name="MirrorJob")
class MirrorJob:
    """Make one mirror current on its source's host, exactly once per run."""

    @workflow.run
    async def run(self, job: JobInput) -> dict[str, Any]:
        retry = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                            maximum_interval=timedelta(seconds=30), maximum_attempts=job.max_attempts,
                            non_retryable_error_types=["UsageError", "PolicyError"])
        result: dict[str, Any] = await workflow.execute_activity(
            "run_mirror", job, task_queue=host_queue(job.policy, job.host),
            start_to_close_timeout=timedelta(seconds=job.timeout_s),
            heartbeat_timeout=timedelta(seconds=job.heartbeat_s), retry_policy=retry)
        return result


@workflow.defn(name="MirrorTick")
class MirrorTick:
    """A schedule's action: start the mirror's job under its one ID, or skip if one runs."""

    @workflow.run
    async def run(self, job: JobInput) -> dict[str, Any]:
        try:
            handle = await workflow.start_child_workflow(
                MirrorJob.run, job, id=mirror_workflow_id(job.policy, job.mirror),
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON)
        except WorkflowAlreadyStartedError:
            return {"mirror": job.mirror, "skipped": "a run of this mirror is still going"}
        # Not waiting for the job: the engine's refusal of a second job under the mirror's ID is
        # what skips an overlapping tick, and a tick that waited cost the engine one more
        # workflow task per job (the main engine cost at fleet scale).
        return {"mirror": job.mirror, "started": handle.id}


@workflow.defn(name="FleetRunbook")
class FleetRunbook:
    """A runbook as one workflow; see the module docstring."""

    def __init__(self) -> None:
        self.approvals: dict[str, str] = {}  # step → who approved
        self.waiting: str | None = None
        self.steps: list[dict[str, Any]] = []
        self.status = "running"

    @workflow.signal
    def approve(self, step: str | None, who: str) -> None:
        """Pass the approve gate ``step`` (None: the one waiting now, or the next one)."""
        self.approvals[step or self.waiting or "*"] = who

    @workflow.query
    def progress(self) -> dict[str, Any]:
        return {"status": self.status, "waiting": self.waiting, "steps": self.steps}

    @workflow.run
    async def run(self, run: RunbookInput) -> dict[str, Any]:
        outputs: dict[str, dict[str, Any]] = {}
        skipped: list[str] = []
        done: list[StepSpec] = []
        started = workflow.now().timestamp()
        for spec in run.steps:
            record = {"name": spec.name, "action": spec.action, "host": spec.host, "state": "running",
                      "started": workflow.now().timestamp()}
            self.steps.append(record)
            try:
                result = await self._step(run, spec, outputs, skipped)
            except ApplicationError as error:
                record.update(state="failed", error=error.message, finished=workflow.now().timestamp())
                return await self._fail(run, spec, error.message, done, outputs, skipped, started)
            record.update(state=result["state"], finished=workflow.now().timestamp(),
                          outputs=result.get("outputs", {}))
            if result["state"] == "skipped":
                skipped.append(spec.name)
                continue
            outputs[spec.name] = result.get("outputs", {})
            done.append(spec)
        self.status = "succeeded"
        return self._summary(run, started)

    async def _step(self, run: RunbookInput, spec: StepSpec, outputs: dict[str, dict[str, Any]],
                    skipped: list[str]) -> dict[str, Any]:
        if spec.action == "approve":
            if not _gate_applies(run, spec, outputs, skipped):
                return {"state": "skipped", "outputs": {}}
            return {"state": "done", "outputs": {"approved_by": await self._gate(run, spec)}}
        return await self._activity(run, spec, "do", outputs, skipped)

    async def _gate(self, run: RunbookInput, spec: StepSpec) -> str:
        if run.yes:
            return "--yes"
        self.waiting = spec.name
        try:
            await workflow.wait_condition(lambda: spec.name in self.approvals or "*" in self.approvals,
                                          timeout=timedelta(seconds=spec.timeout_s))
        except TimeoutError:
            raise ApplicationError(f"not approved within {spec.timeout_s:.0f}s ({spec.message})") from None
        finally:
            self.waiting = None
        return self.approvals.pop(spec.name, None) or self.approvals.pop("*")

    async def _activity(self, run: RunbookInput, spec: StepSpec, phase: str,
                        outputs: dict[str, dict[str, Any]], skipped: list[str]) -> dict[str, Any]:
        step = StepInput(run.policy, run.runbook, run.run_id, spec.index, phase, run.vars, dict(outputs),
                         list(skipped), run.heartbeat_s)
        # A killed agent's step is retried on the host's next agent; the activity itself refuses
        # to re-run a non-idempotent step that was interrupted mid-way (see activities.run_step).
        try:
            result: dict[str, Any] = await workflow.execute_activity(
                "run_step", step, task_queue=host_queue(run.policy, spec.host),
                start_to_close_timeout=timedelta(seconds=spec.timeout_s + 60),
                heartbeat_timeout=timedelta(seconds=run.heartbeat_s), retry_policy=_AGENT_DEATH_RETRY)
        except ActivityError as error:
            cause = error.cause.message if isinstance(error.cause, ApplicationError) else str(error)
            raise ApplicationError(f"step '{spec.name}' on host {spec.host}: {cause}") from None
        if result["state"] == "failed":
            raise ApplicationError(result.get("error") or "failed")
        return result

    async def _fail(self, run: RunbookInput, spec: StepSpec, error: str, done: list[StepSpec],
                    outputs: dict[str, dict[str, Any]], skipped: list[str], started: float
                    ) -> dict[str, Any]:
        if run.no_undo:
            self.status = "stopped"
            return self._summary(run, started, failed=spec.name, error=error)
        undo_failed = False
        for finished in reversed(done):
            if not finished.has_undo:
                continue
            record = {"name": finished.name, "action": "undo", "host": finished.host, "state": "running"}
            self.steps.append(record)
            try:
                await self._activity(run, finished, "undo", outputs, skipped)
                record["state"] = "done"
            except ApplicationError as undo_error:
                record.update(state="failed", error=undo_error.message)
                undo_failed = True
        self.status = "failed-undo" if undo_failed else "failed"
        return self._summary(run, started, failed=spec.name, error=error)

    def _summary(self, run: RunbookInput, started: float, failed: str | None = None,
                 error: str | None = None) -> dict[str, Any]:
        return {"run_id": run.run_id, "runbook": run.runbook, "status": self.status, "steps": self.steps,
                "failed_step": failed, "error": error,
                "rto_s": workflow.now().timestamp() - started if self.status == "succeeded" else None}


WORKFLOWS = [MirrorJob, MirrorTick, FleetRunbook]


def _gate_applies(run: RunbookInput, spec: StepSpec, outputs: dict[str, dict[str, Any]],
                  skipped: list[str]) -> bool:
    """An approve step's ``when:``, as the local engine decides it (a pure template: deterministic)."""
    if spec.when is None:
        return True
    scope = Scope(vars=run.vars, outputs=dict(outputs), run_id=run.run_id, skipped=set(skipped))
    try:
        return evaluate_when(spec.when, scope)
    except TemplateError as error:
        raise ApplicationError(f"step '{spec.name}': when: {error}") from None
