"""``drorch schedule``: fire mirrors and drills on their cron schedules, in the foreground.

Rules an operator can rely on:

- **Catch up once.** Each job's last firing is stored in the state database. A
  scheduler that was down (or a host that slept) through several slots runs
  the job once on return, not once per missed slot, and says how many it
  missed. A first start with no history fires nothing until the next slot.
- **Never twice at once.** A job whose previous run is still going is not
  started again; the slot is logged as skipped and counts as handled.
- **Clock jumps.** The wall clock is compared with the monotonic clock every
  tick. A jump forward is a gap like any downtime (caught up once). A jump
  backward would otherwise stall every job until the clock caught up again,
  so jobs whose last firing now lies in the future are rebased on the current
  time: a run may repeat, none is skipped (for backups, an extra snapshot is
  cheap and a missing one breaches the RPO).
- **Stopping.** ``stop`` (SIGTERM/SIGINT) stops new firings; running jobs are
  asked to stop (a drill abandons its step and cleans up its sandbox; an
  apply finishes) and waited for up to ``grace_s``. An apply still running
  after that is abandoned, which is safe: an interrupted apply leaves no
  visible snapshot and the next one reuses what was uploaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from croniter import croniter

from drorch.schedule.clock import Clock, SystemClock
from drorch.schedule.jobs import Job, JobRunner
from drorch.schedule.store import ScheduleStore

__all__ = ["Scheduler"]

_MAX_TICK_S = 30.0  # wake at least this often, to notice clock jumps and stop requests
_MISSED_CAP = 10_000


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Scheduler:
    def __init__(self, policy: str, jobs: list[Job], runner: JobRunner, store: ScheduleStore, *,
                 clock: Clock | None = None, log: Callable[[str], None] = print,
                 jump_tolerance_s: float = 60.0, grace_s: float = 60.0) -> None:
        self.policy = policy
        self.jobs = [j for j in jobs if j.cron is not None]
        self.runner = runner
        self.store = store
        self.clock = clock or SystemClock()
        self.log = log
        self.jump_tolerance_s = jump_tolerance_s
        self.grace_s = grace_s
        self.cancel = threading.Event()
        self.running: dict[str, threading.Thread] = {}
        self.outcomes: list[tuple[str, str]] = []  # (job key, outcome), for tests and metrics
        self._lock = threading.Lock()
        self._last: tuple[float, float] | None = None  # (wall, monotonic) at the previous tick

    # ------------------------------------------------------------------------------ loop

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set, then shut down (module docstring)."""
        for job in self.jobs:
            self.log(f"scheduled {job.key} on '{job.cron}'; next run {_stamp(self.next_due(job))}")
        while not stop.is_set():
            self.tick()
            self.clock.sleep(self.seconds_to_next(), stop)
        self.shutdown()

    def tick(self) -> None:
        now = self.clock.time()
        self._check_jump(now)
        for job in self.jobs:
            last = self._last_fired(job, now)
            due = self._next_after(job, last)
            if due <= now:
                self._fire(job, last, now)

    def seconds_to_next(self) -> float:
        now = self.clock.time()
        waits = [self.next_due(job) - now for job in self.jobs]
        return max(0.05, min([*waits, _MAX_TICK_S]))

    def next_due(self, job: Job) -> float:
        last = self.store.last_fired(self.policy, job.key)
        return self._next_after(job, self.clock.time() if last is None else last)

    # --------------------------------------------------------------------------- details

    @staticmethod
    def _next_after(job: Job, when: float) -> float:
        return float(croniter(job.cron, when).get_next(float))

    def _last_fired(self, job: Job, now: float) -> float:
        last = self.store.last_fired(self.policy, job.key)
        if last is None:  # first start: a baseline, not a backlog
            self.store.set_fired(self.policy, job.key, now)
            return now
        if last > now + self.jump_tolerance_s:
            self.log(f"{job.key}: last run is recorded at {_stamp(last)}, {last - now:.0f}s in the future "
                     "(the clock moved back); rescheduling from now: a run may repeat, none is skipped")
            self.store.set_fired(self.policy, job.key, now)
            return now
        return last

    def _check_jump(self, now: float) -> None:
        mono = self.clock.monotonic()
        if self._last is not None:
            expected = self._last[0] + (mono - self._last[1])
            drift = now - expected
            if drift > self.jump_tolerance_s:
                self.log(f"the clock jumped forward by {drift:.0f}s (or the host was suspended); "
                         "runs missed meanwhile are caught up once")
            elif drift < -self.jump_tolerance_s:
                self.log(f"the clock moved back by {-drift:.0f}s; jobs are rescheduled from the new time "
                         "(a run may repeat, none is skipped)")
        self._last = (now, mono)

    def _missed(self, job: Job, last: float, now: float) -> int:
        it = croniter(job.cron, last)
        count = 0
        while count < _MISSED_CAP and it.get_next(float) <= now:
            count += 1
        return count

    def _fire(self, job: Job, last: float, now: float) -> None:
        self.store.set_fired(self.policy, job.key, now)
        with self._lock:
            busy = job.key in self.running
        if busy:
            self.log(f"{job.key}: due at {_stamp(now)} but the previous run is still going; "
                     "not started twice")
            return
        missed = self._missed(job, last, now)
        note = f" (caught up once for {missed} missed runs since {_stamp(last)})" if missed > 1 else ""
        self.log(f"{job.key}: starting{note}")
        thread = threading.Thread(target=self._work, args=(job,), name=f"drorch-{job.key}", daemon=True)
        with self._lock:
            self.running[job.key] = thread
        thread.start()

    def _work(self, job: Job) -> None:
        try:
            outcome = self.runner(job, self.cancel)
        except Exception as error:  # noqa: BLE001 - one job's failure never stops the scheduler
            outcome = f"failed: {error}"
        except KeyboardInterrupt:
            outcome = "stopped: the scheduler is shutting down"
        finally:
            with self._lock:
                self.running.pop(job.key, None)
        self.outcomes.append((job.key, outcome))
        self.log(f"{job.key}: {outcome}")

    def start_job(self, job: Job, why: str) -> bool:
        """Run ``job`` now (continuous mirrors); False when its previous run is still going."""
        with self._lock:
            if job.key in self.running:
                return False
            thread = threading.Thread(target=self._work, args=(job,), name=f"drorch-{job.key}", daemon=True)
            self.running[job.key] = thread
        self.log(f"{job.key}: starting ({why})")
        thread.start()
        return True

    def shutdown(self) -> None:
        self.cancel.set()
        with self._lock:
            threads = dict(self.running)
        if threads:
            self.log(f"stopping: waiting up to {self.grace_s:g}s for {', '.join(threads)}")
        deadline = self.clock.monotonic() + self.grace_s
        for key, thread in threads.items():
            thread.join(max(0.0, deadline - self.clock.monotonic()))
            if thread.is_alive():
                self.log(f"{key}: abandoned at shutdown; an interrupted apply leaves no partial snapshot "
                         "and a drill's leftovers are swept by the next drill")
