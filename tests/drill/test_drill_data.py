"""Drills prove the data, not the mock (SPEC §8): no snapshot, stale data and data of unknown
origin fail the drill; the RPO is the age of the repository snapshot the data came from.

The moto server holds only scaffolding the mock seeds (network, image). A data
snapshot exists there only when the test makes one: a real ``drorch export
ebs`` of a real image snapshot, or (to prove it is refused) a bare EBS
snapshot that merely carries the mirror's tag.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drorch.drill import DrillOptions, run_drill

from .conftest import drill_resources

IMAGE_POLICY = """\
apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {name: shop}
encryption: {key: env:DRORCH_KEY}
sources:
  - {name: disk, type: image, path: disk.img}
targets:
  - {name: local, url: file://repo}
mirrors:
  - {name: web, source: disk, targets: [local], rpo: RPO}
recovery:
  - name: web-vm
    provider: aws
    from: web
    instance: {type: t3.small, image: web-base, subnet: dr-subnet-a, region: eu-west-1}
    rto: 30m
runbooks: {failover: failover.yaml}
drills:
  - name: weekly
    runbook: failover
    verify: [{http: "http://{{ outputs.vm.ip }}/health"}]
"""

LAUNCH = """\
apiVersion: drorch/v1
kind: Runbook
metadata: {name: failover-web}
steps:
  - name: vm
    launch: {recovery: web-vm}
    undo: {fence: {instance: "{{ outputs.vm.instance_id }}", recovery: web-vm, action: terminate}}
"""


def _options(moto: str, **kw: Any) -> DrillOptions:
    return DrillOptions(mock="aws", mock_endpoint=moto, verify_timeout_s=5, verify_interval_s=0.2,
                        backoff_base=0.1, **kw)


def _export(policy: Path, moto: str) -> Any:
    """A real `drorch export ebs` of the mirror's newest snapshot into the moto server."""
    from drorch.engine.ebs import export_ebs
    from drorch.policy import load_policy
    from drorch.secrets import key_source
    from drorch.testing.aws import fake_aws_environment

    loaded = load_policy(policy)
    with fake_aws_environment(moto):
        return export_ebs(loaded, key_source(loaded.encryption), "web", region="eu-west-1")


@pytest.fixture
def image_policy(tmp_path: Path, apply_policy: Callable[[Path], None]) -> Callable[..., Path]:
    def make(rpo: str = "1h", apply: bool = True) -> Path:
        with open(tmp_path / "disk.img", "wb") as disk:
            disk.truncate(3 * 1024 * 1024)
            disk.seek(512 * 1024)
            disk.write(os.urandom(700_000))
        (tmp_path / "failover.yaml").write_text(LAUNCH)
        policy = tmp_path / "policy.yaml"
        policy.write_text(IMAGE_POLICY.replace("RPO", rpo))
        if apply:
            apply_policy(policy)
        return policy
    return make


def test_rpo_is_the_age_of_the_repository_snapshot_behind_the_ebs_export(
        image_policy: Callable[..., Path], moto: str, ec2: Any) -> None:
    from drorch.engine.connect import open_repository
    from drorch.policy import load_policy
    from drorch.repository.snapshot import load_snapshots
    from drorch.secrets import key_source

    policy = image_policy()
    loaded = load_policy(policy)
    [snapshot] = load_snapshots(open_repository(loaded, "local", key_source(loaded.encryption)))
    exported = _export(policy, moto)
    result = run_drill(policy, options=_options(moto))

    assert result.passed, result.reasons()
    [used] = result.snapshots
    assert (used.step, used.mirror, used.snapshot, used.source) == ("vm", "web", exported.snapshot_id,
                                                                    "provider")
    assert used.time == snapshot.time_ns / 1e9  # the repository snapshot's time, not the EBS one's
    assert result.rpo_s == pytest.approx(result.started - snapshot.time_ns / 1e9)
    assert drill_resources(ec2) == []


def test_an_ebs_snapshot_not_made_by_export_fails_the_drill(image_policy: Callable[..., Path], moto: str,
                                                            ec2: Any) -> None:
    policy = image_policy()
    volume = ec2.create_volume(Size=1, AvailabilityZone="eu-west-1a")["VolumeId"]
    ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
        {"Key": "drorch:mirror", "Value": "web"}]}])  # the mirror's tag, but no drorch:snapshot
    result = run_drill(policy, options=_options(moto))

    assert not result.passed and result.exit_code == 3
    assert any("did not come from `drorch export ebs`" in r for r in result.reasons()), result.reasons()


def test_no_snapshot_fails_the_drill_honestly(image_policy: Callable[..., Path], moto: str) -> None:
    result = run_drill(image_policy(apply=False), options=_options(moto))

    assert not result.passed and result.exit_code == 3
    reasons = " | ".join(result.reasons())
    assert "cannot read mirror web at target local: " in reasons  # no repository, so no snapshot
    assert "no completed EBS snapshot tagged drorch:mirror=web" in reasons  # the launch said so too
    assert result.rpo_s is None


def test_a_snapshot_older_than_the_rpo_fails_the_drill(image_policy: Callable[..., Path], moto: str) -> None:
    policy = image_policy(rpo="1s")
    _export(policy, moto)
    time.sleep(1.2)  # the snapshot is now older than its 1s RPO
    result = run_drill(policy, options=_options(moto))

    assert not result.passed and result.exit_code == 3
    stale = "the newest snapshot of mirror web at target local ("
    assert any(r.startswith(stale) and "over its RPO of 1s" in r for r in result.reasons()), result.reasons()


def test_instance_limit_fault_works_against_a_moto_server(image_policy: Callable[..., Path], moto: str,
                                                          ec2: Any) -> None:
    policy = image_policy()
    _export(policy, moto)
    result = run_drill(policy, options=_options(moto, faults=("instance-limit",)))

    assert result.failed_step == "vm" and "InstanceLimitExceeded" in (result.error or "")
    assert drill_resources(ec2) == []


def test_deny_fault_with_a_moto_server_is_refused(image_policy: Callable[..., Path], moto: str) -> None:
    from drorch.ports.errors import UsageError

    with pytest.raises(UsageError, match="needs in-process moto"):
        run_drill(image_policy(apply=False), options=_options(moto, faults=("deny:ec2:RunInstances",)))
