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

from support import cloud_targets as targets

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


# ----------------------------------------------------------------------------- on the moto server
# Issue 16: every lock file written on apply, restore and verify (and on each refresh) was
# stored under COMPLIANCE retention, so undeletable versions piled up. Locks are never immutable.


moto_server_fixture = targets.moto_server_fixture


def _immutable_policy(e2e, tmp_path: Path, source: Path, target) -> Path:  # type: ignore[no-untyped-def]
    from ruamel.yaml import YAML

    path = targets.write_policy(e2e, tmp_path, source, target, retention={"last": 1})
    yaml = YAML(typ="safe", pure=True)
    doc = yaml.load(path.read_text())
    doc["targets"][0]["immutable_days"] = 1
    with open(path, "w") as fh:
        yaml.dump(doc, fh)
    return path


@pytest.mark.slow
def test_lock_files_are_never_kept_under_object_lock(moto_server, tmp_path, dataset, drorch_env, e2e):
    target = targets.s3_target(moto_server, create=False)
    s3 = moto_server.client()
    s3.create_bucket(Bucket=target.bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=target.bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})  # as terraform/aws sets
    env = drorch_env | target.env
    policy = _immutable_policy(e2e, tmp_path, dataset, target)
    e2e.apply_ok(policy, env)
    for command in (["restore", "latest", "--to", tmp_path / "out", "--quiet"], ["verify"]):
        proc = e2e.run_drorch(command[0], policy, *command[1:], env=env)
        assert proc.returncode == 0, e2e.describe(proc)
    (dataset / "changed.txt").write_text("a second snapshot\n")
    e2e.apply_ok(policy, env)

    versions = s3.list_object_versions(Bucket=target.bucket, Prefix="repo/locks/").get("Versions", [])
    assert len(versions) >= 4, "apply, restore, verify and apply each wrote a lock file"
    for version in versions:
        head = s3.head_object(Bucket=target.bucket, Key=version["Key"], VersionId=version["VersionId"])
        assert head.get("ObjectLockMode") != "COMPLIANCE", head
        held = head["ObjectLockRetainUntilDate"] - head["LastModified"]
        assert held.total_seconds() < 60, f"a lock file is retained for {held}"
    listed = s3.list_objects_v2(Bucket=target.bucket, Prefix="repo/locks/").get("Contents", [])
    assert listed == [], "lock files were left behind"
    [snapshot] = s3.list_objects_v2(Bucket=target.bucket, Prefix="repo/snapshots/")["Contents"][:1]
    assert s3.head_object(Bucket=target.bucket, Key=snapshot["Key"])["ObjectLockMode"] == "COMPLIANCE"
