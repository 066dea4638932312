"""One mirror job: what the process the agent's fork server forks for it does.

The agent runs each mirror job in its own process so it can stop it for
certain: when the engine stops acknowledging its heartbeats (a partition) or
it hands the job back on SIGTERM, it kills this process, and a kill at any
point is safe (``run_mirror`` adopts uploaded packs on the retry and
publishes at most one snapshot). The process also dies with its agent
(``PR_SET_PDEATHSIG``), so a ``kill -9`` of the agent never leaves a job
running beside its retry.

Exactly once across attempts: the snapshot is tagged ``drorch-job:<JOB_ID>``
(the workflow run's ID), and an attempt that finds its job's snapshot already
published reports it instead of taking another (the predecessor died between
its commit and its report).

``job_main`` prints the ``ApplyResult`` as JSON on stdout and returns its exit code.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from drorch.engine.apply import ApplyResult, MirrorResult, TargetResult, apply
from drorch.engine.plan import build_plan
from drorch.policy import load_policy
from drorch.ports.errors import DrorchError
from drorch.repository.snapshot import load_snapshots
from drorch.secrets import key_source
from drorch.state.tables import StateStore

if TYPE_CHECKING:
    from drorch.policy.model import Policy

__all__ = ["die_with_parent", "job_main", "run_job"]

_PR_SET_PDEATHSIG = 1
SLOW_PUT_ENV = "DRORCH_FLEET_TEST_PUT_DELAY_S"
"""Test hook: seconds to sleep before each ``data/`` put, so a test can kill a job mid-upload."""


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the agent's own fencing still stops the job on a lost lease
    if os.getppid() != parent:
        os._exit(1)


def _slow_uploads(delay: float) -> None:
    from drorch.storage.retry import RetryingStore

    put = RetryingStore.put

    def slow_put(self: RetryingStore, name: str, data: bytes | bytearray | memoryview, *,
                 exclusive: bool = False) -> None:
        if name.startswith("data/"):
            time.sleep(delay)
        put(self, name, data, exclusive=exclusive)

    RetryingStore.put = slow_put  # type: ignore[method-assign]


JOB_TAG_PREFIX = "drorch-job:"


def run_job(policy_path: str, mirror: str, job_id: str, policy: Policy | None = None) -> dict[str, Any]:
    """Run the mirror once for job ``job_id``: if an earlier attempt of this job already
    published its snapshot (it died after the commit, before reporting), report that one
    instead of publishing a second. ``policy``: the file already loaded (the fork server's)."""
    policy = policy or load_policy(policy_path)
    keys = key_source(policy.encryption)
    plan = build_plan(policy, mirror=mirror, keys=keys)
    step = plan.mirrors[0]
    tag = JOB_TAG_PREFIX + job_id
    primary = step.targets[0].repository if step.targets else None
    if primary is not None:
        published = [s for s in load_snapshots(primary) if tag in s.tags]
        if published:
            target = TargetResult(step.targets[0].target, ok=True, snapshot=published[0].id)
            done = ApplyResult(plan.policy, [MirrorResult(step.mirror, step.mode, [target])])
            return done.to_json() | {"already_published": True}
    result = apply(replace(plan, mirrors=(replace(step, extra_tags=(tag,)),)), state=StateStore())
    return result.to_json()


def job_main(policy_path: str, mirror: str, job_id: str, policy: Policy | None = None) -> int:
    """The job's whole life after its process exists: the result as JSON on stdout, the
    error as one line on stderr; returns the exit code."""
    if os.environ.get(SLOW_PUT_ENV):
        _slow_uploads(float(os.environ[SLOW_PUT_ENV]))
    try:
        result = run_job(policy_path, mirror, job_id, policy)
    except DrorchError as error:
        sys.stderr.write(f"{type(error).__name__}: {error}\n")
        return error.exit_code
    sys.stdout.write(json.dumps(result, default=str))
    sys.stdout.flush()
    return int(result["exit_code"])
