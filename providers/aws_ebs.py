"""An image snapshot as an EBS snapshot, written with the EBS direct APIs, incrementally.

``EbsExporter.export`` makes the repository snapshot of an image mirror into a
completed EBS snapshot tagged ``drorch:mirror=MIRROR`` (the tag the runbook
``launch`` step looks for, see ``aws_compute``) and ``drorch:snapshot=ID``:

1. **Idempotent.** A completed EBS snapshot already tagged with this mirror and
   repository snapshot is returned as it is; ``StartSnapshot`` carries a
   ``ClientToken`` derived from both, so a retried call does not start twice.
2. **Incremental.** The newest completed snapshot of the mirror whose manifest
   is known locally (the ``ManifestStore`` it is given) becomes the
   ``ParentSnapshotId``; EBS inherits its blocks. Blocks whose blob signature
   differs from the parent's are candidates; each is assembled from the
   repository, hashed, and sent only when its SHA-256 differs from the
   parent's too. Without a usable parent every non-zero block is sent (EBS
   reads unwritten blocks as zeros).
3. **512 KiB blocks**, ``PutSnapshotBlock`` with a SHA-256 checksum, several in
   parallel; the final partial block is zero-padded.
4. **Nothing half-made looks usable.** Only after every block is written is
   ``CompleteSnapshot`` called (with the count of blocks written); after a
   failure the snapshot stays ``pending`` until EBS marks it ``error`` at the
   60-minute ``Timeout``, and ``launch`` only ever picks completed snapshots
   (so the agent needs no right to delete snapshots).

Under moto, ``ParentSnapshotId`` is accepted but parent blocks are not carried
into the child, and checksums are not verified (see shared/EMULATORS.md);
tests check the blocks sent, not what EBS would inherit.
"""

from __future__ import annotations

import base64
import hashlib
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import boto3

from drorch.ports.ebs import (
    ZERO_CHECKSUM,
    ZERO_SIGNATURE,
    BlockImage,
    ExportManifest,
    ManifestStore,
    SourceSnapshot,
)
from drorch.providers.aws_common import client, make_session, region_of, translate

__all__ = ["EBS_BLOCK_SIZE", "EbsExport", "EbsExporter", "open_exporter"]

EBS_BLOCK_SIZE = 512 * 1024
MIRROR_TAG = "drorch:mirror"  # what aws_compute's launch filters on
SOURCE_TAG = "drorch:snapshot"
_GIB = 1024 ** 3
_PUT_WORKERS = 8
_TIMEOUT_MINUTES = 60


@dataclass
class EbsExport:
    snapshot_id: str
    parent_id: str | None
    source: str  # repository snapshot ID
    region: str
    volume_size_gib: int
    blocks: int
    blocks_compared: int = 0  # candidates: signature differs from the parent's
    blocks_written: int = 0
    bytes_written: int = 0
    already_exported: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def open_exporter(region: str | None = None, *, session: boto3.Session | None = None) -> EbsExporter:
    session = make_session(session, region)
    return EbsExporter(session, region_of(session, region))


