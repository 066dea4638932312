"""The seams between runbook steps and the outside world: compute, DNS, notify, probes.

Adapters live in ``drorch.providers`` (``aws_compute``, ``aws_dns``,
``aws_notify``, ``libcloud_compute``, ``webhook``) and import their SDK inside
themselves only. Steps reach them through ``Backends``, so tests and
``drorch test --mock aws`` swap in fakes or emulators without touching a step.

Contracts every adapter keeps:

- Methods finish before ``deadline`` or raise ``StepTimedOut``; they poll with
  ``deadline.sleep`` and never block longer than ``deadline.remaining()``.
- Failures raise ``StepFailed``: ``permanent=True`` when retrying cannot help
  (permission denied, quota exceeded, no such image or zone), so the engine does
  not spend the RTO retrying them; each message names the resource and the fix.
- ``Compute.launch`` is idempotent per ``LaunchSpec.token``: called again with the
  same token (a retry, or ``runbook resume`` after a crash) it returns the machine
  the first call made instead of starting a second one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from drorch.ports.deadline import Deadline

__all__ = [
    "Backends",
    "Compute",
    "Dns",
    "LaunchSpec",
    "Machine",
    "Notifier",
    "ProbeResult",
    "Prober",
    "RecordChange",
]


@dataclass(frozen=True)
class LaunchSpec:
    """A VM to start for a recovery. ``image``/``subnet``/groups are IDs or names."""

    name: str
    token: str  # idempotency key: the same token never starts a second machine
    instance_type: str
    image: str
    subnet: str | None = None
    security_groups: tuple[str, ...] = ()
    key_name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    mirror: str | None = None  # whose latest data snapshot to attach (snapshot="latest")
    snapshot: str = "latest"  # "latest", "none", or a provider snapshot ID
    snapshot_region: str | None = None  # copy the snapshot from here into the DR region first
    device: str = "/dev/sdf"


@dataclass(frozen=True)
class Machine:
    """A VM as the provider reports it."""

    id: str
    state: str
    private_ip: str | None = None
    public_ip: str | None = None
    image_id: str | None = None
    snapshot_id: str | None = None

    @property
    def ip(self) -> str:
        """The address clients reach: the public one when there is one."""
        return self.public_ip or self.private_ip or ""


class Compute(Protocol):
    """Start, stop and remove VMs in one provider and region."""

    @property
    def location(self) -> str:
        """Provider and region, for messages (``aws eu-west-1``)."""
        ...

    def launch(self, spec: LaunchSpec, deadline: Deadline) -> Machine:
        """Start a VM and return it once running (idempotent per ``spec.token``)."""
        ...

    def stop(self, machine_id: str, deadline: Deadline) -> Machine:
        """Stop a VM and return it once stopped; stopping a stopped VM is not an error."""
        ...

    def terminate(self, machine_id: str, deadline: Deadline) -> Machine:
        """Remove a VM; removing one that is already gone is not an error."""
        ...


@dataclass(frozen=True)
class RecordChange:
    """One DNS record set to write. An empty ``values`` deletes the record set."""

    zone: str  # zone name (example.com.) or provider zone ID
    name: str  # fully qualified, with the trailing dot
    type: str
    values: tuple[str, ...]
    ttl: int
    set_id: str | None = None
    failover: str | None = None  # PRIMARY | SECONDARY
    weight: int | None = None


class Dns(Protocol):
    """Read and switch DNS records."""

    def current(self, change: RecordChange) -> tuple[str, ...]:
        """Values the record set (same name, type and set ID) has now; () if none."""
        ...

    def apply(self, change: RecordChange, deadline: Deadline) -> str:
        """Write (UPSERT) or delete the record set; returns the provider's change ID."""
        ...

    def wait_in_sync(self, change_id: str, deadline: Deadline) -> None:
        """Return once the change is live on every name server."""
        ...


class Notifier(Protocol):
    """Send a message to people (SNS topic, webhook)."""

    def publish(self, to: str, message: str, subject: str | None, deadline: Deadline) -> str:
        """Deliver ``message``; returns the provider's message ID (or HTTP status)."""
        ...


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str  # "HTTP 200", "connection refused", ...


class Prober(Protocol):
    """Health probes for ``wait`` steps; one call is one probe, no retrying inside."""

    def http(self, url: str, expect: int, timeout: float) -> ProbeResult: ...

    def tcp(self, host: str, port: int, timeout: float) -> ProbeResult: ...


class Backends(Protocol):
    """Where steps get their adapters (``backends.py`` has the real registry)."""

    @property
    def prober(self) -> Prober: ...

    def compute(self, provider: str, region: str | None) -> Compute: ...

    def dns(self, provider: str) -> Dns: ...

    def notifier(self, channel: str) -> Notifier: ...
