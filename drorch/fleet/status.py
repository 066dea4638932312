"""``drorch fleet status``: agents from the engine, RPO from the repositories.

- **Agents**: for each host, the engine's record of the agents polling the
  host's task queue (identity, last time it asked for work). An agent that
  has not asked for ``dead_after_s`` (default 90s: a long poll lasts up to a
  minute) is dead. A host with no live agent is a breach: its mirrors and
  steps cannot run.
- **Mirrors**: newest snapshot, its age and the RPO per target, read from the
  repositories themselves (``engine.status.policy_status``, the same report as
  ``drorch status``); and the job running now, from the mirror's workflow
  (attempt, agent, last heartbeat).

Exit 3 on an RPO breach or a dead agent.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from drorch.engine.status import StatusReport, policy_status
from drorch.fleet.messages import host_queue, mirror_workflow_id
from drorch.policy import Policy
from drorch.policy.hosts import LOCAL_HOST
from drorch.secrets import KeySource

if TYPE_CHECKING:
    from temporalio.client import Client

__all__ = ["AgentStatus", "FleetStatus", "JobStatus", "fleet_status"]

DEAD_AFTER_S = 90.0


@dataclass(frozen=True)
class AgentStatus:
    host: str
    site: str | None
    alive: bool
    agents: tuple[str, ...]  # identities of the live agents
    last_heartbeat_s: float | None  # seconds since an agent of this host last polled; None: never


@dataclass(frozen=True)
class JobStatus:
    mirror: str
    host: str
    running: bool
    attempt: int | None = None
    agent: str | None = None
    last_heartbeat_s: float | None = None
    last_failure: str | None = None


@dataclass(frozen=True)
class FleetStatus:
    policy: str
    agents: tuple[AgentStatus, ...]
    jobs: tuple[JobStatus, ...]
    report: StatusReport

    @property
    def dead_hosts(self) -> list[str]:
        return [a.host for a in self.agents if not a.alive]

    @property
    def breach(self) -> bool:
        return self.report.breach or bool(self.dead_hosts)

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "agents": [asdict(a) for a in self.agents],
                "jobs": [asdict(j) for j in self.jobs], "mirrors": self.report.to_json()["mirrors"],
                "dead_hosts": self.dead_hosts, "breach": self.breach}

    def to_prometheus(self) -> str:
        lines = [self.report.to_prometheus().rstrip("\n"),
                 "# HELP drorch_agent_up 1 when an agent of the host polled the engine recently.",
                 "# TYPE drorch_agent_up gauge",
                 "# HELP drorch_agent_last_heartbeat_seconds Seconds since an agent of the host polled "
                 "(-1: never).",
                 "# TYPE drorch_agent_last_heartbeat_seconds gauge",
                 "# HELP drorch_mirror_job_running 1 while a job of the mirror runs in the fleet.",
                 "# TYPE drorch_mirror_job_running gauge"]
        for a in self.agents:
            labels = f'policy="{self.policy}",host="{a.host}"'
            seen = -1 if a.last_heartbeat_s is None else round(a.last_heartbeat_s, 3)
            lines += [f"drorch_agent_up{{{labels}}} {int(a.alive)}",
                      f"drorch_agent_last_heartbeat_seconds{{{labels}}} {seen}"]
        for j in self.jobs:
            lines.append(f'drorch_mirror_job_running{{policy="{self.policy}",mirror="{j.mirror}",'
                         f'host="{j.host}"}} {int(j.running)}')
        return "\n".join(lines) + "\n"


def fleet_hosts(policy: Policy) -> list[str]:
    """Every host the policy uses: its ``hosts:``, and ``local`` if a source runs there."""
    names = [h.name for h in policy.hosts]
    if any(policy.host_of(m) == LOCAL_HOST for m in policy.mirrors) and LOCAL_HOST not in names:
        names.append(LOCAL_HOST)
    return names


async def fleet_status(client: Client, policy: Policy, keys: KeySource, *,
                       dead_after_s: float = DEAD_AFTER_S) -> FleetStatus:
    import asyncio

    name = policy.metadata.name
    agents = [await _agents(client, name, host, policy, dead_after_s) for host in fleet_hosts(policy)]
    jobs = [await _job(client, name, m.name, policy.host_of(m)) for m in policy.mirrors]
    report = await asyncio.to_thread(policy_status, policy, keys)
    return FleetStatus(name, tuple(agents), tuple(jobs), report)


async def _agents(client: Client, policy_name: str, host: str, policy: Policy,
                  dead_after_s: float) -> AgentStatus:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    request = DescribeTaskQueueRequest(namespace=client.namespace,
                                       task_queue=TaskQueue(name=host_queue(policy_name, host)),
                                       task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
    response = await client.workflow_service.describe_task_queue(request)
    now = time.time()
    ages = {p.identity: now - p.last_access_time.ToSeconds() for p in response.pollers
            if p.HasField("last_access_time")}
    live = tuple(sorted(i for i, age in ages.items() if age <= dead_after_s))
    site = policy.host(host).site
    return AgentStatus(host, site, bool(live), live, min(ages.values()) if ages else None)


async def _job(client: Client, policy_name: str, mirror: str, host: str) -> JobStatus:
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError

    try:
        description = await client.get_workflow_handle(mirror_workflow_id(policy_name, mirror)).describe()
    except RPCError:
        return JobStatus(mirror, host, running=False)
    if description.status != WorkflowExecutionStatus.RUNNING:
        return JobStatus(mirror, host, running=False)
    pending = list(description.raw_description.pending_activities)
    if not pending:
        return JobStatus(mirror, host, running=True)
    activity = pending[0]
    beat = (time.time() - activity.last_heartbeat_time.ToSeconds()
            if activity.HasField("last_heartbeat_time") else None)
    failure = activity.last_failure.message if activity.HasField("last_failure") else None
    return JobStatus(mirror, host, True, activity.attempt, activity.last_worker_identity or None, beat,
                     failure or None)
