"""Image snapshots to EBS snapshots with the EBS direct APIs, under in-process moto.

moto stores the blocks each snapshot was sent byte for byte but does not carry
a parent's blocks into its child and does not verify checksums (shared/
EMULATORS.md), so these tests reconstruct the volume as "parent blocks, then the
child's" and check that only changed blocks were sent; that ParentSnapshotId
was passed is checked on the request itself.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import boto3
import pytest

from drorch.engine.ebs import export_ebs
from drorch.policy import load_policy
from drorch.secrets import key_source

from support.cloud_emulators import in_process_aws_fixture  # noqa: F401 (fixture)

MiB = 1024 * 1024
BLOCK = 512 * 1024
REGION = "eu-west-1"



@pytest.fixture
def requests_sent(aws: boto3.Session) -> list[tuple[str, dict[str, Any]]]:
    """Every EBS direct API call the exporter makes: (operation, parameters)."""
    sent: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        sent.append((model.name, {k: v for k, v in params.items() if k != "BlockData"}))

    aws.events.register("provide-client-params.ebs.*", record)
    return sent


def _blocks(aws: boto3.Session, snapshot_id: str) -> dict[int, bytes]:
    ebs = aws.client("ebs", region_name=REGION)
    listed = ebs.list_snapshot_blocks(SnapshotId=snapshot_id)["Blocks"]
    return {int(b["BlockIndex"]): ebs.get_snapshot_block(SnapshotId=snapshot_id, BlockIndex=b["BlockIndex"],
                                                           BlockToken=b["BlockToken"])["BlockData"].read()
            for b in listed}


def _volume(blocks: dict[int, bytes], size: int) -> bytes:
    out = bytearray(size + BLOCK)
    for index, data in blocks.items():
        out[index * BLOCK:(index + 1) * BLOCK] = data
    return bytes(out[:size])


def _mirror(tmp_path: Path, src, e2e, drorch_env, monkeypatch, image: Path):
    policy = src.policy(tmp_path, image, tmp_path / "repo", mirror="web")
    e2e.apply_ok(policy, drorch_env)
    for key in ("DRORCH_HOME", "DRORCH_KEY"):
        monkeypatch.setenv(key, drorch_env[key])
    loaded = load_policy(policy)
    return loaded, key_source(loaded.encryption)


def test_export_then_incremental_export_sends_only_changed_blocks(tmp_path, src, e2e, drorch_env, monkeypatch,
                                                                  aws, requests_sent):
    image = src.image(tmp_path / "vm.raw", 20 * MiB + 1000, [(0, 3 * MiB), (12 * MiB, 2 * MiB),
                                                              (20 * MiB, 1000)])
    policy, keys = _mirror(tmp_path, src, e2e, drorch_env, monkeypatch, image)
    first = export_ebs(policy, keys, "web", session=aws)
    assert first.parent_id is None and first.volume_size_gib == 1
    assert first.blocks_written == 6 + 4 + 1  # the non-zero blocks only; EBS reads the rest as zeros
    assert _volume(_blocks(aws, first.snapshot_id), image.stat().st_size) == image.read_bytes()

    ec2 = aws.client("ec2", region_name=REGION)
    [snap] = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:drorch:mirror", "Values": ["web"]}, {"Name": "status", "Values": ["completed"]}])[
        "Snapshots"]
    assert snap["SnapshotId"] == first.snapshot_id  # exactly what the runbook's launch step looks for

    again = export_ebs(policy, keys, "web", session=aws)
    assert again.already_exported and again.snapshot_id == first.snapshot_id

    src.overwrite(image, MiB + 100, 4096, seed=7)  # inside one block
    src.overwrite(image, 7 * MiB, 100, seed=8)  # into a hole: a new block
    with open(image, "r+b") as fh:  # and zero one block that had data
        fh.seek(12 * MiB)
        fh.write(bytes(BLOCK))
    e2e.apply_ok(tmp_path / "policy.yaml", drorch_env)
    requests_sent.clear()
    second = export_ebs(policy, keys, "web", session=aws)
    assert second.parent_id == first.snapshot_id
    [start] = [params for op, params in requests_sent if op == "StartSnapshot"]
    assert start["ParentSnapshotId"] == first.snapshot_id
    puts = sorted(params["BlockIndex"] for op, params in requests_sent if op == "PutSnapshotBlock")
    assert puts == [2, 14, 24], puts  # changed, newly written, newly zero
    assert second.blocks_written == 3
    [complete] = [params for op, params in requests_sent if op == "CompleteSnapshot"]
    assert complete["ChangedBlocksCount"] == 3

    child = _blocks(aws, second.snapshot_id)
    assert set(child) == {2, 14, 24}
    for index, data in child.items():
        put = next(p for op, p in requests_sent if op == "PutSnapshotBlock" and p["BlockIndex"] == index)
        assert put["Checksum"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    inherited = _blocks(aws, first.snapshot_id) | child  # what EBS would present for the child
    assert _volume(inherited, image.stat().st_size) == image.read_bytes()


def test_export_of_a_directory_mirror_is_refused(tmp_path, dataset, src, e2e, drorch_env, monkeypatch, aws):
    policy_file = src.policy(tmp_path, dataset, tmp_path / "repo", type="directory", mirror="web")
    e2e.apply_ok(policy_file, drorch_env)
    for key in ("DRORCH_HOME", "DRORCH_KEY"):
        monkeypatch.setenv(key, drorch_env[key])
    policy = load_policy(policy_file)
    from drorch.ports.errors import UsageError

    with pytest.raises(UsageError, match="only image and volume mirrors"):
        export_ebs(policy, key_source(policy.encryption), "web", session=aws)
