"""``drorch test --mock aws``: an in-process moto account seeded for one runbook, with faults.

What is seeded, per step that needs it (templates are filled with ``vars``;
values that depend on earlier outputs are created by the run itself):

- ``launch``: in the recovery's region a VPC and subnet (with the policy's
  ``Name`` tag, or standing in for a ``subnet-...`` ID), security groups, the
  key pair, the base image (an AMI with that name, or standing in for an
  ``ami-...`` ID) and a completed EBS snapshot tagged ``drorch:mirror=MIRROR``
  (in ``snapshot_region`` when the step copies across regions);
- ``dns``: a hosted zone with the step's zone name;
- ``notify`` with ``sns``: the topic of the ARN (in its region);
- ``fence`` of an instance: a running instance with that ID stand-in or Name tag.

moto cannot create resources with chosen IDs, so IDs written in the policy
(``subnet-123``) are mapped to the seeded ones (``aliases``) for the compute
adapter. VMs do not really boot, so probes of hosts other than loopback are
simulated as healthy (or refused, with the ``unhealthy`` fault); probes of
127.0.0.0/8 and localhost go to the real network, so a local stub server can
stand in for the service.

Faults: ``unhealthy`` (probes of VMs fail), ``instance-limit`` (RunInstances
answers InstanceLimitExceeded), ``ami-missing`` (the base image is not
seeded), ``zone-missing`` (hosted zones are not seeded), ``deny:SERVICE:ACTION``
(the run's IAM identity is denied that action; moto enforces IAM).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError

from drorch.ports.errors import StepFailed, UsageError
from drorch.ports.recovery import ProbeResult
from drorch.runbook.attempts import render_action
from drorch.runbook.backends import NetworkProber, RegistryBackends
from drorch.runbook.steps import find_recovery
from drorch.runbook.templating import Scope

if TYPE_CHECKING:
    from drorch.policy import Policy
    from drorch.runbook.model import Runbook

__all__ = ["FAULTS", "MockAws", "MockNetwork", "mock_aws_for", "parse_faults", "seed_account"]

FAULTS = ("unhealthy", "instance-limit", "ami-missing", "zone-missing", "deny:SERVICE:ACTION")
_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_DROP = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL",
         "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


class MockNetwork:
    """Probes for a mocked cloud: loopback for real, every other host simulated."""

    def __init__(self, healthy: bool = True) -> None:
        self.healthy = healthy
        self.real = NetworkProber()

    def _simulated(self, what: str) -> ProbeResult:
        if self.healthy:
            return ProbeResult(True, f"{what} (simulated)")
        return ProbeResult(False, "connection refused (simulated: --fault unhealthy)")

    def http(self, url: str, expect: int, timeout: float) -> ProbeResult:
        if _is_loopback(urlsplit(url).hostname or ""):
            return self.real.http(url, expect, timeout)
        return self._simulated(f"HTTP {expect}")

    def tcp(self, host: str, port: int, timeout: float) -> ProbeResult:
        if _is_loopback(host):
            return self.real.tcp(host, port, timeout)
        return self._simulated("port open")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class MockAws:
    """The seeded account: the session steps use, ID stand-ins, and what was created."""

    session: boto3.Session
    backends: RegistryBackends
    aliases: dict[str, str] = field(default_factory=dict)
    seeded: list[str] = field(default_factory=list)


def parse_faults(faults: list[str]) -> tuple[set[str], list[str]]:
    simple, denied = set(), []
    for fault in faults:
        if fault.startswith("deny:") and fault.count(":") == 2:
            denied.append(fault.removeprefix("deny:"))
        elif fault in FAULTS[:-1]:
            simple.add(fault)
        else:
            raise UsageError(f"unknown --fault '{fault}'", hint=f"use one of: {', '.join(FAULTS)}")
    return simple, denied


@contextlib.contextmanager
def fake_aws_environment(endpoint: str | None = None) -> Iterator[None]:
    """Fake credentials, no profile, and no endpoint override unless ``endpoint`` (a moto
    server) is given; the environment is restored afterwards."""
    saved = dict(os.environ)
    for name in _DROP:
        os.environ.pop(name, None)
    os.environ.update(_ENV)
    if endpoint:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def mock_aws_for(runbook: Runbook, policy: Policy | None, variables: dict[str, str],
                 faults: list[str]) -> Iterator[MockAws]:
    """moto for the duration of the block, seeded for ``runbook`` and with ``faults`` injected."""
    from moto import mock_aws
    from moto.core.authorization import enable_iam_authentication

    simple, denied = parse_faults(faults)
    with fake_aws_environment(), mock_aws():
        session = boto3.Session(region_name=os.environ["AWS_DEFAULT_REGION"])
        seeder = seed_account(session, runbook, policy, variables, simple)
        run_session = _denying_session(session, denied) if denied else boto3.Session(
            region_name=session.region_name)
        if "instance-limit" in simple:
            run_session.events.register("before-call.ec2.RunInstances", _instance_limit)
        backends = RegistryBackends(prober=MockNetwork(healthy="unhealthy" not in simple),
                                    session=run_session, aliases=seeder.aliases)
        mock = MockAws(run_session, backends, seeder.aliases, seeder.notes)
        with enable_iam_authentication() if denied else contextlib.nullcontext():
            yield mock


def seed_account(session: boto3.Session, runbook: Runbook, policy: Policy | None,
                 variables: dict[str, str], faults: set[str] | None = None) -> _Seeder:
    """Create what ``runbook`` needs in the account behind ``session`` (moto, in-process or server)."""
    seeder = _Seeder(session, faults or set())
    seeder.seed(runbook, policy, variables)
    return seeder


def _instance_limit(**_: Any) -> None:
    raise ClientError({"Error": {"Code": "InstanceLimitExceeded", "Message": "You have requested more "
                                 "instances than your current instance limit allows (simulated)"}},
                      "RunInstances")


def _denying_session(session: boto3.Session, denied: list[str]) -> boto3.Session:
    """Credentials of an IAM user allowed everything except ``denied`` (``ec2:RunInstances``)."""
    iam = session.client("iam")
    iam.create_user(UserName="drorch-test")
    document = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": denied, "Resource": "*"}]}
    iam.put_user_policy(UserName="drorch-test", PolicyName="dr", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName="drorch-test")["AccessKey"]
    return boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                         region_name=session.region_name)


class _Seeder:
    def __init__(self, session: boto3.Session, faults: set[str]) -> None:
        self.session = session
        self.faults = faults
        self.aliases: dict[str, str] = {}
        self.notes: list[str] = []
        self._subnets: dict[str, tuple[str, str]] = {}  # region -> (vpc, subnet)
        self._done: set[tuple[str, ...]] = set()

    def _once(self, *key: str) -> bool:
        if key in self._done:
            return False
        self._done.add(key)
        return True

    def seed(self, runbook: Runbook, policy: Policy | None, variables: dict[str, str]) -> None:
        scope = Scope(vars=variables, placeholders=True)
        for step in runbook.steps:
            for body in (step, step.undo):
                if body is None:
                    continue
                try:
                    action = render_action(body.action, scope)
                except StepFailed:
                    continue
                seed = getattr(self, f"_seed_{body.action_key}", None)
                if seed is not None:
                    seed(action, policy)

    def _ec2(self, region: str) -> Any:
        return self.session.client("ec2", region_name=region)

    def _network(self, region: str) -> tuple[str, str]:
        if region not in self._subnets:
            ec2 = self._ec2(region)
            vpc = ec2.create_vpc(CidrBlock="10.80.0.0/16")["Vpc"]["VpcId"]
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.80.1.0/24")["Subnet"]["SubnetId"]
            self._subnets[region] = (vpc, subnet)
            self.notes.append(f"VPC {vpc} with subnet {subnet} in {region}")
        return self._subnets[region]

    def _snapshot(self, region: str, tags: dict[str, str]) -> str:
        ec2 = self._ec2(region)
        volume = ec2.create_volume(Size=8, AvailabilityZone=f"{region}a")["VolumeId"]
        spec = [{"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        return str(ec2.create_snapshot(VolumeId=volume, TagSpecifications=spec)["SnapshotId"])

    def _seed_launch(self, action: Any, policy: Policy | None) -> None:
        if policy is None or "<" in action.recovery:
            return
        recovery = find_recovery(policy, action.recovery)
        instance = recovery.instance
        region = instance.region or self.session.region_name or "us-east-1"
        ec2 = self._ec2(region)
        vpc, subnet = self._network(region)
        if instance.subnet and self._once("subnet", region, instance.subnet):
            if instance.subnet.startswith("subnet-"):
                self.aliases[instance.subnet] = subnet
            else:
                ec2.create_tags(Resources=[subnet], Tags=[{"Key": "Name", "Value": instance.subnet}])
        for group in instance.security_groups:
            if self._once("sg", region, group):
                created = ec2.create_security_group(GroupName=group.removeprefix("sg-"),
                                                    Description="drorch test", VpcId=vpc)["GroupId"]
                if group.startswith("sg-"):
                    self.aliases[group] = created
                self.notes.append(f"security group {group} in {region}")
        if instance.key_name and self._once("key", region, instance.key_name):
            ec2.create_key_pair(KeyName=instance.key_name)
        if "ami-missing" not in self.faults and self._once("image", region, instance.image):
            root = self._snapshot(region, {"Name": f"{instance.image}-root"})
            name = instance.image if not instance.image.startswith("ami-") else "drorch-test-base"
            image = ec2.register_image(Name=name, RootDeviceName="/dev/xvda", BlockDeviceMappings=[
                {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": root}}])["ImageId"]
            if instance.image.startswith("ami-"):
                self.aliases[instance.image] = image
            self.notes.append(f"image {instance.image} ({image}) in {region}")
        data_region = action.snapshot_region or region
        if action.snapshot == "latest" and self._once("data", data_region, recovery.from_):
            snapshot = self._snapshot(data_region, {"drorch:mirror": recovery.from_})
            self.notes.append(f"EBS snapshot {snapshot} of mirror {recovery.from_} in {data_region}")
        elif action.snapshot not in ("latest", "none") and self._once("snap", action.snapshot):
            self.aliases[action.snapshot] = self._snapshot(data_region, {})

    def _seed_dns(self, action: Any, policy: Policy | None) -> None:
        if "zone-missing" in self.faults or "<" in action.zone or "." not in action.zone:
            return
        zone = action.zone if action.zone.endswith(".") else action.zone + "."
        if self._once("zone", zone):
            self.session.client("route53").create_hosted_zone(Name=zone, CallerReference=f"drorch-{zone}")
            self.notes.append(f"hosted zone {zone}")

    def _seed_notify(self, action: Any, policy: Policy | None) -> None:
        parts = (action.sns or "").split(":")
        if len(parts) == 6 and self._once("topic", action.sns):
            self.session.client("sns", region_name=parts[3]).create_topic(Name=parts[5])
            self.notes.append(f"SNS topic {parts[5]} in {parts[3]}")

    def _seed_fence(self, action: Any, policy: Policy | None) -> None:
        ref = action.instance
        if ref is None or "<" in ref or not self._once("fence", ref):
            return
        region = action.region
        if action.recovery is not None and policy is not None:
            region = region or find_recovery(policy, action.recovery).instance.region
        region = region or self.session.region_name or "us-east-1"
        ec2 = self._ec2(region)
        image = "ami-0d7e57c0ffee0000"  # moto does not check the image of run_instances
        tags = [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": ref}]}]
        created = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                    TagSpecifications=tags)["Instances"][0]["InstanceId"]
        if ref.startswith("i-"):
            self.aliases[ref] = created
        self.notes.append(f"instance {ref} ({created}) to fence, in {region}")
