"""Hand-written fakes of the runbook backends: they record what steps asked for."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drorch.ports.deadline import Deadline
from drorch.ports.errors import StepFailed
from drorch.ports.recovery import LaunchSpec, Machine, ProbeResult, RecordChange


class FakeProber:
    """Answers from ``healthy(target)``; records every probe."""

    def __init__(self, healthy: Callable[[str], bool] = lambda target: True) -> None:
        self.healthy = healthy
        self.probes: list[str] = []

    def http(self, url: str, expect: int, timeout: float) -> ProbeResult:
        self.probes.append(url)
        ok = self.healthy(url)
        return ProbeResult(ok, f"HTTP {expect}" if ok else "HTTP 503, expected 200")

    def tcp(self, host: str, port: int, timeout: float) -> ProbeResult:
        self.probes.append(f"{host}:{port}")
        ok = self.healthy(f"{host}:{port}")
        return ProbeResult(ok, "port open" if ok else "cannot connect (Connection refused)")


@dataclass
class FakeCompute:
    location: str = "fake eu-west-1"
    machines: dict[str, Machine] = field(default_factory=dict)
    by_token: dict[str, str] = field(default_factory=dict)
    specs: list[LaunchSpec] = field(default_factory=list)
    fail: StepFailed | None = None
    hang: bool = False  # ignore the deadline, as a stuck SDK call would
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def launch(self, spec: LaunchSpec, deadline: Deadline) -> Machine:
        self.specs.append(spec)
        if self.hang:
            threading.Event().wait(60)
        if self.fail is not None:
            raise self.fail
        if spec.token in self.by_token:
            return self.machines[self.by_token[spec.token]]
        n = next(self.counter)
        machine = Machine(f"vm-{n}", "running", private_ip=f"10.0.0.{n}", image_id=spec.image)
        self.machines[machine.id] = machine
        self.by_token[spec.token] = machine.id
        return machine

    def _set(self, machine_id: str, state: str) -> Machine:
        old = self.machines.get(machine_id, Machine(machine_id, "unknown"))
        self.machines[machine_id] = Machine(machine_id, state, old.private_ip)
        return self.machines[machine_id]

    def stop(self, machine_id: str, deadline: Deadline) -> Machine:
        return self._set(machine_id, "stopped")

    def terminate(self, machine_id: str, deadline: Deadline) -> Machine:
        return self._set(machine_id, "terminated")


@dataclass
class FakeDns:
    records: dict[tuple[str, str, str | None], tuple[str, ...]] = field(default_factory=dict)
    changes: list[RecordChange] = field(default_factory=list)

    def current(self, change: RecordChange) -> tuple[str, ...]:
        return self.records.get((change.name, change.type, change.set_id), ())

    def apply(self, change: RecordChange, deadline: Deadline) -> str:
        self.changes.append(change)
        key = (change.name, change.type, change.set_id)
        if change.values:
            self.records[key] = change.values
        else:
            self.records.pop(key, None)
        return f"C{len(self.changes)}"

    def wait_in_sync(self, change_id: str, deadline: Deadline) -> None:
        pass


@dataclass
class FakeNotifier:
    sent: list[tuple[str, str]] = field(default_factory=list)

    def publish(self, to: str, message: str, subject: str | None, deadline: Deadline) -> str:
        self.sent.append((to, message))
        return f"m{len(self.sent)}"


@dataclass
class FakeBackends:
    prober: FakeProber = field(default_factory=FakeProber)
    computes: dict[tuple[str, str | None], FakeCompute] = field(default_factory=dict)
    dns_: FakeDns = field(default_factory=FakeDns)
    notify: FakeNotifier = field(default_factory=FakeNotifier)

    def compute(self, provider: str, region: str | None) -> FakeCompute:
        return self.computes.setdefault((provider, region), FakeCompute(location=f"{provider} {region}"))

    def dns(self, provider: str) -> FakeDns:
        return self.dns_

    def notifier(self, channel: str) -> FakeNotifier:
        return self.notify


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)
