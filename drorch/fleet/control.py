"""Starting fleet work from the CLI: a mirror now, a runbook as one workflow, an approval.

``start_mirror`` starts the mirror's job under its one workflow ID
(``mirror:<policy>:<mirror>``) with ``WorkflowIDConflictPolicy.FAIL``: if a
run is going (started by a schedule, another operator, another controller)
the engine refuses the second and the caller is told (with ``wait`` it waits
for the running one's result instead of starting a twin).

Tuning comes from the environment so tests can make failure detection fast:
``DRORCH_FLEET_HEARTBEAT_S`` (default 30: an agent silent this long is taken
for dead and its job retried elsewhere).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drorch.fleet.messages import JobInput, RunbookInput, mirror_workflow_id, workflow_queue
from drorch.policy import Policy
from drorch.ports.errors import DrorchError, UsageError

if TYPE_CHECKING:
    from temporalio.client import Client

__all__ = ["approve", "heartbeat_s", "job_input", "start_mirror", "start_runbook"]


def heartbeat_s() -> float:
    return float(os.environ.get("DRORCH_FLEET_HEARTBEAT_S") or 30.0)


def job_input(policy: Policy, mirror: str) -> JobInput:
    the_mirror = policy.mirror(mirror)
    return JobInput(policy.metadata.name, the_mirror.name, policy.host_of(the_mirror), heartbeat_s())


@dataclass
class Started:
    workflow_id: str
    already_running: bool
    result: dict[str, Any] | None = None


async def start_mirror(client: Client, policy: Policy, mirror: str, *, wait: bool = False) -> Started:
    from temporalio.client import WorkflowFailureError
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    job = job_input(policy, mirror)
    workflow_id = mirror_workflow_id(job.policy, job.mirror)
    already = False
    try:
        handle = await client.start_workflow(
            "MirrorJob", job, id=workflow_id, task_queue=workflow_queue(job.policy),
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL)
    except WorkflowAlreadyStartedError:
        already = True
        handle = client.get_workflow_handle(workflow_id)
    if not wait:
        return Started(workflow_id, already)
    try:
        return Started(workflow_id, already, await _result_across_restarts(handle))
    except WorkflowFailureError as error:
        raise DrorchError(f"mirror {mirror} failed in the fleet: {_cause(error)}") from None


def _cause(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    return getattr(error, "message", None) or str(error)


async def start_runbook(client: Client, run: RunbookInput, *, wait: bool = True) -> dict[str, Any]:
    handle = await client.start_workflow("FleetRunbook", run, id=run.run_id,
                                         task_queue=workflow_queue(run.policy))
    if not wait:
        return {"run_id": run.run_id, "status": "running"}
    return await _result_across_restarts(handle)


async def _result_across_restarts(handle: Any) -> dict[str, Any]:
    """Wait for a workflow's result; an engine restart meanwhile is waited out, not fatal."""
    import asyncio

    from temporalio.service import RPCError, RPCStatusCode

    while True:
        try:
            result: dict[str, Any] = await handle.result()
            return result
        except RPCError as error:
            if error.status not in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
                                    RPCStatusCode.UNKNOWN, RPCStatusCode.CANCELLED):
                raise
            await asyncio.sleep(1.0)


def new_run_id() -> str:
    """Fleet run IDs start with ``fleet-`` so ``runbook approve`` knows where to send them."""
    return f"fleet-{secrets.token_hex(6)}"


async def _described(client: Client, run_id: str) -> tuple[Any, Any]:
    """The run's workflow handle and description; ``UsageError`` if the engine has no such run."""
    from temporalio.service import RPCError

    handle = client.get_workflow_handle(run_id)
    try:
        return handle, await handle.describe()
    except RPCError:
        raise UsageError(f"no fleet run {run_id} in the engine",
                         hint="`drorch runbook list --fleet` lists them; `failover --fleet` prints "
                         "the ID when it starts") from None


async def approve(client: Client, run_id: str, step: str | None, who: str) -> dict[str, Any]:
    """Signal the run's approve gate; ``UsageError`` if the run is not going."""
    from temporalio.client import WorkflowExecutionStatus

    handle, description = await _described(client, run_id)
    if description.status != WorkflowExecutionStatus.RUNNING:
        state = _status_name(description.status)
        raise UsageError(f"fleet run {run_id} is {state}; "
                         "there is nothing left to approve")
    await handle.signal("approve", args=[step, who])
    progress: dict[str, Any] = await handle.query("progress")
    return progress


_QUERY_S = 5.0  # a running workflow answers queries only while an agent serves workflow code


async def show_run(client: Client, run_id: str) -> dict[str, Any]:
    """A fleet run as ``runbook show`` prints it: its status and steps (hosts, states, errors)."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError

    handle, description = await _described(client, run_id)
    status = _status_name(description.status)
    shown: dict[str, Any] = {"run_id": run_id, "status": status, "steps": [],
                             "started": description.start_time.timestamp(),
                             "closed": description.close_time.timestamp() if description.close_time else None}
    try:
        if description.status == WorkflowExecutionStatus.COMPLETED:
            shown |= await handle.result()
        elif description.status == WorkflowExecutionStatus.RUNNING:
            progress = await asyncio.wait_for(handle.query("progress"), _QUERY_S)
            shown |= {"steps": progress["steps"], "waiting": progress["waiting"]}
    except (RPCError, TimeoutError):
        shown["note"] = "its steps are not available now: no agent is serving workflow code"
    return shown


async def list_runs(client: Client, limit: int) -> list[dict[str, Any]]:
    """The newest fleet runbook runs the engine knows, newest first."""
    runs = []
    async for wf in client.list_workflows("WorkflowType = 'FleetRunbook'", limit=limit):
        runs.append({"id": wf.id, "status": _status_name(wf.status),
                     "started": wf.start_time.timestamp(),
                     "closed": wf.close_time.timestamp() if wf.close_time else None})
    return sorted(runs, key=lambda r: -r["started"])


def _status_name(status: Any) -> str:
    """A workflow execution status as fleet commands print it ("running", "completed", ...)."""
    return status.name.lower() if status else "unknown"
