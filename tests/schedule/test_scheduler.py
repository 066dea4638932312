"""The cron loop with a fake clock: catch up once, never twice at once, clock jumps, shutdown."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drorch.schedule import Job, Scheduler, ScheduleStore

START = datetime(2026, 11, 2, 10, 0, 30, tzinfo=UTC).timestamp()


class FakeClock:
    """Wall and monotonic time that move only when told; ``sleep`` advances both instantly."""

    def __init__(self, now: float = START) -> None:
        self.now = now
        self.mono = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds

    def jump(self, seconds: float) -> None:
        """The wall clock alone moves (NTP step, a suspended host)."""
        self.now += seconds


class Runner:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()

    def __call__(self, job: Job, cancel: threading.Event) -> str:
        self.calls.append(job.key)
        self.started.set()
        while not self.release.wait(0.01):
            if cancel.is_set():
                return "stopped early"
        return "ok"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Scheduler, FakeClock, Runner, list[str], ScheduleStore]:
    clock, runner, lines = FakeClock(), Runner(), []
    store = ScheduleStore(tmp_path / "state.db")
    jobs = [Job("mirror", "web", "*/15 * * * *"), Job("drill", "weekly", "0 3 * * 0")]
    scheduler = Scheduler("shop", jobs, runner, store, clock=clock, log=lines.append, grace_s=5)
    return scheduler, clock, runner, lines, store


def _settle(scheduler: Scheduler) -> None:
    for thread in list(scheduler.running.values()):
        thread.join(5)


def test_first_start_fires_nothing_then_each_slot_once(setup: tuple) -> None:
    scheduler, clock, runner, lines, _ = setup
    scheduler.tick()
    assert runner.calls == []
    clock.advance(14 * 60 + 30)  # 10:15:00
    scheduler.tick()
    _settle(scheduler)
    scheduler.tick()
    _settle(scheduler)
    assert runner.calls == ["mirror:web"]
    clock.advance(15 * 60)
    scheduler.tick()
    _settle(scheduler)
    assert runner.calls == ["mirror:web", "mirror:web"]


def test_downtime_is_caught_up_once(setup: tuple, tmp_path: Path) -> None:
    scheduler, clock, runner, lines, store = setup
    store.set_fired("shop", "mirror:web", START - 5 * 3600)  # the scheduler was down for 5 hours
    scheduler.tick()
    _settle(scheduler)
    scheduler.tick()
    _settle(scheduler)
    assert runner.calls == ["mirror:web"]
    assert any("caught up once for 20 missed runs" in line for line in lines), lines
    assert store.last_fired("shop", "mirror:web") == START


def test_a_run_still_going_is_not_started_twice(setup: tuple) -> None:
    scheduler, clock, runner, lines, _ = setup
    scheduler.tick()
    runner.release.clear()
    clock.advance(14 * 60 + 30)
    scheduler.tick()
    assert runner.started.wait(5)
    clock.advance(15 * 60)
    scheduler.tick()
    assert runner.calls == ["mirror:web"]
    assert any("previous run is still going; not started twice" in line for line in lines), lines
    runner.release.set()
    _settle(scheduler)
    clock.advance(15 * 60)
    scheduler.tick()
    _settle(scheduler)
    assert runner.calls == ["mirror:web", "mirror:web"]


def test_clock_jump_forward_catches_up_once(setup: tuple) -> None:
    scheduler, clock, runner, lines, _ = setup
    scheduler.tick()
    clock.jump(3 * 3600)
    scheduler.tick()
    _settle(scheduler)
    assert runner.calls == ["mirror:web"]
    assert any("the clock jumped forward by 10800s" in line for line in lines), lines
    assert any("caught up once for 12 missed runs" in line for line in lines), lines


def test_clock_jump_backward_reschedules_instead_of_stalling(setup: tuple) -> None:
    scheduler, clock, runner, lines, store = setup
    scheduler.tick()
    clock.advance(14 * 60 + 30)
    scheduler.tick()
    _settle(scheduler)
    clock.jump(-6 * 3600)  # back to 04:15
    scheduler.tick()
    assert any("the clock moved back by 21600s" in line for line in lines), lines
    assert any("in the future" in line and "rescheduling from now" in line for line in lines), lines
    # the next slot after the new "now" fires, instead of waiting six hours
    clock.advance(15 * 60)
    scheduler.tick()
    _settle(scheduler)
    assert runner.calls == ["mirror:web", "mirror:web"]


def test_run_loop_stops_and_asks_running_jobs_to_stop(setup: tuple) -> None:
    scheduler, clock, runner, lines, store = setup
    store.set_fired("shop", "mirror:web", START - 900)
    runner.release.clear()
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,))
    thread.start()
    assert runner.started.wait(5)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert ("mirror:web", "stopped early") in scheduler.outcomes
    assert any("stopping: waiting up to 5s for mirror:web" in line for line in lines), lines


def test_a_failing_job_does_not_stop_the_scheduler(setup: tuple) -> None:
    scheduler, clock, _, lines, store = setup

    def boom(job: Job, cancel: threading.Event) -> str:
        raise RuntimeError("target unreachable")

    scheduler.runner = boom
    store.set_fired("shop", "mirror:web", START - 900)
    scheduler.tick()
    _settle(scheduler)
    assert ("mirror:web", "failed: target unreachable") in scheduler.outcomes
