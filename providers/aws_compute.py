"""EC2 for runbooks: launch a recovery VM from a mirror's EBS snapshot, stop, terminate.

``launch`` in order:

1. Adopt: an instance tagged ``drorch:token=TOKEN`` that is not terminated is
   the one an earlier attempt (or a crashed run) started; it is returned, never
   duplicated. ``ClientToken`` gives real EC2 the same guarantee per call.
2. Resolve names: ``image``, ``subnet`` and security groups are IDs
   (``ami-``, ``subnet-``, ``sg-``) or names (AMI name, newest first; ``Name``
   tag; group name), so a policy can name resources that Terraform created.
3. Data: ``snapshot: latest`` is the newest completed EBS snapshot tagged
   ``drorch:mirror=MIRROR`` (owned by this account); with ``snapshot_region`` it
   is looked up there and copied into the DR region first (the copy is tagged
   with the token, so a retry reuses it). It is attached at ``device`` through
   ``run_instances`` block device mappings, which keep the snapshot ID
   (``register_image`` mappings are not used: emulators drop them, and the
   recovery's image already holds the OS).
4. ``run_instances`` with the recovery's type, subnet, groups, key and tags,
   then poll until ``running``; an instance that cannot reach ``running``
   before the deadline is terminated so nothing half-launched is left behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from typing import Any

import boto3

from drorch.ports.deadline import Deadline
from drorch.ports.errors import StepFailed, StepTimedOut
from drorch.ports.recovery import LaunchSpec, Machine
from drorch.providers.aws_common import client, make_session, region_of, translate

__all__ = ["AwsCompute", "open_compute"]

_POLL_S = 2.0
_LIVE = ["pending", "running", "stopping", "stopped"]


def open_compute(region: str | None = None, *, session: boto3.Session | None = None,
                 aliases: Mapping[str, str] | None = None, **_: Any) -> AwsCompute:
    session = make_session(session, region)
    return AwsCompute(session, region_of(session, region), aliases or {})


class AwsCompute:
    def __init__(self, session: boto3.Session, region: str, aliases: Mapping[str, str]) -> None:
        self.session = session
        self.region = region
        self.aliases = aliases  # name -> ID, for emulators that cannot create resources by ID
        self.ec2 = client(session, "ec2", region)

    @property
    def location(self) -> str:
        return f"aws {self.region}"

    def _call(self, doing: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Exception as err:  # noqa: BLE001 - translate() re-raises what it does not know
            raise translate(err, doing, service="ec2", where=self.region) from None

    # ----------------------------------------------------------------------- launch

    def launch(self, spec: LaunchSpec, deadline: Deadline) -> Machine:
        existing = self._by_tag("drorch:token", spec.token)
        if existing is not None:
            machine = self._until(existing["InstanceId"], "running", deadline)
            return dataclasses.replace(machine, snapshot_id=self._attached_snapshot(existing, spec.device))
        image = self._image(spec.image)
        subnet = self._subnet(spec.subnet) if spec.subnet else None
        groups = [self._group(g) for g in spec.security_groups]
        snapshot = self._snapshot(spec, deadline)
        tags = [{"Key": k, "Value": v} for k, v in {**spec.tags, "Name": spec.name,
                                                     "drorch:token": spec.token}.items()]
        request: dict[str, Any] = {
            "ImageId": image, "InstanceType": spec.instance_type, "MinCount": 1, "MaxCount": 1,
            "ClientToken": spec.token[:64],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags},
                                  {"ResourceType": "volume", "Tags": tags}],
        }
        if subnet:
            request["SubnetId"] = subnet
        if groups:
            request["SecurityGroupIds"] = groups
        if spec.key_name:
            request["KeyName"] = spec.key_name
        if snapshot:
            request["BlockDeviceMappings"] = [{"DeviceName": spec.device, "Ebs": {
                "SnapshotId": snapshot, "DeleteOnTermination": True, "VolumeType": "gp3"}}]
        doing = f"launch a {spec.instance_type} instance from {spec.image}"
        reply = self._call(doing, self.ec2.run_instances, **request)
        instance_id = reply["Instances"][0]["InstanceId"]
        try:
            machine = self._until(instance_id, "running", deadline)
        except StepFailed:
            with contextlib.suppress(Exception):
                self.ec2.terminate_instances(InstanceIds=[instance_id])
            raise
        return Machine(machine.id, machine.state, machine.private_ip, machine.public_ip, image, snapshot)

    def _attached_snapshot(self, instance: dict[str, Any], device: str) -> str | None:
        """The snapshot the volume at ``device`` was made from (for an adopted instance)."""
        volumes = [m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", [])
                   if m["DeviceName"] == device and "Ebs" in m]
        if not volumes:
            return None
        reply = self._call("look up the data volume", self.ec2.describe_volumes, VolumeIds=volumes)
        return reply["Volumes"][0].get("SnapshotId") or None

    def _resolve(self, ref: str) -> str:
        return self.aliases.get(ref, ref)

    def _image(self, ref: str) -> str:
        ref = self._resolve(ref)
        if ref.startswith("ami-"):
            found = self._describe_images(ImageIds=[ref])
        else:
            found = self._describe_images(Filters=[{"Name": "name", "Values": [ref]}])
        if not found:
            raise StepFailed(f"image (AMI) '{ref}' not found in {self.region}", permanent=True,
                             hint="check recovery.instance.image: an AMI ID or the name of an AMI "
                                  "in this region (copy it to the DR region first)")
        return str(max(found, key=lambda i: i.get("CreationDate", ""))["ImageId"])

    def _describe_images(self, **kwargs: Any) -> list[dict[str, Any]]:
        try:
            return list(self.ec2.describe_images(**kwargs)["Images"])
        except Exception as err:  # noqa: BLE001
            failure = translate(err, "look up the image", service="ec2", where=self.region)
            if "InvalidAMIID" in str(err):
                return []
            raise failure from None

    def _subnet(self, ref: str) -> str:
        ref = self._resolve(ref)
        key = "SubnetIds" if ref.startswith("subnet-") else "Filters"
        value: Any = [ref] if key == "SubnetIds" else [{"Name": "tag:Name", "Values": [ref]}]
        try:
            subnets = self.ec2.describe_subnets(**{key: value})["Subnets"]
        except Exception as err:  # noqa: BLE001
            if "InvalidSubnetID.NotFound" not in str(err):
                raise translate(err, "look up the subnet", service="ec2", where=self.region) from None
            subnets = []
        if not subnets:
            raise StepFailed(f"subnet '{ref}' not found in {self.region}", permanent=True,
                             hint="check recovery.instance.subnet: a subnet ID or its Name tag")
        return str(subnets[0]["SubnetId"])

    def _group(self, ref: str) -> str:
        ref = self._resolve(ref)
        if ref.startswith("sg-"):
            return ref
        reply = self._call("look up a security group", self.ec2.describe_security_groups,
                           Filters=[{"Name": "group-name", "Values": [ref]}])
        if not reply["SecurityGroups"]:
            raise StepFailed(f"security group '{ref}' not found in {self.region}", permanent=True,
                             hint="check recovery.instance.security_groups (IDs or group names)")
        return str(reply["SecurityGroups"][0]["GroupId"])

    def _snapshot(self, spec: LaunchSpec, deadline: Deadline) -> str | None:
        if spec.snapshot == "none":
            return None
        source_region = spec.snapshot_region or self.region
        source = self if source_region == self.region else AwsCompute(self.session, source_region,
                                                                      self.aliases)
        snapshot_id = source._find_snapshot(spec)
        if source_region == self.region:
            return snapshot_id
        return self._copy_snapshot(snapshot_id, source_region, spec.token, deadline)

    def _find_snapshot(self, spec: LaunchSpec) -> str:
        if spec.snapshot != "latest":
            reply = self._call(f"find snapshot {spec.snapshot}", self.ec2.describe_snapshots,
                               SnapshotIds=[self._resolve(spec.snapshot)])
            return str(reply["Snapshots"][0]["SnapshotId"])
        reply = self._call(f"find the latest snapshot of mirror {spec.mirror}", self.ec2.describe_snapshots,
                           OwnerIds=["self"], Filters=[{"Name": "tag:drorch:mirror", "Values": [spec.mirror]},
                                                       {"Name": "status", "Values": ["completed"]}])
        snapshots = reply["Snapshots"]
        if not snapshots:
            raise StepFailed(f"no completed EBS snapshot tagged drorch:mirror={spec.mirror} in {self.region}",
                             permanent=True, hint="replicate the mirror to EBS first, or set "
                                                  "snapshot: none to launch from the image alone")
        return str(max(snapshots, key=lambda s: s["StartTime"])["SnapshotId"])

    def _copy_snapshot(self, snapshot_id: str, source_region: str, token: str, deadline: Deadline) -> str:
        reply = self._call("find an earlier copy of the snapshot", self.ec2.describe_snapshots,
                           OwnerIds=["self"], Filters=[{"Name": "tag:drorch:token", "Values": [token]}])
        if reply["Snapshots"]:
            copy_id = str(reply["Snapshots"][0]["SnapshotId"])
        else:
            copy = self._call(f"copy snapshot {snapshot_id} from {source_region}", self.ec2.copy_snapshot,
                              SourceRegion=source_region, SourceSnapshotId=snapshot_id,
                              Description=f"drorch copy of {snapshot_id} from {source_region}",
                              TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
                                  {"Key": "drorch:token", "Value": token}]}])
            copy_id = str(copy["SnapshotId"])
        while True:
            state = self._call("check the snapshot copy", self.ec2.describe_snapshots,
                               SnapshotIds=[copy_id])["Snapshots"][0]["State"]
            if state == "completed":
                return copy_id
            if state == "error":
                raise StepFailed(f"copying snapshot {snapshot_id} to {self.region} failed")
            deadline.sleep(_POLL_S)
            deadline.check(f"copying snapshot {snapshot_id} to {self.region}")

    # ------------------------------------------------------------------- stop, terminate

    def _by_tag(self, key: str, value: str) -> dict[str, Any] | None:
        reply = self._call("look up instances", self.ec2.describe_instances,
                           Filters=[{"Name": f"tag:{key}", "Values": [value]},
                                    {"Name": "instance-state-name", "Values": _LIVE}])
        found = [i for r in reply["Reservations"] for i in r["Instances"]]
        return found[0] if found else None

    def _instance_id(self, ref: str) -> str | None:
        ref = self._resolve(ref)
        if ref.startswith("i-"):
            return ref
        found = self._by_tag("Name", ref)
        return str(found["InstanceId"]) if found else None

    def _describe(self, instance_id: str) -> dict[str, Any] | None:
        try:
            reply = self.ec2.describe_instances(InstanceIds=[instance_id])
        except Exception as err:  # noqa: BLE001
            if "InvalidInstanceID" in str(err):
                return None
            raise translate(err, f"look up instance {instance_id}", service="ec2",
                            where=self.region) from None
        found = [i for r in reply["Reservations"] for i in r["Instances"]]
        return found[0] if found else None

    def _until(self, instance_id: str, state: str, deadline: Deadline) -> Machine:
        while True:
            found = self._describe(instance_id)
            if found is None:
                raise StepFailed(f"instance {instance_id} not found in {self.region}", permanent=True)
            current = found["State"]["Name"]
            machine = Machine(instance_id, current, found.get("PrivateIpAddress"),
                              found.get("PublicIpAddress"), found.get("ImageId"))
            if current == state:
                return machine
            if current == "terminated" and state != "terminated":
                reason = found.get("StateReason", {}).get("Message", "no reason given")
                raise StepFailed(f"instance {instance_id} terminated while starting ({reason})",
                                 permanent=True)
            if deadline.remaining() <= 0:
                raise StepTimedOut(f"instance {instance_id} was still {current}, not {state}, "
                                   "at the deadline")
            deadline.sleep(_POLL_S)

    def stop(self, machine_id: str, deadline: Deadline) -> Machine:
        instance_id = self._instance_id(machine_id)
        if instance_id is None or self._describe(instance_id) is None:
            raise StepFailed(f"instance '{machine_id}' not found in {self.region}, so it cannot be fenced",
                             permanent=True, hint="check the instance ID or Name tag and the region")
        self._call(f"stop instance {instance_id}", self.ec2.stop_instances, InstanceIds=[instance_id])
        return self._until(instance_id, "stopped", deadline)

    def terminate(self, machine_id: str, deadline: Deadline) -> Machine:
        instance_id = self._instance_id(machine_id)
        if instance_id is None or self._describe(instance_id) is None:
            return Machine(machine_id, "terminated")  # already gone: nothing to undo
        self._call(f"terminate instance {instance_id}", self.ec2.terminate_instances,
                   InstanceIds=[instance_id])
        return self._until(instance_id, "terminated", deadline)
