"""Sandbox mode: the runbook runs for real, but only against what the drill creates.

``SandboxBackends`` wraps the real adapters the engine uses:

- compute: launches get sandbox names (``drill-ID-…``) and tags and go into
  the drill's isolated network (``cloud.py``), never the recovery's subnet;
  ``stop``/``terminate`` act only on machines this drill launched, so a
  ``fence`` of the primary is recorded and skipped;
- DNS: never called, not even read; a ``dns`` step's change is recorded and
  its outputs are made up (``previous`` empty), so production DNS is
  untouched and later steps still resolve their templates;
- notify: recorded, not sent (a rehearsal does not page anyone);
- probes: real (they are how the drill proves anything).

``restore`` and ``reverse`` steps write into the drill's scratch directory
(the engine's sandbox option). A ``fence`` that runs a script, which drorch
cannot confine, is skipped. A runbook that declares a ``drill`` variable gets
``drill=true``, so its own ``script`` steps can stay away from production
with ``when: "{{ vars.drill }} != true"``.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from drorch import registry
from drorch.ports.deadline import Deadline
from drorch.ports.errors import StepFailed
from drorch.ports.recovery import (
    Backends,
    Compute,
    Dns,
    LaunchSpec,
    Machine,
    Notifier,
    Prober,
    RecordChange,
)
from drorch.ports.sandbox import DRILL_TAG, POLICY_TAG, SANDBOX_TAG, SandboxCloud
from drorch.runbook.model import Runbook

__all__ = ["SandboxBackends", "sandbox_runbook"]


class SandboxBackends:
    """Real probes; compute, DNS and notify confined to the drill (module docstring)."""

    def __init__(self, inner: Backends, *, drill_id: str, policy: str, drill: str,
                 cloud_options: dict[str, Any] | None = None) -> None:
        self.inner = inner
        self.drill_id = drill_id
        self.tags = {SANDBOX_TAG: "true", DRILL_TAG: drill_id, POLICY_TAG: policy, "drorch:drill-name": drill}
        self.cloud_options = cloud_options or {}
        self.notes: list[str] = []
        self.launched: list[tuple[str, str | None, Machine]] = []  # provider, region, machine
        self._clouds: dict[tuple[str, str | None], SandboxCloud | None] = {}
        self._compute: dict[tuple[str, str | None], SandboxCompute] = {}
        self._lock = threading.Lock()

    def note(self, line: str) -> None:
        with self._lock:
            self.notes.append(line)

    @property
    def prober(self) -> Prober:
        return self.inner.prober

    def cloud(self, provider: str, region: str | None) -> SandboxCloud | None:
        key = (provider, region)
        if key not in self._clouds:
            self._clouds[key] = _open_sandbox_cloud(provider, region, **self.cloud_options)
        return self._clouds[key]

    def used_clouds(self) -> list[SandboxCloud]:
        return [c for c in self._clouds.values() if c is not None]

    def compute(self, provider: str, region: str | None) -> Compute:
        key = (provider, region)
        if key not in self._compute:
            self._compute[key] = SandboxCompute(self, provider, region, self.inner.compute(provider, region))
        return self._compute[key]

    def dns(self, provider: str) -> Dns:
        return _RecordedDns(self, provider)

    def notifier(self, channel: str) -> Notifier:
        return _RecordedNotifier(self, channel)


class SandboxCompute:
    def __init__(self, owner: SandboxBackends, provider: str, region: str | None, inner: Compute) -> None:
        self.owner, self.provider, self.region, self.inner = owner, provider, region, inner
        self.created: set[str] = set()

    @property
    def location(self) -> str:
        return f"{self.inner.location} (drill sandbox)"

    def launch(self, spec: LaunchSpec, deadline: Deadline) -> Machine:
        cloud = self.owner.cloud(self.provider, self.region)
        if cloud is None:
            raise StepFailed(f"provider {self.provider} has no isolated sandbox network in drorch, so a "
                             "sandboxed drill cannot launch there", permanent=True,
                             hint="run this drill on a provider with sandbox support (aws) or set "
                                  "sandbox: false to rehearse in the DR network itself")
        network = cloud.isolated_network(self.owner.drill_id, self.owner.tags, deadline)
        for created in network.created:
            self.owner.note(f"isolated network: created {created} in {cloud.location}")
        sandboxed = dataclasses.replace(
            spec, name=f"drill-{self.owner.drill_id}-{spec.name}"[:128],
            tags={**spec.tags, **self.owner.tags}, subnet=network.subnet,
            security_groups=network.security_groups)
        machine = self.inner.launch(sandboxed, deadline)
        self.created.add(machine.id)
        self.owner.launched.append((self.provider, self.region, machine))
        copied = spec.snapshot_region not in (None, self.region) and machine.snapshot_id
        if copied and machine.snapshot_id:
            cloud.adopt(machine.snapshot_id, self.owner.tags)
        self.owner.note(f"launched {machine.id} as {sandboxed.name} in the isolated network "
                        f"(not {spec.subnet or 'the default subnet'})")
        return machine

    def _untouched(self, machine_id: str, what: str) -> Machine:
        self.owner.note(f"{what} {machine_id}: skipped, a drill never touches machines it did not launch")
        return Machine(machine_id, "untouched (drill sandbox)")

    def stop(self, machine_id: str, deadline: Deadline) -> Machine:
        if machine_id not in self.created:
            return self._untouched(machine_id, "stop")
        return self.inner.stop(machine_id, deadline)

    def terminate(self, machine_id: str, deadline: Deadline) -> Machine:
        if machine_id not in self.created:
            return self._untouched(machine_id, "terminate")
        return self.inner.terminate(machine_id, deadline)


class _RecordedDns:
    def __init__(self, owner: SandboxBackends, provider: str) -> None:
        self.owner, self.provider = owner, provider

    def current(self, change: RecordChange) -> tuple[str, ...]:
        return ()

    def apply(self, change: RecordChange, deadline: Deadline) -> str:
        values = ",".join(change.values) or "(delete)"
        self.owner.note(f"dns {change.type} {change.name} -> {values}: recorded, production DNS "
                        f"({self.provider}) untouched")
        return f"drill-{self.owner.drill_id}"

    def wait_in_sync(self, change_id: str, deadline: Deadline) -> None:
        return None


class _RecordedNotifier:
    def __init__(self, owner: SandboxBackends, channel: str) -> None:
        self.owner, self.channel = owner, channel

    def publish(self, to: str, message: str, subject: str | None, deadline: Deadline) -> str:
        self.owner.note(f"notify {self.channel} {to}: not sent during a drill ({message[:80]!r})")
        return "not-sent (drill)"


def sandbox_runbook(runbook: Runbook) -> tuple[Runbook, list[str]]:
    """The runbook as a drill runs it: script fences skipped (see the module docstring)."""
    notes = []
    steps = []
    for step in runbook.steps:
        if step.fence is not None and step.fence.script is not None:
            steps.append(step.model_copy(update={"when": False}))
            notes.append(f"step {step.name}: fence script skipped, a drill never touches the primary")
        else:
            steps.append(step)
    return runbook.model_copy(update={"steps": tuple(steps)}), notes


def _open_sandbox_cloud(provider: str, region: str | None, **options: Any) -> SandboxCloud | None:
    """The provider's sandbox support (registry ``sandbox:NAME``), or None when it has none."""
    name = provider.partition(":")[0]
    if not registry.has("sandbox", name):
        return None
    return registry.load("sandbox", name)(region=region, **options)  # type: ignore[no-any-return]
