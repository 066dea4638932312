"""immutable_days on S3 (moto, in-process): plan refuses a bucket without object lock;
retention never deletes what is still locked and says what it kept."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from drorch.engine.apply import Applier
from drorch.engine.plan import build_plan
from drorch.policy import load_policy
from drorch.secrets import StaticPassword

POLICY = """apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {{name: locked}}
encryption: {{key: env:DRORCH_KEY}}
sources: [{{name: src, type: directory, path: {src}}}]
targets: [{{name: vault, url: "s3://{bucket}/repo", region: us-east-1, immutable_days: 1}}]
mirrors: [{{name: m, source: src, targets: [vault], rpo: 1h, retention: {{last: 1}}}}]
"""


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


def _policy(tmp_path: Path, bucket: str):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "ledger.csv").write_text("1,2,3\n" * 1000)
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(src=src, bucket=bucket))
    return load_policy(path)


def test_plan_refuses_a_bucket_without_object_lock(s3, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="plain")
    plan = build_plan(_policy(tmp_path, "plain"), keys=StaticPassword(b"pw"))
    assert plan.problems == ["mirror 'm' target 'vault': bucket 'plain' has no object lock, so "
                             "immutable_days cannot be enforced; create the bucket with object lock "
                             "enabled (terraform/aws does)"]


def test_retention_keeps_locked_snapshots_and_packs(s3, tmp_path: Path) -> None:
    s3.create_bucket(Bucket="vault", ObjectLockEnabledForBucket=True)
    policy = _policy(tmp_path, "vault")
    keys = StaticPassword(b"pw")
    applier = Applier(policy, keys)
    applier.apply(build_plan(policy, keys=keys))
    (tmp_path / "src" / "ledger.csv").write_text("4,5,6\n" * 1000)
    result = applier.apply(build_plan(policy, keys=keys))
    target = result.mirrors[0].targets[0]
    assert result.exit_code == 0
    assert target.forgotten == [] and target.packs_deleted == 0
    assert len(target.kept) == 1 and "immutable until" in target.kept[0]
    listed = s3.list_objects_v2(Bucket="vault", Prefix="repo/snapshots/")["Contents"]
    assert len(listed) == 2
    head = s3.head_object(Bucket="vault", Key=listed[0]["Key"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
