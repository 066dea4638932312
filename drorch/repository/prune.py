"""Forgetting snapshots and deleting the packs no snapshot needs any more.

Safety rules (restic's design.rst, "Read and Write Ordering"), in this order:
1. The caller holds an exclusive lock: no other writer can be adding references.
2. Used blobs are collected from every remaining snapshot, of every mirror and
   of other tools; a pack holding even one used blob is kept whole.
3. A fresh index of the kept packs is written and durable before the old index
   files are deleted, and only then are unused packs deleted. A crash at any
   point leaves every snapshot restorable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from drorch.ports.errors import DrorchError
from drorch.repository.layout import FileType, file_id_of, object_name
from drorch.repository.pack import DATA, TREE, PackedBlob, pack_size
from drorch.repository.repository import Repository
from drorch.repository.snapshot import Snapshot, load_snapshots
from drorch.repository.tree import decode_tree


@dataclass
class PruneReport:
    snapshots_forgotten: list[str] = field(default_factory=list)
    packs_deleted: int = 0
    bytes_freed: int = 0
    packs_kept: int = 0
    unused_bytes_kept: int = 0  # unused blobs inside packs that also hold used ones
    kept_reasons: list[str] = field(default_factory=list)


def _retained_until(repo: Repository, written_s: float | None) -> float | None:
    """When an object written at ``written_s`` leaves object-lock retention (None: deletable)."""
    if not repo.immutable_days or written_s is None:
        return None
    until = written_s + repo.immutable_days * 86400
    return until if until > time.time() else None


def forget(repo: Repository, snapshots: list[Snapshot]) -> tuple[list[str], list[str]]:
    """Delete snapshot files; returns (forgotten IDs, why others were kept)."""
    forgotten: list[str] = []
    kept: list[str] = []
    for snapshot in snapshots:
        until = _retained_until(repo, snapshot.time_ns / 1e9)
        if until:
            kept.append(f"snapshot {snapshot.id[:8]} is immutable until {_day(until)}")
            continue
        repo.store.delete(object_name(FileType.SNAPSHOT, snapshot.id))
        forgotten.append(snapshot.id)
    return forgotten, kept


def _day(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_s))


def used_blobs(repo: Repository, snapshots: list[Snapshot]) -> set[tuple[str, str]]:
    """Every (type, id) reachable from ``snapshots``; raises if a tree cannot be read,
    because pruning from an incomplete picture could delete live data."""
    used: set[tuple[str, str]] = set()
    pending = [s.tree for s in snapshots]
    while pending:
        tree_id = pending.pop()
        if (TREE, tree_id) in used:
            continue
        used.add((TREE, tree_id))
        for node in decode_tree(repo.load_blob(TREE, tree_id)):
            if node.get("subtree"):
                pending.append(node["subtree"])
            used.update((DATA, blob) for blob in node.get("content") or [])
    return used


def prune(repo: Repository) -> PruneReport:
    """Delete packs holding no used blob. Call with an exclusive lock held."""
    report = PruneReport()
    snapshots = load_snapshots(repo)
    repo.load_index()
    used = used_blobs(repo, snapshots)
    packs = repo.index.packs()
    unused = {p for p, blobs in packs.items() if not any((b.type, b.id) in used for b in blobs)}
    written = dict(_pack_times(repo))
    for pack_id in sorted(unused):
        until = _retained_until(repo, written.get(pack_id))
        if until:
            unused.discard(pack_id)
            report.kept_reasons.append(f"pack {pack_id[:12]} is unused but immutable until {_day(until)}")
    if not unused:
        _count_kept(report, packs, used)
        return report
    kept = {p: blobs for p, blobs in packs.items() if p not in unused}
    old_index_files = sorted(repo.index.files)
    repo.save_index(kept, supersedes=tuple(old_index_files))
    for file_id in old_index_files:
        repo.store.delete(object_name(FileType.INDEX, file_id))
    for pack_id in sorted(unused):
        try:
            repo.store.delete(object_name(FileType.PACK, pack_id))
        except DrorchError as err:
            report.kept_reasons.append(f"pack {pack_id[:12]} could not be deleted: {err}")
            continue
        report.packs_deleted += 1
        report.bytes_freed += pack_size(packs[pack_id])
    _count_kept(report, kept, used)
    repo.load_index()
    return report


def _pack_times(repo: Repository) -> list[tuple[str, float | None]]:
    if not repo.immutable_days:
        return []
    return [(file_id_of(info.name), info.modified) for info in repo.store.list(FileType.PACK.prefix)]


def _count_kept(report: PruneReport, kept: dict[str, list[PackedBlob]],
                used: set[tuple[str, str]]) -> None:
    report.packs_kept = len(kept)
    report.unused_bytes_kept = sum(b.length for blobs in kept.values() for b in blobs
                                   if (b.type, b.id) not in used)
