"""The AWS side of sandboxed drills: an isolated VPC per drill, and removal by tag.

Isolation: a VPC of its own (``10.213.0.0/16``) with one subnet and no
internet gateway, NAT gateway, peering or VPN, so nothing in it can reach
production or be reached from the internet; its security group admits only
the VPC's own range and sends nothing outside it. Everything is tagged with
the drill's tags, so ``leftovers`` finds it by tag after any crash.

Removal order: instances (waited until terminated, which also deletes their
volumes), snapshot copies, security groups, subnets, then the VPC.
The SDK is imported here only, with the other AWS adapters; the drill core
(``drorch.drill``) stays cloud-free and loads this module by name
(``drorch.ports.sandbox``). Every boto3 call here is an IAM action of the
Terraform module's **drill** policy (terraform/aws/iam.tf), which
tests/terraform/test_aws_iam.py keeps exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3

from drorch.ports.deadline import Deadline
from drorch.ports.sandbox import DRILL_TAG, Leftover, SandboxNetwork
from drorch.providers.aws_common import client, make_session, region_of

__all__ = ["AwsSandbox", "open_sandbox"]

_CIDR = "10.213.0.0/16"
_SUBNET = "10.213.1.0/24"
_LIVE = ["pending", "running", "stopping", "stopped", "shutting-down"]
_ORDER = ("instance", "snapshot", "security-group", "subnet", "network")


def open_sandbox(region: str | None = None, *, session: boto3.Session | None = None,
                 **_: Any) -> AwsSandbox:
    session = make_session(session, region)
    return AwsSandbox(session, region_of(session, region))


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _spec(kind: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": _tag_list(tags)}]


class AwsSandbox:
    def __init__(self, session: boto3.Session, region: str) -> None:
        self.region = region
        self.ec2 = client(session, "ec2", region)

    @property
    def location(self) -> str:
        return f"aws {self.region}"

    def isolated_network(self, drill_id: str, tags: Mapping[str, str], deadline: Deadline
                         ) -> SandboxNetwork:
        found = self.leftovers({DRILL_TAG: drill_id})
        ids = {item.kind: item.id for item in found}
        if {"network", "subnet", "security-group"} <= set(ids):
            return SandboxNetwork(ids["subnet"], (ids["security-group"],))
        named = {**tags, "Name": f"drorch-drill-{drill_id}"}
        vpc = self.ec2.create_vpc(CidrBlock=_CIDR, TagSpecifications=_spec("vpc", named))["Vpc"]["VpcId"]
        subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock=_SUBNET,
                                        TagSpecifications=_spec("subnet", named))["Subnet"]["SubnetId"]
        group = self.ec2.create_security_group(
            GroupName=f"drorch-drill-{drill_id}", VpcId=vpc, TagSpecifications=_spec("security-group", named),
            Description="drorch drill sandbox: traffic only within the sandbox VPC")["GroupId"]
        inside = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": _CIDR}]}]
        self.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=inside)
        self.ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        self.ec2.authorize_security_group_egress(GroupId=group, IpPermissions=inside)
        return SandboxNetwork(subnet, (group,), (f"vpc {vpc}", f"subnet {subnet}", f"security group {group}"))

    def leftovers(self, tags: Mapping[str, str]) -> list[Leftover]:
        filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]
        out: list[Leftover] = []
        reply = self.ec2.describe_instances(
            Filters=[*filters, {"Name": "instance-state-name", "Values": _LIVE}])
        for reservation in reply["Reservations"]:
            out += [self._item("instance", i["InstanceId"], i.get("Tags")) for i in reservation["Instances"]]
        for snap in self.ec2.describe_snapshots(OwnerIds=["self"], Filters=filters)["Snapshots"]:
            out.append(self._item("snapshot", snap["SnapshotId"], snap.get("Tags")))
        for group in self.ec2.describe_security_groups(Filters=filters)["SecurityGroups"]:
            out.append(self._item("security-group", group["GroupId"], group.get("Tags")))
        for subnet in self.ec2.describe_subnets(Filters=filters)["Subnets"]:
            out.append(self._item("subnet", subnet["SubnetId"], subnet.get("Tags")))
        for vpc in self.ec2.describe_vpcs(Filters=filters)["Vpcs"]:
            out.append(self._item("network", vpc["VpcId"], vpc.get("Tags")))
        return out

    def _item(self, kind: str, resource_id: str, tags: list[dict[str, str]] | None) -> Leftover:
        drill = next((t["Value"] for t in tags or [] if t["Key"] == DRILL_TAG), "?")
        return Leftover(kind, resource_id, drill, self.location)

    def remove(self, items: list[Leftover], deadline: Deadline) -> tuple[list[str], list[str]]:
        removed: list[str] = []
        errors: list[str] = []
        for kind in _ORDER:
            batch = [i for i in items if i.kind == kind]
            if not batch:
                continue
            if kind == "instance":
                self._terminate([i.id for i in batch], deadline, removed, errors)
                continue
            for item in batch:
                try:
                    self._delete(item)
                    removed.append(f"{item.kind} {item.id}")
                except Exception as err:  # noqa: BLE001 - reported, the rest still goes
                    errors.append(f"could not remove {item}: {err}")
        return removed, errors

    def _terminate(self, ids: list[str], deadline: Deadline, removed: list[str], errors: list[str]) -> None:
        try:
            self.ec2.terminate_instances(InstanceIds=ids)
            pending = set(ids)
            while pending and not deadline.expired:
                reply = self.ec2.describe_instances(InstanceIds=sorted(pending))
                states = {i["InstanceId"]: i["State"]["Name"]
                          for r in reply["Reservations"] for i in r["Instances"]}
                pending = {i for i, state in states.items() if state != "terminated"}
                if pending:
                    deadline.sleep(2.0)
            removed += [f"instance {i}" for i in ids if i not in pending]
            errors += [f"instance {i} was still shutting down at the cleanup deadline" for i in pending]
        except Exception as err:  # noqa: BLE001
            errors.append(f"could not terminate instances {', '.join(ids)} in {self.location}: {err}")

    def _delete(self, item: Leftover) -> None:
        if item.kind == "snapshot":
            self.ec2.delete_snapshot(SnapshotId=item.id)
        elif item.kind == "security-group":
            self.ec2.delete_security_group(GroupId=item.id)
        elif item.kind == "subnet":
            self.ec2.delete_subnet(SubnetId=item.id)
        elif item.kind == "network":
            self.ec2.delete_vpc(VpcId=item.id)

    def adopt(self, resource_id: str, tags: Mapping[str, str]) -> None:
        self.ec2.create_tags(Resources=[resource_id], Tags=_tag_list(tags))

    def snapshot_time(self, snapshot_id: str) -> float | None:
        try:
            reply = self.ec2.describe_snapshots(SnapshotIds=[snapshot_id])
        except Exception:  # noqa: BLE001 - no time is reported as an unknown RPO, not a failure
            return None
        found = reply["Snapshots"]
        return float(found[0]["StartTime"].timestamp()) if found else None
