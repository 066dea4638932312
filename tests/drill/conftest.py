"""Drill fixtures: a policy with data, a restore + launch runbook, a moto server that outlives drills.

Drills run against a moto *server* (not in-process moto) so that tests can
look at what a drill left in the account after it ended, or after it was
killed. The account is reset before each test.
"""

from __future__ import annotations

import os
import textwrap
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drorch.runbook import attempts as attempts_module

from support.cloud_emulators import MotoServer, moto_server_fixture  # noqa: F401 (fixture)

KEY = "drill-test-key-0123456789"

RUNBOOK = """\
apiVersion: drorch/v1
kind: Runbook
metadata: {name: failover-web}
vars: {zone: example.com., primary: web-primary}
steps:
  - name: fence
    fence: {instance: "{{ vars.primary }}", region: eu-west-1}
  - name: data
    restore: {mirror: web, to: /srv/www}
  - name: vm
    launch: {recovery: web-vm}
    undo: {fence: {instance: "{{ outputs.vm.instance_id }}", recovery: web-vm, action: terminate}}
  - name: healthy
    wait: {http: "http://{{ outputs.vm.ip }}/health", interval: 1s}
    timeout: 3s
  - name: dns
    dns: {zone: "{{ vars.zone }}", record: www, value: "{{ outputs.vm.ip }}"}
  - name: page
    notify: {sns: "arn:aws:sns:eu-west-1:123456789012:dr", message: "failover done"}
"""

SLOW_RUNBOOK = """\
apiVersion: drorch/v1
kind: Runbook
metadata: {name: slow}
steps:
  - name: vm
    launch: {recovery: web-vm}
  - name: never
    wait: {tcp: "127.0.0.1:9", interval: 1s}
    timeout: 5m
"""

POLICY = """\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {name: shop}
encryption: {key: env:DRORCH_KEY}
sources:
  - {name: data, type: directory, path: data}
targets:
  - {name: local, url: file://repo}
mirrors:
  - {name: web, source: data, targets: [local], rpo: 1h}
recovery:
  - name: web-vm
    provider: aws
    from: web
    instance: {type: t3.small, image: web-base, subnet: dr-subnet-a, region: eu-west-1}
    rto: 30m
runbooks: {failover: failover.yaml, slow: slow.yaml}
drills:
  - name: weekly
    schedule: "0 3 * * 0"
    runbook: failover
    verify:
      - {http: "http://{{ outputs.vm.ip }}/health"}
      - {command: [test, -f, "{{ outputs.data.path }}/docs/readme.txt"]}
VERIFY_MORE
  - name: hang
    runbook: slow
    verify: [{tcp: "{{ outputs.vm.ip }}:22"}]
"""


@pytest.fixture(autouse=True)
def drill_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("DRORCH_HOME", str(home))
    monkeypatch.setenv("DRORCH_KEY", KEY)
    monkeypatch.setattr(attempts_module, "_CLEANUP_GRACE_S", 2.0)
    return home


@pytest.fixture(scope="session")
def moto_url(moto_server: MotoServer) -> str:
    return moto_server.url


@pytest.fixture
def moto(moto_url: str) -> str:
    """A freshly reset moto server."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    return moto_url


@pytest.fixture
def ec2(moto: str) -> Any:
    import boto3

    return boto3.client("ec2", region_name="eu-west-1", endpoint_url=moto, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def drill_resources(ec2: Any) -> list[str]:
    """Live resources that carry a drill's sandbox tag."""
    flt = [{"Name": "tag:drorch:sandbox", "Values": ["true"]}]
    live = ["pending", "running", "stopping", "stopped", "shutting-down"]
    reply = ec2.describe_instances(Filters=[*flt, {"Name": "instance-state-name", "Values": live}])
    found = [i["InstanceId"] for r in reply["Reservations"] for i in r["Instances"]]
    found += [v["VpcId"] for v in ec2.describe_vpcs(Filters=flt)["Vpcs"]]
    found += [s["SubnetId"] for s in ec2.describe_subnets(Filters=flt)["Subnets"]]
    found += [g["GroupId"] for g in ec2.describe_security_groups(Filters=flt)["SecurityGroups"]]
    return found


@pytest.fixture
def policy_dir(tmp_path: Path) -> Callable[..., Path]:
    """Write the policy, runbooks and data, apply the mirror once; returns the policy path."""

    def make(verify_more: str = "", runbook: str = RUNBOOK, apply: bool = True) -> Path:
        data = tmp_path / "data"
        (data / "docs").mkdir(parents=True, exist_ok=True)
        (data / "docs" / "readme.txt").write_text("hello drill\n" * 100)
        (data / "big.bin").write_bytes(os.urandom(300_000))
        (tmp_path / "failover.yaml").write_text(runbook)
        (tmp_path / "slow.yaml").write_text(SLOW_RUNBOOK)
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY.replace("VERIFY_MORE\n", textwrap.indent(verify_more, "      ")))
        if apply:
            from drorch.engine.apply import Applier
            from drorch.engine.plan import build_plan
            from drorch.policy import load_policy
            from drorch.secrets import key_source

            loaded = load_policy(policy)
            keys = key_source(loaded.encryption)
            result = Applier(loaded, keys).apply(build_plan(loaded, keys=keys))
            assert result.exit_code == 0, result
        return policy

    return make
