"""The AWS adapters (EC2, Route53, SNS) and the webhook notifier, under in-process moto."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from drorch.ports.deadline import Deadline
from drorch.ports.errors import StepFailed
from drorch.ports.recovery import LaunchSpec, RecordChange
from drorch.providers.aws_compute import open_compute
from drorch.providers.aws_dns import open_dns
from drorch.providers.aws_notify import open_notifier
from drorch.providers.webhook import open_notifier as open_webhook

from support.cloud_emulators import in_process_aws_fixture  # noqa: F401 (fixture)

REGION = "eu-west-1"



def deadline(seconds: float = 30) -> Deadline:
    return Deadline(seconds)


def seed_site(session: boto3.Session, region: str = REGION) -> dict[str, str]:
    """VPC, subnet 'dr-a', group 'web-dr', AMI 'web-base', data snapshot of mirror 'web'."""
    ec2 = session.client("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.2.0/24", TagSpecifications=[
        {"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": "dr-a"}]}])["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="web-dr", Description="x", VpcId=vpc)["GroupId"]
    volume = ec2.create_volume(Size=8, AvailabilityZone=f"{region}a")["VolumeId"]
    root = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    image = ec2.register_image(Name="web-base", RootDeviceName="/dev/xvda", BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": root}}])["ImageId"]
    data = ec2.create_snapshot(VolumeId=volume, TagSpecifications=[
        {"ResourceType": "snapshot", "Tags": [{"Key": "drorch:mirror", "Value": "web"}]}])["SnapshotId"]
    return {"subnet": subnet, "group": group, "image": image, "data": data}


def spec(**overrides: Any) -> LaunchSpec:
    values: dict[str, Any] = {
        "name": "web-vm-r1", "token": "drorch-r1-vm", "instance_type": "t3.small", "image": "web-base",
        "subnet": "dr-a", "security_groups": ("web-dr",), "tags": {"app": "web"}, "mirror": "web"}
    values.update(overrides)
    return LaunchSpec(**values)


def instances(session: boto3.Session, region: str = REGION) -> list[dict[str, Any]]:
    reply = session.client("ec2", region_name=region).describe_instances()
    return [i for r in reply["Reservations"] for i in r["Instances"]]


# ------------------------------------------------------------------------------ compute


def test_launch_attaches_the_latest_mirror_snapshot(aws: boto3.Session):
    site = seed_site(aws)
    compute = open_compute(REGION, session=aws)
    machine = compute.launch(spec(), deadline())
    assert machine.state == "running" and machine.private_ip and machine.ip == machine.private_ip
    assert (machine.image_id, machine.snapshot_id) == (site["image"], site["data"])
    [instance] = instances(aws)
    assert instance["SubnetId"] == site["subnet"]
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [site["group"]]
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["Name"] == "web-vm-r1" and tags["app"] == "web" and tags["drorch:token"] == "drorch-r1-vm"
    volume_id = next(m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]
                     if m["DeviceName"] == "/dev/sdf")
    volume = aws.client("ec2").describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert volume["SnapshotId"] == site["data"]


def test_launch_is_idempotent_per_token(aws: boto3.Session):
    seed_site(aws)
    compute = open_compute(REGION, session=aws)
    first = compute.launch(spec(), deadline())
    again = compute.launch(spec(), deadline())
    other = compute.launch(spec(token="drorch-r2-vm"), deadline())
    assert again.id == first.id != other.id
    assert len(instances(aws)) == 2


def test_launch_copies_the_snapshot_across_regions(aws: boto3.Session):
    seed_site(aws)
    source = seed_site(aws, "eu-central-1")
    ec2 = aws.client("ec2")
    # only the source region holds the mirror's data snapshot
    for snap in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]:
        if any(t["Key"] == "drorch:mirror" for t in snap.get("Tags", [])):
            ec2.delete_snapshot(SnapshotId=snap["SnapshotId"])
    compute = open_compute(REGION, session=aws)
    machine = compute.launch(spec(snapshot_region="eu-central-1"), deadline())
    copy = ec2.describe_snapshots(SnapshotIds=[machine.snapshot_id])["Snapshots"][0]
    assert machine.snapshot_id != source["data"]
    assert copy["Description"] == f"drorch copy of {source['data']} from eu-central-1"
    assert compute.launch(spec(snapshot_region="eu-central-1"), deadline()).snapshot_id == machine.snapshot_id


@pytest.mark.parametrize(("change", "message"), [
    ({"image": "web-bass"}, "image (AMI) 'web-bass' not found in eu-west-1; check recovery.instance.image: "
                            "an AMI ID or the name of an AMI in this region (copy it to the DR region "
                            "first)"),
    ({"image": "ami-0123456789abcdef0"}, "image (AMI) 'ami-0123456789abcdef0' not found in eu-west-1; "
     "check recovery.instance.image: an AMI ID or the name of an AMI in this region (copy it to the DR "
     "region first)"),
    ({"subnet": "dr-b"}, "subnet 'dr-b' not found in eu-west-1; check recovery.instance.subnet: a subnet "
                         "ID or its Name tag"),
    ({"security_groups": ("db",)}, "security group 'db' not found in eu-west-1; check "
                                   "recovery.instance.security_groups (IDs or group names)"),
    ({"mirror": "db"}, "no completed EBS snapshot tagged drorch:mirror=db in eu-west-1; export one "
                       "with `drorch export ebs POLICY --mirror db` (image mirrors), or set snapshot: "
                       "none to launch from the image alone"),
])
def test_launch_refuses_clearly_and_permanently(aws: boto3.Session, change: dict[str, Any], message: str):
    seed_site(aws)
    with pytest.raises(StepFailed) as caught:
        open_compute(REGION, session=aws).launch(spec(**change), deadline())
    assert str(caught.value) == message
    assert caught.value.permanent
    assert instances(aws) == []


def test_stop_and_terminate(aws: boto3.Session):
    seed_site(aws)
    compute = open_compute(REGION, session=aws)
    machine = compute.launch(spec(), deadline())
    assert compute.stop("web-vm-r1", deadline()).state == "stopped"  # by Name tag
    assert compute.stop(machine.id, deadline()).state == "stopped"  # again: still fine
    assert compute.terminate(machine.id, deadline()).state == "terminated"
    assert compute.terminate("i-0123456789abcdef0", deadline()).state == "terminated"  # gone already
    with pytest.raises(StepFailed) as caught:
        compute.stop("i-0123456789abcdef0", deadline())
    assert str(caught.value) == ("instance 'i-0123456789abcdef0' not found in eu-west-1, so it cannot be "
                                 "fenced; check the instance ID or Name tag and the region")


# ---------------------------------------------------------------------------------- dns


def record(values: tuple[str, ...], **kw: Any) -> RecordChange:
    return RecordChange(zone="example.com.", name="www.example.com.", type="A", values=values, ttl=60, **kw)


def test_dns_upsert_previous_and_delete(aws: boto3.Session):
    aws.client("route53").create_hosted_zone(Name="example.com.", CallerReference="t")
    dns = open_dns(session=aws)
    assert dns.current(record(("10.0.0.1",))) == ()
    change = dns.apply(record(("10.0.0.1",)), deadline())
    dns.wait_in_sync(change, deadline())
    dns.apply(record(("10.0.0.2", "10.0.0.3")), deadline())
    assert dns.current(record(())) == ("10.0.0.2", "10.0.0.3")
    dns.apply(record(()), deadline())
    assert dns.current(record(())) == ()
    assert dns.apply(record(()), deadline()) == "none"


def test_dns_failover_records_are_matched_by_set_id(aws: boto3.Session):
    zone = aws.client("route53").create_hosted_zone(Name="example.com.", CallerReference="t")
    dns = open_dns(session=aws)
    dns.apply(record(("192.0.2.10",), set_id="primary", failover="PRIMARY"), deadline())
    dns.apply(record(("10.0.0.5",), set_id="dr", failover="SECONDARY"), deadline())
    dns.apply(record(("10.0.0.6",), set_id="dr", failover="SECONDARY"), deadline())
    assert dns.current(record((), set_id="primary")) == ("192.0.2.10",)
    assert dns.current(record((), set_id="dr")) == ("10.0.0.6",)
    zone_id = zone["HostedZone"]["Id"].split("/")[-1]
    by_id = RecordChange(zone=zone_id, name="www.example.com.", type="A", values=(), ttl=60, set_id="dr")
    assert dns.current(by_id) == ("10.0.0.6",)


def test_dns_zone_missing(aws: boto3.Session):
    with pytest.raises(StepFailed) as caught:
        open_dns(session=aws).apply(record(("10.0.0.1",)), deadline())
    assert str(caught.value) == ("no Route53 hosted zone named example.com. in this account; create it "
                                 "(terraform/aws) or fix the dns step's zone")
    assert caught.value.permanent


# ------------------------------------------------------------------------------- notify


def test_sns_publish_reaches_subscribers(aws: boto3.Session):
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name="dr")["TopicArn"]
    queue = sqs.create_queue(QueueName="pager")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    queue_arn = attributes["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    message_id = open_notifier(session=aws).publish(topic, "failover done", "DR", deadline())
    [delivered] = sqs.receive_message(QueueUrl=queue)["Messages"]
    body = json.loads(delivered["Body"])
    assert (body["Message"], body["Subject"], body["MessageId"]) == ("failover done", "DR", message_id)


def test_sns_topic_missing(aws: boto3.Session):
    with pytest.raises(StepFailed) as caught:
        open_notifier(session=aws).publish("arn:aws:sns:eu-west-1:123456789012:nope", "x", None, deadline())
    assert str(caught.value) == ("SNS topic arn:aws:sns:eu-west-1:123456789012:nope does not exist; create "
                                 "it (terraform/aws) or fix the notify step's sns ARN")


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        length = int(self.headers["Content-Length"])
        _Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(_Hook.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received, _Hook.status = [], 200
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dr"
    finally:
        server.shutdown()


def test_webhook_posts_json(hook: str):
    assert open_webhook().publish(hook, "failover done", "DR", deadline()) == "HTTP 200"
    assert _Hook.received == [{"text": "failover done", "subject": "DR", "source": "drorch"}]


@pytest.mark.parametrize(("status", "permanent"), [(500, False), (404, True), (429, False)])
def test_webhook_errors(hook: str, status: int, permanent: bool):
    _Hook.status = status
    with pytest.raises(StepFailed) as caught:
        open_webhook().publish(hook, "x", None, deadline())
    assert str(caught.value) == f"webhook {hook} answered HTTP {status}"
    assert caught.value.permanent is permanent
