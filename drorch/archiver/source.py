"""Archiving one policy source, whatever its type, inside its consistency context.

``archive_source`` is what ``apply`` calls per mirror: it runs the hooks and the
platform snapshot (``consistency.consistent``), reads the path that yields
(the live source, or the snapshot of it) and records it under the source's own
path, so a snapshot read from ``/dev/vg/drorch-web-1a2b`` or
``/srv/.drorch-snapshot-web-1a2b`` still restores as ``/dev/vg/web`` or
``/srv/www``. Directories go through the directory archiver, images and
volumes through the image archiver. The counters come back in one shape.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drorch.archiver.archiver import Archiver
from drorch.archiver.image import ImageArchiver
from drorch.policy import Source
from drorch.ports.errors import UsageError
from drorch.ports.progress import Progress
from drorch.repository.repository import Repository
from drorch.repository.uploader import PackUploader
from drorch.sources.blockmap import blockmap_store
from drorch.sources.consistency import consistent
from drorch.sources.dirmemo import DirMemoStore, dirmemo_store

SOURCE_TYPES = ("directory", "image", "volume")
ALLOW_SHRINK_ENV = "DRORCH_ALLOW_SHRINK"


@dataclass
class Archived:
    tree: str
    files_new: int = 0
    files_changed: int = 0
    files_unmodified: int = 0
    bytes_read: int = 0
    skipped: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    files_rewritten: int = 0  # changed files whose content differs (not only their metadata)


def archive_source(source: Source, mirror: str, repo: Repository, uploader: PackUploader,
                   parent_tree: str | None, *, excludes: list[str], progress: Progress) -> Archived:
    """Snapshot ``source`` into ``repo`` (blobs and trees saved, nothing committed); returns the root tree."""
    with consistent(source, mirror, progress) as read_from:
        if source.type == "directory":
            return _directory(source.path, read_from, repo, uploader, parent_tree, excludes, progress)
        return _image(source, read_from, repo, uploader, parent_tree, progress)


def _directory(path: Path, read_from: Path, repo: Repository, uploader: PackUploader,
               parent_tree: str | None, excludes: list[str], progress: Progress) -> Archived:
    try:
        memos: DirMemoStore | None = dirmemo_store(repo.config.id, path)
    except UsageError:  # no usable $DRORCH_HOME: a cache, so the backup goes on without it
        memos = None
    memo = memos.load(parent_tree) if memos else None
    archiver = Archiver(repo, uploader, excludes=excludes, progress=progress, memo=memo)
    tree = archiver.archive(path, parent_tree, read_from=read_from)
    if memos and archiver.memo is not None and (tree != parent_tree or archiver.memo != memo):
        memos.save(tree, archiver.memo)  # before the snapshot commits: it only names the tree
    stats = archiver.stats
    return Archived(tree, stats.files_new, stats.files_changed, stats.files_unmodified, stats.bytes_read,
                    stats.skipped, {"files": stats.files_new + stats.files_changed + stats.files_unmodified,
                                    "dirs": stats.dirs, "bytes": stats.bytes_total,
                                    "skipped": len(stats.skipped)},
                    files_rewritten=stats.files_rewritten)


def _image(source: Source, read_from: Path, repo: Repository, uploader: PackUploader,
           parent_tree: str | None, progress: Progress) -> Archived:
    archiver = ImageArchiver(repo, uploader, progress=progress,
                             blockmaps=blockmap_store(repo.config.id, source.path))
    what = "volume" if source.type == "volume" else "image"
    tree = archiver.archive(source.path, parent_tree, read_from=read_from, what=what,
                            allow_shrink=os.environ.get(ALLOW_SHRINK_ENV, "") not in ("", "0"))
    stats = archiver.stats
    new = parent_tree is None
    return Archived(
        tree, files_new=int(new), files_changed=int(not new and not stats.unchanged),
        files_rewritten=int(not new and not stats.unchanged),
        files_unmodified=int(stats.unchanged), bytes_read=stats.bytes_scanned + stats.bytes_chunked,
        summary={"files": 1, "dirs": 0, "bytes": stats.size, "skipped": 0,
                 "image": {"bytes_scanned": stats.bytes_scanned, "bytes_chunked": stats.bytes_chunked,
                           "bytes_reused": stats.bytes_reused, "bytes_zero": stats.bytes_zero,
                           "blocks_changed": stats.blocks_changed}})

