"""The engine killed mid-step against moto server: resume never launches a second VM.

``drorch runbook run`` runs in a subprocess talking to a moto server (through
``AWS_ENDPOINT_URL``), so the emulated account outlives the ``kill -9``. The
journal is then made to look as if the process died right after RunInstances
returned but before ``launch`` was journalled ``done``: resume must adopt the
instance that launch started (by its idempotency token), not start another.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from drorch.policy import load_policy
from drorch.runbook import Journal, load_runbook
from drorch.testing.aws import seed_account

from .fakes import wait_for
from support.cloud_emulators import MotoServer, moto_server_fixture  # noqa: F401 (fixture)
from support.policies import aws_dr_with_ebs_launch

ROOT = Path(__file__).resolve().parents[2]

CRASH = """\
apiVersion: drorch/v1
kind: Runbook
metadata: {name: crash}
steps:
  - name: vm
    launch: {recovery: web-vm, snapshot: none}  # the mock seeds no data snapshot
    undo: {fence: {instance: "{{ outputs.vm.instance_id }}", recovery: web-vm, action: terminate}}
  - name: ready
    wait: {command: [test, -f, FLAG], interval: 1s}
    timeout: 60s
  - name: dns
    dns: {zone: example.com., record: www, value: "{{ outputs.vm.ip }}"}
"""


@pytest.fixture
def aws_env(moto_server: MotoServer, drorch_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
            ) -> dict[str, str]:
    moto_server.reset()
    aws = {"AWS_ENDPOINT_URL": moto_server.url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
        drorch_env.pop(name, None)
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    return {**drorch_env, **aws}


def test_kill_9_under_moto_then_resume_keeps_one_vm(tmp_path: Path, aws_env: dict[str, str],
                                                    start_drorch: Callable[..., Any],
                                                    run_drorch: Callable[..., Any]):
    aws_dr_with_ebs_launch(tmp_path)  # what this test is about: moto runs no user-data
    flag = tmp_path / "flag"
    runbook_file = tmp_path / "crash.yaml"
    runbook_file.write_text(CRASH.replace("FLAG", str(flag)))
    policy = load_policy(tmp_path / "aws-dr.yaml")
    seed_account(boto3.Session(region_name="eu-west-1"), load_runbook(runbook_file, policy=policy),
                 policy, {})

    proc = start_drorch("runbook", "run", runbook_file, "--policy", tmp_path / "aws-dr.yaml", env=aws_env)
    journal = Journal(Path(aws_env["DRORCH_HOME"]) / "state.db")

    def ready_is_running() -> bool:
        if proc.poll() is not None:
            return True
        runs = journal.runs(1) if journal.path.exists() else []
        return bool(runs) and any(r.name == "ready" and r.state == "running"
                                  for r in journal.steps(runs[0].id).values())

    try:
        wait_for(ready_is_running, timeout=60)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
        proc.communicate()
    run_id = journal.runs(1)[0].id
    # as if killed between RunInstances and journalling `vm` done
    journal.step_state(run_id, "do", 0, "vm", "launch", "running")

    flag.touch()
    resumed = run_drorch("runbook", "resume", run_id, env=aws_env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    ec2 = boto3.client("ec2", region_name="eu-west-1")
    reply = ec2.describe_instances(Filters=[{"Name": "tag:drorch:run", "Values": [run_id]}])
    launched = [i for r in reply["Reservations"] for i in r["Instances"]]
    assert len(launched) == 1 and launched[0]["State"]["Name"] == "running"
    route53 = boto3.client("route53")
    zone = route53.list_hosted_zones_by_name(DNSName="example.com.")["HostedZones"][0]["Id"]
    records = route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    www = next(r for r in records if r["Name"] == "www.example.com.")
    assert www["ResourceRecords"] == [{"Value": launched[0]["PrivateIpAddress"]}]
    rows = journal.steps(run_id)
    assert rows[("do", 0)].outputs["instance_id"] == launched[0]["InstanceId"]
    assert journal.run(run_id).status == "succeeded"
