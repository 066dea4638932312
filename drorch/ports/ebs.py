"""The block-export port: send an image snapshot's blocks to a cloud block store (EBS today).

The domain side (``drorch.engine.ebs``) assembles the image's blocks from the
repository (``BlockImage``) and keeps the manifests of what was exported
(``ManifestStore``); the adapter (``providers/aws_ebs.py``, registry name
``ebs:aws``) only talks to the cloud. A block's *signature* names the blobs
under it, so an unchanged block is recognised without reading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

ZERO_SIGNATURE = bytes(16)  # a block made only of zero blobs
ZERO_CHECKSUM = bytes(32)


@dataclass
class ExportManifest:
    """What one exported block snapshot holds: per block, its signature and checksum."""

    snapshot_id: str  # the target's snapshot (e.g. snap-0123)
    source: str  # the repository snapshot it was made from
    size: int
    block_size: int
    signatures: list[bytes]
    checksums: list[bytes]  # SHA-256 of each block as written; ZERO_CHECKSUM for zero blocks


class BlockImage(Protocol):
    """An image snapshot seen as fixed-size blocks, read lazily from the repository."""

    size: int
    blocks: int
    block_size: int

    def signatures(self) -> list[bytes]:
        """16 bytes per block; ``ZERO_SIGNATURE`` for a block made only of zero blobs."""
        ...

    def read(self, block: int) -> bytes:
        """The block's bytes, zero-padded to ``block_size`` past the end of the image."""
        ...


class ManifestStore(Protocol):
    def load(self, snapshot_id: str) -> ExportManifest | None: ...

    def save(self, manifest: ExportManifest) -> None: ...


@dataclass(frozen=True)
class SourceSnapshot:
    """The repository snapshot being exported, as the adapter needs to name and tag it."""

    id: str
    paths: list[str]


class BlockExporter(Protocol):
    region: str
    block_size: int

    def export(self, image: BlockImage, source: SourceSnapshot, mirror: str,
               manifests: ManifestStore) -> Any:
        """Make ``source`` a completed cloud snapshot tagged with ``mirror``; idempotent."""
        ...
