"""``drorch fleet apply``: one engine Schedule per scheduled mirror, reconciled with the policy.

Each mirror with a cron ``schedule`` gets the Schedule
``schedule:<policy>:<mirror>``, whose action starts ``MirrorTick``; the tick
starts the mirror's job under its one workflow ID, so a run that is still
going when the next is due is skipped: the engine refuses a second workflow
with that ID (the Schedule's overlap policy SKIP covers only the short tick).

Re-applying makes the engine match the policy: new mirrors are created,
changed crons and hosts updated, and schedules of this policy whose mirror
is gone (or no longer scheduled) deleted. Schedules of other policies are
never touched. ``continuous`` mirrors are not engine schedules: they follow
file events, so ``drorch schedule POLICY`` runs them on their source's host
(reported as skipped, with that command; agents do not run them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from drorch.fleet.control import job_input
from drorch.fleet.messages import JobInput, schedule_id, tick_workflow_id, workflow_queue
from drorch.policy import Policy

if TYPE_CHECKING:
    from temporalio.client import Client, Schedule

__all__ = ["ScheduleChanges", "apply_schedules"]


@dataclass
class ScheduleChanges:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # mirror → why it has no schedule


def _schedule(policy: Policy, mirror: str, cron: str) -> Schedule:
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
        ScheduleState,
    )

    job = job_input(policy, mirror)
    action = ScheduleActionStartWorkflow("MirrorTick", job, id=tick_workflow_id(job.policy, mirror),
                                         task_queue=workflow_queue(job.policy))
    return Schedule(action=action, spec=ScheduleSpec(cron_expressions=[cron]),
                    policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
                    state=ScheduleState(note=_fingerprint(job, cron)))


def _fingerprint(job: JobInput, cron: str) -> str:
    """What the schedule was made from, kept in its note: re-apply compares this, not the
    engine's rewritten spec (it stores crons as calendars)."""
    return f"drorch: cron={cron} host={job.host} heartbeat={job.heartbeat_s:g}"


async def existing_schedules(client: Client, policy: str) -> list[str]:
    prefix = schedule_id(policy, "")
    found = []
    async for listed in await client.list_schedules():
        if listed.id.startswith(prefix):
            found.append(listed.id)
    return found


async def apply_schedules(client: Client, policy: Policy) -> ScheduleChanges:
    from temporalio.client import ScheduleAlreadyRunningError, ScheduleUpdate

    changes = ScheduleChanges()
    name = policy.metadata.name
    existing = set(await existing_schedules(client, name))
    wanted: set[str] = set()
    for mirror in policy.mirrors:
        if mirror.schedule is None:
            changes.skipped[mirror.name] = "no schedule (manual: drorch fleet run)"
            continue
        if mirror.schedule == "continuous":
            changes.skipped[mirror.name] = ("continuous: run `drorch schedule` on its source's host "
                                            "(file events, not an engine schedule)")
            continue
        sid = schedule_id(name, mirror.name)
        wanted.add(sid)
        schedule = _schedule(policy, mirror.name, str(mirror.schedule))
        if sid not in existing:
            try:
                await client.create_schedule(sid, schedule)
                changes.created.append(mirror.name)
                continue
            except ScheduleAlreadyRunningError:
                pass  # created moments ago and not listed yet: reconcile it below
        handle = client.get_schedule_handle(sid)
        current = (await handle.describe()).schedule
        if current.state.note == schedule.state.note:
            changes.unchanged.append(mirror.name)
            continue
        await handle.update(lambda _input, s=schedule: ScheduleUpdate(schedule=s))  # type: ignore[misc]
        changes.updated.append(mirror.name)
    for stale in sorted(existing - wanted):
        await client.get_schedule_handle(stale).delete()
        changes.deleted.append(stale.removeprefix(schedule_id(name, "")))
    return changes
