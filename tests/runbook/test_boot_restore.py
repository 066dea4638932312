"""``launch`` for a directory mirror: the VM's user-data restores it, for real, on a namespace host.

A moto server listens on a veth address (10.201.0.1) that a network namespace
``recovery-b-vm`` — the "VM" — reaches. The launch step runs against it:
``run_instances`` gets the generated user-data and the step waits for the
boot report. The test plays cloud-init: it reads the user-data back from EC2
and runs it as root inside the namespace, with only the AWS endpoint in its
environment. The script installs drorch from a wheel of this tree into the
VM's venv (the "image" has Python and drorch's dependencies), reads the
password from an SSM SecureString, restores from S3 and reports to SSM; the
step sees the report. The restored tree must equal the source.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from drorch.engine.apply import apply_policy
from drorch.policy import load_policy
from drorch.runbook import RunOptions, run_runbook

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2"),
]

NS, LINK, CLOUD_IP, VM_IP = "recovery-b-vm", "recb-vm0", "10.201.0.1", "10.201.0.2"
REPO = Path(__file__).resolve().parents[2]
SECRET = "/drorch/test/key"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def vm_host():
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    subprocess.run(["ip", "link", "del", LINK], capture_output=True)
    _ip("netns", "add", NS)
    try:
        _ip("link", "add", LINK, "type", "veth", "peer", "name", "eth0", "netns", NS)
        _ip("addr", "add", f"{CLOUD_IP}/24", "dev", LINK)
        _ip("link", "set", LINK, "up")
        _ip("-n", NS, "addr", "add", f"{VM_IP}/24", "dev", "eth0")
        _ip("-n", NS, "link", "set", "eth0", "up")
        _ip("-n", NS, "link", "set", "lo", "up")
        yield NS
    finally:
        subprocess.run(["ip", "link", "del", LINK], capture_output=True)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)


@pytest.fixture(scope="module")
def cloud(vm_host):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=CLOUD_IP, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "-w", str(out), str(REPO)], check=True, capture_output=True, timeout=300)
    [built] = out.glob("drorch-*.whl")
    return built


@pytest.fixture
def aws(cloud, monkeypatch):
    for key, value in {"AWS_ENDPOINT_URL": cloud, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(key, value)
    import boto3

    return boto3.Session(region_name="eu-west-1")


def _policy(tmp_path: Path, source: Path, cloud: str, wheel: Path, restore_to: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(f"""\
        apiVersion: drorch/v1
        kind: MirrorPolicy
        metadata: {{name: boot}}
        encryption: {{key: env:DRORCH_KEY}}
        sources: [{{name: data, type: directory, path: {source}}}]
        targets:
          - {{name: s3-dr, url: s3://boot-dr/web, region: eu-west-1, endpoint: "{cloud}"}}
        mirrors: [{{name: web, source: data, targets: [s3-dr], rpo: 1h}}]
        recovery:
          - name: web-vm
            provider: aws
            from: web
            instance: {{type: t3.small, image: IMAGE, subnet: SUBNET, region: eu-west-1}}
            restore:
              path: {restore_to}
              key: ssm:{SECRET}
              install: [--no-index, --no-deps, --force-reinstall, "{wheel}"]
            rto: 30m
        """))
    return path


def _image_and_subnet(session) -> tuple[str, str]:
    ec2 = session.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    return image, subnet


def _vm_image(root: Path) -> Path:
    """The VM's venv, as a base image would have it: Python plus drorch's dependencies, no drorch."""
    venv = root / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    [site] = venv.glob("lib/python*/site-packages")
    [deps] = Path(sys.prefix).glob("lib/python*/site-packages")
    (site / "image-dependencies.pth").write_text(f"{deps}\n")
    return venv


def _play_cloud_init(session, token_prefix: str, boot_dir: Path, cloud: str) -> subprocess.CompletedProcess:
    """Wait for the instance, read its user-data back from EC2, run it on the namespace host."""
    ec2 = session.client("ec2")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                 if any(t["Key"] == "drorch:token" and t["Value"].startswith(token_prefix)
                        for t in i.get("Tags", []))]
        if found:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the launch step started no instance")
    attr = ec2.describe_instance_attribute(InstanceId=found[0]["InstanceId"], Attribute="userData")
    script = base64.b64decode(attr["UserData"]["Value"]).decode()
    (boot_dir / "user-data").write_text(script)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(boot_dir), "DRORCH_BOOT_DIR": str(boot_dir),
           "AWS_ENDPOINT_URL": cloud, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return subprocess.run(["ip", "netns", "exec", NS, "bash", str(boot_dir / "user-data")], env=env,
                          capture_output=True, text=True, timeout=300)


def test_directory_mirror_restored_by_the_vm(tmp_path, dataset, aws, cloud, wheel, drorch_key,
                                            monkeypatch, assert_same_tree):
    monkeypatch.setenv("DRORCH_KEY", drorch_key)
    session = aws
    session.client("s3").create_bucket(Bucket="boot-dr",
                                       CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    session.client("ssm").put_parameter(Name=SECRET, Value=drorch_key, Type="SecureString", Overwrite=True)
    restore_to = tmp_path / "vm" / "srv" / "www"
    policy_file = _policy(tmp_path, dataset, cloud, wheel, restore_to)
    image, subnet = _image_and_subnet(session)
    policy_file.write_text(policy_file.read_text().replace("IMAGE", image).replace("SUBNET", subnet))
    applied = apply_policy(load_policy(policy_file))
    snapshot = applied.mirrors[0].targets[0].snapshot
    runbook = tmp_path / "failover.yaml"
    runbook.write_text("apiVersion: drorch/v1\nkind: Runbook\nmetadata: {name: boot}\n"
                       "steps:\n  - name: vm\n    launch: {recovery: web-vm}\n    timeout: 5m\n")
    boot_dir = tmp_path / "vm" / "boot"
    boot_dir.mkdir(parents=True)
    _vm_image(boot_dir)

    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(run=run_runbook(
        runbook, policy_path=policy_file, options=RunOptions(yes=True))))
    thread.start()
    booted = _play_cloud_init(session, "drorch-", boot_dir, cloud)
    thread.join(120)
    assert booted.returncode == 0, booted.stdout + booted.stderr
    run = result["run"]
    assert run.status == "succeeded", run.error
    assert run.steps[0].outputs["snapshot_id"] == snapshot
    assert_same_tree(dataset, restore_to)
    script = (boot_dir / "user-data").read_text()
    assert drorch_key not in script  # the password came from SSM, never with the user-data
    assert not (boot_dir / "key").exists()  # and did not stay on the VM's disk
