"""Adopting packs that a killed run uploaded but never indexed.

Packs are written before their index (restic's order), so a crash leaves
complete but unindexed packs. Reading their headers and indexing them lets the
next run reuse their blobs instead of uploading them again. A pack whose header
cannot be read is left for prune and reported.
"""

from __future__ import annotations

from drorch.ports.errors import DrorchError
from drorch.repository.layout import FileType
from drorch.repository.pack import PackedBlob, PackFormatError
from drorch.repository.repository import Repository


def adopt_orphan_packs(repo: Repository) -> tuple[int, list[str]]:
    """Index every stored pack the index does not know; returns (adopted, unreadable ids)."""
    known = set(repo.index.packs())
    adopted: dict[str, list[PackedBlob]] = {}
    unreadable = []
    for pack_id, size in repo.list_ids(FileType.PACK):
        if pack_id in known:
            continue
        try:
            adopted[pack_id] = repo.read_pack_header(pack_id, size)
        except (PackFormatError, DrorchError):
            unreadable.append(pack_id)
    if adopted:
        repo.save_index(adopted)
        for pack_id, blobs in adopted.items():
            repo.index.add_pack(pack_id, blobs)
    return len(adopted), unreadable
