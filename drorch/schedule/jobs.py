"""The jobs a policy schedules, and how one is run.

A job is a mirror (``apply`` of that mirror, through ``engine.apply_policy``: no
subprocess) or a drill (``run_drill``), on a cron expression; a mirror with
``schedule: continuous`` is driven by file events instead (``continuous.py``).
Mirrors and drills without a ``schedule`` are never started by the scheduler.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from drorch.policy import Policy
from drorch.ports.errors import UsageError

__all__ = ["Job", "JobRunner", "PolicyJobRunner", "jobs_for"]


@dataclass(frozen=True)
class Job:
    kind: Literal["mirror", "drill"]
    name: str
    cron: str | None  # None: continuous

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"


JobRunner = Callable[[Job, threading.Event], str]
"""Runs one job to the end (``cancel`` asks it to stop early); returns a one-line outcome."""


def jobs_for(policy: Policy, only: list[str] | None = None) -> list[Job]:
    """Every scheduled mirror and drill, or only the ``kind:name`` keys in ``only``."""
    jobs: list[Job] = []
    for mirror in policy.mirrors:
        if mirror.schedule is not None:
            cron = None if mirror.schedule == "continuous" else mirror.schedule
            jobs.append(Job("mirror", mirror.name, cron))
    for drill in policy.drills:
        if drill.schedule is not None:
            jobs.append(Job("drill", drill.name, drill.schedule))
    if only:
        known = {job.key: job for job in jobs}
        unknown = [key for key in only if key not in known]
        if unknown:
            raise UsageError(f"no scheduled job {', '.join(unknown)} in policy {policy.metadata.name}",
                             hint=f"scheduled jobs: {', '.join(known) or 'none'}")
        jobs = [known[key] for key in only]
    return jobs


class PolicyJobRunner:
    """The real runner: ``Applier`` for mirrors, ``run_drill`` for drills."""

    def __init__(self, policy_path: Path, *, home: Path | None = None, lock_wait_s: float = 60.0) -> None:
        self.policy_path = policy_path
        self.home = home
        self.lock_wait_s = lock_wait_s

    def __call__(self, job: Job, cancel: threading.Event) -> str:
        if job.kind == "mirror":
            return self._mirror(job.name)
        return self._drill(job.name, cancel)

    def _mirror(self, name: str) -> str:
        from drorch.engine.apply import apply_policy
        from drorch.policy import load_policy
        from drorch.state.tables import StateStore

        state = StateStore(self.home / "state.db") if self.home else StateStore()
        result = apply_policy(load_policy(self.policy_path), mirror=name, state=state,
                              lock_wait_s=self.lock_wait_s)
        [mirror] = result.mirrors
        if mirror.error:
            return f"failed: {mirror.error}"
        parts = [f"{t.target} {(t.snapshot or '')[:8]}" if t.ok else f"{t.target} FAILED ({t.error})"
                 for t in mirror.targets]
        verdict = {0: "ok", 1: "failed"}.get(result.exit_code, "objectives missed")
        return f"{verdict}: " + ", ".join(parts)

    def _drill(self, name: str, cancel: threading.Event) -> str:
        from drorch.drill import DrillOptions, run_drill

        result = run_drill(self.policy_path, name, home=self.home,
                           options=DrillOptions(cancel=cancel, handle_signals=False))
        reasons = "; ".join(result.reasons())
        return result.summary() + (f" ({reasons})" if reasons else "")
