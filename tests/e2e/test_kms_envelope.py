"""encryption.key: kms:aws:ARN — envelope encryption of each repository's password, on moto KMS."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from drorch.engine.apply import Applier
from drorch.engine.operations import list_snapshots, restore
from drorch.engine.plan import build_plan
from drorch.policy import load_policy
from drorch.ports.errors import SecretError
from drorch.secrets import ENVELOPE, key_source

POLICY = """apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {{name: kms}}
encryption: {{key: "kms:aws:{arn}"}}
sources: [{{name: src, type: directory, path: {src}}}]
targets: [{{name: local, url: "file://{repo}"}}]
mirrors: [{{name: m, source: src, targets: [local], rpo: 1h}}]
"""


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        yield boto3.client("kms", region_name="eu-west-1")


def _policy(tmp_path: Path, arn: str) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "data.txt").write_text("kms protected\n" * 100)
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.format(arn=arn, src=src, repo=tmp_path / "repo"))
    return path


def test_kms_wrapped_repository_round_trip(aws, tmp_path: Path) -> None:
    arn = aws.create_key()["KeyMetadata"]["Arn"]
    policy = load_policy(_policy(tmp_path, arn))
    keys = key_source(policy.encryption)
    result = Applier(policy, keys).apply(build_plan(policy, keys=keys))
    assert result.exit_code == 0
    envelope = (tmp_path / "repo" / ENVELOPE).read_text()
    assert arn in envelope and "kms protected" not in envelope
    fresh_keys = key_source(load_policy(_policy(tmp_path, arn)).encryption)
    assert len(list_snapshots(policy, fresh_keys)[0].snapshots) == 1
    restore(policy, fresh_keys, "latest", tmp_path / "out")
    assert (tmp_path / "out" / "data.txt").read_text() == "kms protected\n" * 100


def test_another_kms_key_cannot_open_the_repository(aws, tmp_path: Path) -> None:
    arn = aws.create_key()["KeyMetadata"]["Arn"]
    policy = load_policy(_policy(tmp_path, arn))
    keys = key_source(policy.encryption)
    Applier(policy, keys).apply(build_plan(policy, keys=keys))
    other = aws.create_key()["KeyMetadata"]["Arn"]
    wrong = load_policy(_policy(tmp_path, other))
    with pytest.raises(SecretError) as caught:
        list_snapshots(wrong, key_source(wrong.encryption))
    assert "cannot decrypt the repository key" in str(caught.value)
    assert caught.value.exit_code == 1
