"""One ``drorch schedule`` process: the lock, the cron loop, continuous watchers, metrics.

Only one scheduler may run per state store (``$DRORCH_HOME``): two would fire
every job twice. The second one refuses at once with one sentence naming the
first one's PID and policy; the lock is an ``flock``, released by the kernel
however the first one dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from drorch.drill.locks import ProcessLock
from drorch.policy import load_policy
from drorch.ports.errors import DrorchError
from drorch.schedule.clock import Clock
from drorch.schedule.continuous import ContinuousMirror
from drorch.schedule.jobs import JobRunner, PolicyJobRunner, jobs_for
from drorch.schedule.metrics import MetricsServer
from drorch.schedule.scheduler import Scheduler
from drorch.schedule.store import ScheduleStore
from drorch.state.tables import home as default_home

__all__ = ["SchedulerBusy", "run_schedule"]


class SchedulerBusy(DrorchError):
    """Another scheduler holds this state store."""


def scheduler_lock(home: Path, policy: str) -> ProcessLock:
    lock = ProcessLock(home / "scheduler.lock")
    if not lock.acquire(f"policy {policy}"):
        pid, _, what = lock.holder().partition(" ")
        raise SchedulerBusy(f"another drorch schedule (pid {pid or '?'}, {what or 'unknown policy'}) is "
                            f"already running on the state store {home / 'state.db'}",
                            hint="stop it first, or give this one its own DRORCH_HOME")
    return lock


def run_schedule(policy_path: Path, stop: threading.Event, *, only: list[str] | None = None,
                 home: Path | None = None, metrics_port: int | None = None,
                 log: Callable[[str], None] = print, clock: Clock | None = None,
                 runner: JobRunner | None = None, grace_s: float = 60.0,
                 on_ready: Callable[[Scheduler], None] = lambda s: None) -> Scheduler:
    """Run until ``stop`` is set; returns the scheduler (its ``outcomes``) after shutdown."""
    policy = load_policy(policy_path)
    jobs = jobs_for(policy, only)
    home = home or default_home()
    with scheduler_lock(home, policy.metadata.name):
        scheduler = Scheduler(policy.metadata.name, jobs, runner or PolicyJobRunner(policy_path, home=home),
                              ScheduleStore(home / "state.db"), clock=clock, log=log, grace_s=grace_s)
        watchers = [ContinuousMirror(job, policy.source_of(policy.mirror(job.name)).path,
                                     scheduler.start_job, log=log)
                    for job in jobs if job.cron is None]
        metrics = None
        if metrics_port is not None:
            metrics = MetricsServer(metrics_port, lambda: _exposition(policy_path, home))
            metrics.start()
            log(f"metrics: http://127.0.0.1:{metrics.port}/metrics")
        if not jobs:
            log(f"policy {policy.metadata.name} schedules nothing: no mirror or drill has a schedule")
        for watcher in watchers:
            log(f"{watcher.job.key}: continuous, watching {watcher.source}")
            watcher.start()
        on_ready(scheduler)
        try:
            scheduler.run(stop)
        finally:
            for watcher in watchers:
                watcher.stop()
            if metrics is not None:
                metrics.stop()
    return scheduler


def _exposition(policy_path: Path, home: Path) -> str:
    from drorch.drill.history import DrillHistory
    from drorch.engine.status import policy_status
    from drorch.policy import load_policy as load
    from drorch.secrets import key_source

    policy = load(policy_path)
    return policy_status(policy, key_source(policy.encryption),
                         history=DrillHistory(home / "state.db")).to_prometheus()