class EbsExporter:
    block_size = EBS_BLOCK_SIZE

    def __init__(self, session: boto3.Session, region: str) -> None:
        self.region = region
        self.ec2 = client(session, "ec2", region)
        self.ebs = client(session, "ebs", region)

    def _call(self, doing: str, fn: Any, service: str = "ebs", **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Exception as err:  # noqa: BLE001 - translate() re-raises what it does not know
            raise translate(err, doing, service=service, where=self.region) from None

    def export(self, image: BlockImage, snapshot: SourceSnapshot, mirror: str,
               manifests: ManifestStore) -> EbsExport:
        """Make ``snapshot`` (an image snapshot of ``mirror``) a completed EBS snapshot; see module doc."""
        size_gib = max(1, math.ceil(image.size / _GIB))
        done = self._existing(mirror, snapshot.id)
        if done is not None:
            return EbsExport(done["SnapshotId"], None, snapshot.id, self.region, int(done["VolumeSize"]),
                             image.blocks, already_exported=True)
        parent, manifest = self._parent(mirror, size_gib, manifests)
        signatures = image.signatures()
        started = self._start(mirror, snapshot, size_gib, parent)
        result = EbsExport(started, parent, snapshot.id, self.region, size_gib, image.blocks)
        # On failure the snapshot stays pending, is never completed, and EBS marks it
        # "error" after the timeout: launch never picks it, and the agent needs no delete right.
        checksums = self._put_changed(started, image, signatures, manifest, result)
        self._call(f"complete EBS snapshot {started}", self.ebs.complete_snapshot, SnapshotId=started,
                   ChangedBlocksCount=result.blocks_written)
        manifests.save(ExportManifest(started, snapshot.id, image.size, EBS_BLOCK_SIZE, signatures,
                                           checksums))
        return result

    # -- which snapshots exist ------------------------------------------------------------

    def _snapshots(self, mirror: str, *extra: dict[str, Any]) -> list[dict[str, Any]]:
        filters = [{"Name": f"tag:{MIRROR_TAG}", "Values": [mirror]},
                   {"Name": "status", "Values": ["completed"]}, *extra]
        reply = self._call(f"list the EBS snapshots of mirror {mirror}", self.ec2.describe_snapshots,
                           service="ec2", OwnerIds=["self"], Filters=filters)
        return sorted(reply["Snapshots"], key=lambda s: s["StartTime"], reverse=True)

    def _existing(self, mirror: str, source: str) -> dict[str, Any] | None:
        found = self._snapshots(mirror, {"Name": f"tag:{SOURCE_TAG}", "Values": [source]})
        return found[0] if found else None

    def _parent(self, mirror: str, size_gib: int, manifests: ManifestStore
                ) -> tuple[str | None, ExportManifest | None]:
        """The newest completed snapshot of the mirror that we know the blocks of, and fits."""
        for candidate in self._snapshots(mirror):
            manifest = manifests.load(candidate["SnapshotId"])
            if manifest and manifest.block_size == EBS_BLOCK_SIZE and candidate["VolumeSize"] <= size_gib:
                return str(candidate["SnapshotId"]), manifest
        return None, None

    # -- writing --------------------------------------------------------------------------

    def _start(self, mirror: str, snapshot: SourceSnapshot, size_gib: int, parent: str | None) -> str:
        tags = [{"Key": MIRROR_TAG, "Value": mirror}, {"Key": SOURCE_TAG, "Value": snapshot.id},
                {"Key": "Name", "Value": f"drorch {mirror} {snapshot.id[:8]}"}]
        token = hashlib.sha256(f"{mirror}:{snapshot.id}:{parent}".encode()).hexdigest()[:64]
        request: dict[str, Any] = {
            "VolumeSize": size_gib, "Tags": tags, "ClientToken": token, "Timeout": _TIMEOUT_MINUTES,
            "Description": f"drorch mirror {mirror}, repository snapshot {snapshot.id[:8]} of "
                           f"{', '.join(snapshot.paths)}"}
        if parent:
            request["ParentSnapshotId"] = parent
        reply = self._call(f"start an EBS snapshot of mirror {mirror}", self.ebs.start_snapshot, **request)
        return str(reply["SnapshotId"])

    def _put_changed(self, snapshot_id: str, image: BlockImage, signatures: list[bytes],
                     parent: ExportManifest | None, result: EbsExport) -> list[bytes]:
        def old(items: list[bytes] | None, i: int, default: bytes) -> bytes:
            return items[i] if items is not None and i < len(items) else default

        checksums = [ZERO_CHECKSUM] * image.blocks
        candidates = []
        for i, signature in enumerate(signatures):
            parent_signature = old(parent.signatures if parent else None, i, ZERO_SIGNATURE)
            if signature == parent_signature:
                checksums[i] = old(parent.checksums if parent else None, i, ZERO_CHECKSUM)
            else:
                candidates.append(i)
        result.blocks_compared = len(candidates)

        def put(i: int) -> tuple[int, bytes, bool]:
            zero = signatures[i] == ZERO_SIGNATURE
            data = bytes(EBS_BLOCK_SIZE) if zero else image.read(i)
            digest = ZERO_CHECKSUM if zero else hashlib.sha256(data).digest()
            if digest == old(parent.checksums if parent else None, i, ZERO_CHECKSUM):
                return i, digest, False  # same bytes as the parent (or a zero block with no parent)
            self._call(f"write block {i} of EBS snapshot {snapshot_id}", self.ebs.put_snapshot_block,
                       SnapshotId=snapshot_id, BlockIndex=i, BlockData=data, DataLength=EBS_BLOCK_SIZE,
                       Checksum=base64.b64encode(hashlib.sha256(data).digest()).decode(),
                       ChecksumAlgorithm="SHA256")
            return i, digest, True

        with ThreadPoolExecutor(_PUT_WORKERS, thread_name_prefix="ebs") as pool:
            for i, digest, written in pool.map(put, candidates):
                checksums[i] = digest
                if written:
                    result.blocks_written += 1
                    result.bytes_written += EBS_BLOCK_SIZE
        return checksums
