"""``dns``: point a record at the recovered service and wait until it is live.

    dns: {zone: example.com., record: www, value: "{{ outputs.vm.ip }}", ttl: 60}
    dns: {zone: example.com., record: www, value: "{{ outputs.vm.ip }}",
          set_id: dr, failover: SECONDARY}          # Route53 failover routing
    dns: {zone: Z0123456789ABC, record: www.example.com., value: 10.0.0.5, weight: 100, set_id: dr}

    dns: {provider: rfc2136, server: "127.0.0.1:53", zone: example.com., record: www,
          value: "{{ outputs.vm.ip }}", ttl: 60, tsig: file:/etc/drorch/dr.key}

``provider`` is ``route53`` (the default) or ``rfc2136``: a dynamic update
(RFC 2136) sent to ``server`` (the zone's primary, ``host[:port]``), signed
with the TSIG key that ``tsig`` names: ``file:PATH`` (a BIND key file) or
``env:NAME`` (``[ALGORITHM:]KEYNAME:SECRET``). A key written inline is refused:
runbooks are shared and journalled, keys are not. Routing (``set_id``,
``failover``, ``weight``) is Route53's only.

The record set is written with UPSERT, so running the step twice is harmless.
``value`` may list several values (a YAML list, or commas); an empty value
deletes the record set (what an undo restoring ``{{ outputs.dns.previous }}``
does when there was no record before). Outputs: ``previous`` (the values
before the change, comma-separated; undo writes them back), ``change_id``,
``fqdn``. The step returns once the change is in sync (Route53 INSYNC)
unless ``wait: false``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from drorch.policy.validation import reject
from drorch.ports.errors import StepFailed
from drorch.ports.recovery import RecordChange
from drorch.runbook.steps.base import Action, StepContext, is_template

# host, host:port or [v6]:port, the port 1-65535
_SERVER = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:([1-9][0-9]{0,4}))?")


def _valid_server(server: str) -> bool:
    found = _SERVER.fullmatch(server)
    return found is not None and int(found.group(3) or 53) <= 65535


class Dns(Action):
    KEY: ClassVar[str] = "dns"
    OUTPUTS: ClassVar[tuple[str, ...]] = ("change_id", "fqdn", "previous", "values")

    zone: str
    record: str
    value: str | tuple[str, ...]
    type: Literal["A", "AAAA", "CNAME", "TXT"] = "A"
    # 60s: clients move to the DR site within a minute of the switch; raise it once stable.
    ttl: int = Field(default=60, ge=0, le=604800)
    provider: Literal["route53", "rfc2136"] = "route53"
    server: str | None = None  # rfc2136: host[:port] of the zone's primary
    tsig: str | None = None  # rfc2136: file:PATH or env:NAME of the TSIG key, never the key
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
        if self.provider == "rfc2136":
            self._check_rfc2136()
        elif self.server is not None or self.tsig is not None:
            reject("server and tsig are for provider: rfc2136; Route53 finds the zone by itself")
        return self

    def _check_rfc2136(self) -> None:
        if self.server is None:
            reject('provider rfc2136 needs server: HOST[:PORT] (the zone\'s primary), e.g. "10.0.0.53:53"')
        if self.set_id is not None or self.failover is not None or self.weight is not None:
            reject("set_id, failover and weight are Route53 routing; remove them for rfc2136")
        if not is_template(self.server) and not _valid_server(self.server):
            reject(f"invalid server '{self.server}'; use host or host:port, e.g. 127.0.0.1:53")
        if not is_template(self.zone) and "." not in self.zone:
            reject(f"zone '{self.zone}' must be the zone's name for rfc2136, e.g. example.com.")
        if self.tsig is not None and not self.tsig.startswith(("file:", "env:")):
            reject("tsig must name where the key is (file:/etc/drorch/dr.key or env:DRORCH_TSIG); "
                   "a key written in the runbook would be shared and journalled")

    def summary(self) -> str:
        routing = f" set {self.set_id}" if self.set_id else ""
        routing += f" via rfc2136 {self.server}" if self.provider == "rfc2136" else ""
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

    def change(self) -> RecordChange:
        """The record set this step writes (the preflight checks its zone)."""
        return RecordChange(zone=self.zone, name=self.fqdn, type=self.type, values=self.values,
                            ttl=self.ttl, set_id=self.set_id, failover=self.failover,
                            weight=self.weight, server=self.server, tsig=self.tsig)

    def run(self, ctx: StepContext) -> dict[str, Any]:
        if "." not in self.zone and not self.record.endswith("."):
            raise StepFailed(f"zone {self.zone} is a zone ID, so record must be fully qualified "
                             f"(e.g. www.example.com.), got '{self.record}'", permanent=True)
        change = self.change()
        dns = ctx.backends.dns(self.provider)
        previous = dns.current(change)
        change_id = dns.apply(change, ctx.deadline)
        ctx.log(f"{self.summary()}: submitted {change_id} (was {','.join(previous) or 'absent'})")
        if self.wait:
            dns.wait_in_sync(change_id, ctx.deadline)
            ctx.log(f"{change_id}: in sync")
        return {"change_id": change_id, "fqdn": self.fqdn, "previous": ",".join(previous),
                "values": ",".join(self.values)}

