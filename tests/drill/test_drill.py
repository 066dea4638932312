"""Drills end to end under moto: pass, fail, sandbox confinement, cleanup, measured RTO/RPO."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from drorch.drill import DrillHistory, DrillOptions, run_drill
from drorch.ports.errors import PolicyError, UsageError

from .conftest import drill_resources


def _options(moto: str, **kw: Any) -> DrillOptions:
    return DrillOptions(mock="aws", mock_endpoint=moto, verify_timeout_s=kw.pop("verify_timeout_s", 10),
                        verify_interval_s=0.2, backoff_base=0.1, **kw)


def test_drill_passes_measures_and_cleans_up(policy_dir: Callable[..., Path], moto: str, ec2: Any,
                                             drill_env: Path) -> None:
    result = run_drill(policy_dir(), "weekly", options=_options(moto))

    assert result.passed, result.reasons()
    assert result.exit_code == 0
    assert [c.kind for c in result.checks] == ["http", "command", "checksum"]
    assert all(c.passed for c in result.checks)
    assert "match snapshot" in result.checks[-1].detail
    assert result.rto_s is not None and 0 < result.rto_s < 60
    assert result.rto_objective_s == 1800
    # the restored data is the snapshot applied moments ago; the objective is the mirror's rpo
    assert result.rpo_s is not None and result.rpo_s < 300
    assert result.rpo_objective_s == 3600
    assert {s.source for s in result.snapshots} == {"repository", "provider"}
    # everything the drill created is gone: instance, VPC, subnet, group, scratch space
    assert drill_resources(ec2) == []
    assert any(line.startswith("instance ") for line in result.cleanup)
    assert any(line.startswith("network vpc-") for line in result.cleanup)
    assert any(line.startswith("scratch directory") for line in result.cleanup)
    assert not (drill_env / "drills" / result.drill_id).exists()
    # history: the state store keeps the result for status and reports
    [stored] = DrillHistory().recent("shop")
    assert stored.drill_id == result.drill_id and stored.passed


def test_sandbox_never_touches_production(policy_dir: Callable[..., Path], moto: str, ec2: Any) -> None:
    result = run_drill(policy_dir(), "weekly", options=_options(moto))

    assert result.passed, result.reasons()
    # the primary (seeded as a running instance named web-primary) was not fenced
    primary = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["web-primary"]}])
    [instance] = [i for r in primary["Reservations"] for i in r["Instances"]]
    assert instance["State"]["Name"] == "running"
    # production DNS got no record
    route53 = boto3.client("route53", endpoint_url=moto, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    [zone] = route53.list_hosted_zones()["HostedZones"]
    records = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    assert not [r for r in records if r["Type"] == "A"]
    notes = " | ".join(result.sandbox_notes)
    assert "web-primary: skipped" in notes
    assert "production DNS (route53) untouched" in notes
    assert "not sent during a drill" in notes
    # the VM went into the drill's own network, not the recovery's subnet
    assert "isolated network: created vpc" in notes and "(not dr-subnet-a)" in notes


def test_verify_that_never_passes_fails_the_drill(policy_dir: Callable[..., Path], moto: str,
                                                  ec2: Any) -> None:
    policy = policy_dir('- {tcp: "127.0.0.1:9"}\n')
    result = run_drill(policy, "weekly", options=_options(moto, verify_timeout_s=1.0))

    assert not result.passed and result.exit_code == 3
    [failed] = [c for c in result.checks if not c.passed]
    assert failed.name == "tcp 127.0.0.1:9"
    assert "never passed in 1s" in failed.detail
    assert any("check tcp 127.0.0.1:9 failed" in r for r in result.reasons())
    assert result.rto_s is None  # service was not proven back, so there is no recovery time
    assert drill_resources(ec2) == []


def test_failed_runbook_fails_the_drill_and_still_cleans_up(policy_dir: Callable[..., Path], moto: str,
                                                           ec2: Any) -> None:
    policy = policy_dir()
    result = run_drill(policy, "weekly", options=_options(moto, faults=("unhealthy",)))

    assert result.runbook_status == "failed" and result.failed_step == "healthy"
    assert result.exit_code == 3
    assert drill_resources(ec2) == []


def test_scheduler_shutdown_abandons_the_drill_and_cleans_up(policy_dir: Callable[..., Path], moto: str,
                                                             ec2: Any) -> None:
    cancel = threading.Event()
    seen: list[str] = []

    def report(event: str, step: str | None, detail: str) -> None:
        seen.append(event)
        if event == "attempt-failed":  # the wait on a closed port is probing: stop now
            cancel.set()

    result = run_drill(policy_dir(), "hang", report=report, options=_options(moto, cancel=cancel))

    assert result.interrupted == "scheduler shutdown"
    assert result.failed_step == "never"
    assert result.exit_code == 1
    assert drill_resources(ec2) == []


def test_verify_templates_name_runbook_steps(policy_dir: Callable[..., Path], moto: str) -> None:
    policy = policy_dir('- {http: "http://{{ outputs.web-vm.ip }}/x"}\n- {tcp: "{{ outputs.vm.host }}:22"}\n',
                        apply=False)
    with pytest.raises(PolicyError) as caught:
        run_drill(policy, "weekly", options=_options(moto))
    text = str(caught.value)
    assert "policy.yaml:" in text and "drills[0].verify[2].http" in text
    assert "'web-vm' is a recovery" in text and "{{ outputs.vm.ip }}" in text
    assert "step 'vm' (launch) has no output 'host'" in text


def test_policy_without_drills_or_runbooks(tmp_path: Path) -> None:
    from drorch.drill.runner import select_drill
    from drorch.policy import load_policy

    (tmp_path / "data").mkdir()
    path = tmp_path / "p.yaml"
    path.write_text("apiVersion: drorch/v1\nkind: MirrorPolicy\nmetadata: {name: bare}\n"
                    "encryption: {key: env:DRORCH_KEY}\nsources: [{name: d, type: directory, path: data}]\n"
                    "targets: [{name: t, url: file://repo}]\nmirrors: [{name: m, source: d, targets: [t], "
                    "rpo: 1h}]\n")
    with pytest.raises(UsageError, match="has no runbooks, so there is nothing to drill"):
        select_drill(load_policy(path), None)


def test_two_drills_need_a_name(policy_dir: Callable[..., Path]) -> None:
    from drorch.drill.runner import select_drill
    from drorch.policy import load_policy

    with pytest.raises(UsageError, match="pick one with --name"):
        select_drill(load_policy(policy_dir(apply=False)), None)
