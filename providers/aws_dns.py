"""Route53 for runbooks: read, UPSERT or delete a record set, wait until INSYNC.

Zones are given by name (``example.com.``, looked up in this account) or by
ID (``Z0123...``). Simple, failover (``failover: PRIMARY|SECONDARY``) and
weighted (``weight``) record sets are written with UPSERT, which is idempotent;
a record set with ``set_id`` is matched on its identifier, so the DR record of
a failover pair is switched without touching the primary one.
"""

from __future__ import annotations

from typing import Any

import boto3

from drorch.ports.deadline import Deadline
from drorch.ports.errors import StepFailed
from drorch.ports.recovery import RecordChange
from drorch.providers.aws_common import client, make_session, translate

__all__ = ["Route53Dns", "open_dns"]

_POLL_S = 2.0


def open_dns(*, session: boto3.Session | None = None, **_: Any) -> Route53Dns:
    return Route53Dns(make_session(session))


def _dotted(name: str) -> str:
    return name if name.endswith(".") else name + "."


class Route53Dns:
    def __init__(self, session: boto3.Session) -> None:
        self.route53 = client(session, "route53", "us-east-1")
        self._zones: dict[str, str] = {}

    def _call(self, doing: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Exception as err:  # noqa: BLE001 - translate() re-raises what it does not know
            raise translate(err, doing, service="route53") from None

    def zone_id(self, zone: str) -> str:
        if "." not in zone:
            return zone.removeprefix("/hostedzone/")
        name = _dotted(zone).lower()
        if name not in self._zones:
            reply = self._call(f"look up hosted zone {name}", self.route53.list_hosted_zones_by_name,
                               DNSName=name)
            matches = [z for z in reply["HostedZones"] if z["Name"].lower() == name]
            public = [z for z in matches if not z.get("Config", {}).get("PrivateZone")]
            if not matches:
                raise StepFailed(f"no Route53 hosted zone named {name} in this account", permanent=True,
                                 hint="create it (terraform/aws) or fix the dns step's zone")
            if len(public or matches) > 1:
                raise StepFailed(f"several Route53 hosted zones are named {name}", permanent=True,
                                 hint="give the zone ID (Z...) instead of its name")
            self._zones[name] = (public or matches)[0]["Id"].removeprefix("/hostedzone/")
        return self._zones[name]

    def _record_set(self, change: RecordChange) -> dict[str, Any] | None:
        reply = self._call(f"read {change.type} {change.name}", self.route53.list_resource_record_sets,
                           HostedZoneId=self.zone_id(change.zone), StartRecordName=change.name,
                           StartRecordType=change.type, MaxItems="100")
        for record in reply["ResourceRecordSets"]:
            if (_dotted(record["Name"]).lower() == change.name.lower() and record["Type"] == change.type
                    and record.get("SetIdentifier") == change.set_id):
                return dict(record)
        return None

    def current(self, change: RecordChange) -> tuple[str, ...]:
        record = self._record_set(change)
        if record is None:
            return ()
        return tuple(r["Value"] for r in record.get("ResourceRecords", []))

    def apply(self, change: RecordChange, deadline: Deadline) -> str:
        zone = self.zone_id(change.zone)
        if change.values:
            record: dict[str, Any] = {"Name": change.name, "Type": change.type, "TTL": change.ttl,
                                      "ResourceRecords": [{"Value": v} for v in change.values]}
            if change.set_id is not None:
                record["SetIdentifier"] = change.set_id
            if change.failover is not None:
                record["Failover"] = change.failover
            if change.weight is not None:
                record["Weight"] = change.weight
            action = "UPSERT"
        else:
            existing = self._record_set(change)
            if existing is None:
                return "none"  # nothing to delete
            record, action = existing, "DELETE"
        reply = self._call(f"{action.lower()} {change.type} {change.name}",
                           self.route53.change_resource_record_sets, HostedZoneId=zone,
                           ChangeBatch={"Comment": "drorch runbook",
                                        "Changes": [{"Action": action, "ResourceRecordSet": record}]})
        return str(reply["ChangeInfo"]["Id"]).removeprefix("/change/")

    def wait_in_sync(self, change_id: str, deadline: Deadline) -> None:
        if change_id == "none":
            return
        while True:
            reply = self._call(f"check change {change_id}", self.route53.get_change, Id=change_id)
            if reply["ChangeInfo"]["Status"] == "INSYNC":
                return
            deadline.sleep(_POLL_S)
            deadline.check(f"waiting for Route53 change {change_id} to be INSYNC")
