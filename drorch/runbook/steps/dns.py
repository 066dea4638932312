"""``dns``: point a record at the recovered service and wait until it is live.

    dns: {zone: example.com., record: www, value: "{{ outputs.vm.ip }}", ttl: 60}
    dns: {zone: example.com., record: www, value: "{{ outputs.vm.ip }}",
          set_id: dr, failover: SECONDARY}          # Route53 failover routing
    dns: {zone: Z0123456789ABC, record: www.example.com., value: 10.0.0.5, weight: 100, set_id: dr}

The record set is written with UPSERT, so running the step twice is harmless.
``value`` may list several values (a YAML list, or commas); an empty value
deletes the record set (what an undo restoring ``{{ outputs.dns.previous }}``
does when there was no record before). Outputs: ``previous`` (the values
before the change, comma-separated; undo writes them back), ``change_id``,
``fqdn``. The step returns once the change is in sync (Route53 INSYNC)
unless ``wait: false``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from drorch.policy.validation import reject
from drorch.ports.errors import StepFailed
from drorch.ports.recovery import RecordChange
from drorch.runbook.steps.base import Action, StepContext


class Dns(Action):
    KEY: ClassVar[str] = "dns"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("change_id", "fqdn", "previous", "values")

    zone: str
    record: str
    value: str | tuple[str, ...]
    type: Literal["A", "AAAA", "CNAME", "TXT"] = "A"
    # 60s: clients move to the DR site within a minute of the switch; raise it once stable.
    ttl: int = Field(default=60, ge=0, le=604800)
    provider: Literal["route53"] = "route53"
    set_id: str | None = None
    failover: Literal["PRIMARY", "SECONDARY"] | None = None
    weight: int | None = Field(default=None, ge=0, le=255)
    wait: bool = True

    @model_validator(mode="after")
    def _routing(self) -> Dns:
        if (self.failover is not None or self.weight is not None) and self.set_id is None:
            reject("failover and weighted records need set_id (an identifier unique within the "
                   "record name), e.g. set_id: dr")
        if self.failover is not None and self.weight is not None:
            reject("a record is either failover or weighted; remove failover or weight")
        return self

    def summary(self) -> str:
        routing = f" set {self.set_id}" if self.set_id else ""
        return f"{self.type} {self.fqdn} -> {','.join(self.values) or '(delete)'} ttl {self.ttl}{routing}"

    @property
    def fqdn(self) -> str:
        if self.record.endswith("."):
            return self.record
        zone = self.zone if self.zone.endswith(".") else self.zone + "."
        return f"{self.record}.{zone}" if self.record not in ("@", "") else zone

    @property
    def values(self) -> tuple[str, ...]:
        raw = (self.value,) if isinstance(self.value, str) else self.value
        return tuple(v.strip() for item in raw for v in item.split(",") if v.strip())

    def run(self, ctx: StepContext) -> dict[str, Any]:
        if "." not in self.zone and not self.record.endswith("."):
            raise StepFailed(f"zone {self.zone} is a zone ID, so record must be fully qualified "
                             f"(e.g. www.example.com.), got '{self.record}'", permanent=True)
        change = RecordChange(zone=self.zone, name=self.fqdn, type=self.type, values=self.values,
                              ttl=self.ttl, set_id=self.set_id, failover=self.failover,
                              weight=self.weight)
        dns = ctx.backends.dns(self.provider)
        previous = dns.current(change)
        change_id = dns.apply(change, ctx.deadline)
        ctx.log(f"{self.summary()}: submitted {change_id} (was {','.join(previous) or 'absent'})")
        if self.wait:
            dns.wait_in_sync(change_id, ctx.deadline)
            ctx.log(f"{change_id}: in sync")
        return {"change_id": change_id, "fqdn": self.fqdn, "previous": ",".join(previous),
                "values": ",".join(self.values)}

