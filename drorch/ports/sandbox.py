"""What a drill needs from a cloud besides ``Compute``: an isolated network and a sweep by tag.

A sandboxed drill launches its VMs into a network it creates for itself
(on AWS: a VPC with no internet gateway, NAT or peering, and a security group
that admits only the VPC's own range), so a rehearsal can neither take
production traffic nor reach production systems. Every resource it creates
carries the drill's tags (``SANDBOX_TAG``, ``drorch:drill=ID``,
``drorch:drill-policy=POLICY``); cleanup and the leftover sweep find them by
those tags alone, so what a killed drill left behind is found even though no
local record of it survived.

Implementations: ``aws`` built in (``drorch.providers.aws_sandbox``, registry
name ``sandbox:aws``); others through ``drorch.registry``. A
provider without one cannot run sandboxed drills: drorch refuses rather than
launching a rehearsal into a production network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from drorch.ports.deadline import Deadline

__all__ = ["DRILL_TAG", "POLICY_TAG", "SANDBOX_TAG", "Leftover", "SandboxCloud", "SandboxNetwork"]

SANDBOX_TAG = "drorch:sandbox"
DRILL_TAG = "drorch:drill"
POLICY_TAG = "drorch:drill-policy"


@dataclass(frozen=True)
class SandboxNetwork:
    """Where sandboxed VMs go: provider IDs of the subnet and security groups."""

    subnet: str
    security_groups: tuple[str, ...]
    created: tuple[str, ...] = ()  # "vpc vpc-0abc", ... for the report


@dataclass(frozen=True)
class Leftover:
    """One tagged resource of a drill, as the provider lists it."""

    kind: str  # instance, snapshot, security-group, subnet, network
    id: str
    drill_id: str
    location: str

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.location}, drill {self.drill_id})"


class SandboxCloud(Protocol):
    @property
    def location(self) -> str: ...

    def isolated_network(self, drill_id: str, tags: Mapping[str, str], deadline: Deadline
                         ) -> SandboxNetwork:
        """Create (or find, for the same ``drill_id``) the drill's isolated network."""
        ...

    def leftovers(self, tags: Mapping[str, str]) -> list[Leftover]:
        """Every live resource carrying all of ``tags``."""
        ...

    def remove(self, items: list[Leftover], deadline: Deadline) -> tuple[list[str], list[str]]:
        """Remove ``items`` in dependency order; returns (removed, errors), never raises."""
        ...

    def adopt(self, resource_id: str, tags: Mapping[str, str]) -> None:
        """Tag a resource the drill caused indirectly (a snapshot copy) so cleanup finds it."""
        ...

    def snapshot_time(self, snapshot_id: str) -> float | None:
        """When the provider snapshot was taken (epoch seconds), for the drill's RPO."""
        ...
