"""Copying snapshots between repositories that share a master key, pack for pack.

drorch initialises every target of a mirror with the primary's master key, so
a pack, an index file or a snapshot file written to one is a valid file of the
other, byte for byte: replication copies what the destination lacks and never
re-chunks, re-compresses or re-encrypts. Order is restic's: packs, then an
index for them, then the snapshot, so a copy interrupted at any point leaves
no snapshot that points at missing data on the destination.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from drorch.ports.errors import RepositoryError
from drorch.repository.layout import FileType, object_name
from drorch.repository.pack import PackedBlob
from drorch.repository.prune import used_blobs
from drorch.repository.repository import Repository
from drorch.repository.snapshot import Snapshot

COPY_WORKERS = 4


@dataclass
class ReplicationStats:
    packs_copied: int = 0
    bytes_copied: int = 0


def same_master_key(a: Repository, b: Repository) -> bool:
    return a.key == b.key


def packs_missing(src: Repository, dst: Repository, snapshots: list[Snapshot]
                  ) -> dict[str, list[PackedBlob]]:
    """Packs of ``src`` holding blobs the snapshots need that ``dst`` does not index."""
    needed: dict[str, list[PackedBlob]] = {}
    for kind, blob_id in used_blobs(src, snapshots):
        if dst.index.has(kind, blob_id):
            continue
        found = src.index.lookup(kind, blob_id)
        if found is None:
            raise RepositoryError(f"target {src.name!r} lacks blob {blob_id[:12]} that its own "
                                  "snapshot needs", hint="run `drorch verify` on it")
        needed.setdefault(found[0], [])
    all_packs = src.index.packs()
    return {pack_id: all_packs[pack_id] for pack_id in needed}


def copy_packs(src: Repository, dst: Repository, packs: dict[str, list[PackedBlob]],
               stats: ReplicationStats) -> None:
    """Copy packs verbatim, then index them on ``dst``; call with dst loaded and locked."""
    def copy(pack_id: str) -> int:
        name = object_name(FileType.PACK, pack_id)
        data = src.store.get(name)
        dst.store.put(name, data)
        return len(data)

    with ThreadPoolExecutor(COPY_WORKERS, thread_name_prefix="copy") as pool:
        for size in pool.map(copy, sorted(packs)):
            stats.packs_copied += 1
            stats.bytes_copied += size
    if packs:
        dst.save_index(packs)
        for pack_id, blobs in packs.items():
            dst.index.add_pack(pack_id, blobs)


def copy_snapshot_file(sealed: bytes, snapshot_id: str, dst: Repository) -> None:
    """Publish a snapshot under the same ID as on the source (its sealed bytes, unchanged)."""
    dst.store.put(object_name(FileType.SNAPSHOT, snapshot_id), sealed)


def copy_snapshot_data(src: Repository, dst: Repository, snapshots: list[Snapshot]
                       ) -> ReplicationStats:
    """Copy to ``dst`` every pack the snapshots need that it lacks, and index them there.

    The snapshot files themselves are the caller's to publish afterwards
    (``copy_snapshot_file``), once this has returned. Both repositories must be
    loaded and ``dst`` locked.
    """
    if not same_master_key(src, dst):
        raise RepositoryError(
            f"target {dst.name!r} was created with another master key than {src.name!r}, so "
            "packs cannot be copied", hint="mirror to it independently, or re-create it empty")
    stats = ReplicationStats()
    copy_packs(src, dst, packs_missing(src, dst, snapshots), stats)
    return stats
