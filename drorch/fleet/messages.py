"""Names and messages shared by workflows, activities and the CLI (plain data, no SDK).

Identities that make the guarantees of SPEC §7:

- ``mirror:<policy>:<mirror>`` is the one workflow ID of a mirror's job. The
  engine refuses a second start while one runs (whoever starts it: a
  schedule, ``fleet run``, another controller), so two runs of a mirror never
  overlap on any number of agents.
- ``drorch.<policy>.host.<host>`` is the task queue of a host: only agents
  started with ``--host HOST`` poll it, so a job or a runbook step runs on
  the host it names. Every agent of the policy also serves
  ``drorch.<policy>.workflows`` (workflow code only, no data).

This module is imported inside the workflow sandbox: keep it free of I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "JobInput",
    "RunbookInput",
    "StepInput",
    "StepSpec",
    "host_queue",
    "mirror_workflow_id",
    "schedule_id",
    "tick_workflow_id",
    "workflow_queue",
]


def workflow_queue(policy: str) -> str:
    return f"drorch.{policy}.workflows"


def host_queue(policy: str, host: str) -> str:
    return f"drorch.{policy}.host.{host}"


def mirror_workflow_id(policy: str, mirror: str) -> str:
    return f"mirror:{policy}:{mirror}"


def schedule_id(policy: str, mirror: str) -> str:
    return f"schedule:{policy}:{mirror}"


def tick_workflow_id(policy: str, mirror: str) -> str:
    """What a schedule starts (the engine appends the time); it starts the mirror's job."""
    return f"tick:{policy}:{mirror}"


@dataclass
class JobInput:
    """One run of one mirror on its source's host.

    ``heartbeat_s``: an agent that has not heartbeated for this long is taken
    for dead and the job is retried on the host's next agent; the agent stops
    its own job after half of it without an acknowledged heartbeat, so the
    retry never overlaps it.
    """

    policy: str
    mirror: str
    host: str
    heartbeat_s: float = 30.0
    timeout_s: float = 6 * 3600.0
    max_attempts: int = 10


@dataclass
class StepSpec:
    """A runbook step as the workflow sees it: where it runs and how long it may take."""

    index: int
    name: str
    action: str
    host: str
    timeout_s: float
    idempotent: bool
    has_undo: bool = False
    message: str = ""  # approve: the question
    when: str | bool | None = None  # approve: its condition, decided by the workflow (other steps: the agent)


@dataclass
class RunbookInput:
    policy: str
    runbook: str  # the key under the policy's runbooks: (failover, failback)
    run_id: str
    start_host: str
    vars: dict[str, str]
    steps: list[StepSpec]
    yes: bool = False
    no_undo: bool = False
    heartbeat_s: float = 30.0


@dataclass
class StepInput:
    """What one step (or undo) needs on its host: the rest comes from the host's policy file."""

    policy: str
    runbook: str
    run_id: str
    index: int
    phase: str  # "do" or "undo"
    vars: dict[str, str]
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    heartbeat_s: float = 30.0
