"""The scheduler (``drorch schedule``): mirrors and drills on cron, continuous mirrors, metrics.

    run_schedule(policy_path, stop)     the foreground process (lock, loop, watchers, metrics)
    Scheduler                           the cron loop: catch up once, never twice at once, clock jumps
    ContinuousMirror                    file events → debounced snapshot
    export_systemd / export_cron        the same schedule for the OS scheduler
"""

from __future__ import annotations

from drorch.schedule.continuous import ContinuousMirror
from drorch.schedule.jobs import Job, PolicyJobRunner, jobs_for
from drorch.schedule.scheduler import Scheduler
from drorch.schedule.service import SchedulerBusy, run_schedule
from drorch.schedule.store import ScheduleStore
from drorch.schedule.units import export_cron, export_systemd

__all__ = [
    "ContinuousMirror",
    "Job",
    "PolicyJobRunner",
    "ScheduleStore",
    "Scheduler",
    "SchedulerBusy",
    "export_cron",
    "export_systemd",
    "jobs_for",
    "run_schedule",
]
