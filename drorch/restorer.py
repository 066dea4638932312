"""Restoring a snapshot's tree to a directory, pack by pack.

First the trees are walked and every file is created at its final size; then
each needed pack is read once (one ranged read covering the blobs we need) on a
worker pool and every blob is written at its offset in every file that uses it.
Metadata (mode, owner when root, times) is set last, directories deepest first,
so writing children does not disturb a directory's restored mtime. Every blob
is authenticated and hash-checked before it is written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from drorch.errors import IntegrityError
from drorch.progress import NoProgress, Progress
from drorch.repository.layout import FileType, object_name
from drorch.repository.pack import DATA, TREE, PackedBlob
from drorch.repository.repository import Repository
from drorch.repository.tree import atime_ns, decode_tree, mtime_ns, posix_permissions

Node = dict[str, Any]


@dataclass
class RestoreStats:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0


@dataclass
class _Plan:
    """What to write: per pack, the blobs needed and the (file, offset) places they go."""

    writes: dict[str, dict[PackedBlob, list[tuple[Path, int]]]] = field(default_factory=dict)
    metadata: list[tuple[Path, Node]] = field(default_factory=list)


class Restorer:
    def __init__(self, repo: Repository, progress: Progress | None = None,
                 workers: int | None = None) -> None:
        self.repo = repo
        self.progress = progress or NoProgress()
        self.workers = workers or max(2, (os.cpu_count() or 2))
        self.stats = RestoreStats()

    def restore(self, tree_id: str, dest: Path, *, strip: tuple[str, ...] = (),
                include: list[str] | None = None) -> RestoreStats:
        """Restore the tree below path ``strip`` into ``dest``; ``include`` globs filter files."""
        tree_id = self._descend(tree_id, strip)
        dest.mkdir(parents=True, exist_ok=True)
        plan = _Plan()
        self._walk(tree_id, dest, "", include or [], plan, ancestors_included=not include)
        total = sum(len(places) * b.plain_length
                    for blobs in plan.writes.values() for b, places in blobs.items())
        self.progress.start(f"restoring into {dest}", total)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="restore") as pool:
            for future in [pool.submit(self._restore_pack, pack_id, blobs)
                           for pack_id, blobs in plan.writes.items()]:
                future.result()
        for path, node in plan.metadata:  # children before their directory
            _apply_metadata(path, node)
        self.progress.finish()
        return self.stats

    def _descend(self, tree_id: str, strip: tuple[str, ...]) -> str:
        for part in strip:
            nodes = {n["name"]: n for n in self._tree(tree_id)}
            node = nodes.get(part)
            if node is None or node.get("type") != "dir":
                raise IntegrityError(f"the snapshot has no directory {part!r} on its path")
            tree_id = node["subtree"]
        return tree_id

    def _tree(self, tree_id: str) -> list[Node]:
        return decode_tree(self.repo.load_blob(TREE, tree_id))

    def _walk(self, tree_id: str, into: Path, rel: str, include: list[str], plan: _Plan,
              ancestors_included: bool) -> bool:
        """Create what this tree holds below ``into``; returns whether anything was included."""
        anything = False
        for node in self._tree(tree_id):
            name = node["name"]
            if "/" in name or name in ("", ".", ".."):
                raise IntegrityError(f"refusing to restore an entry named {name!r}")
            path, node_rel = into / name, f"{rel}/{name}" if rel else name
            included = ancestors_included or any(fnmatch(node_rel, p) for p in include)
            if node["type"] == "dir":
                if path.is_symlink() or (path.exists() and not path.is_dir()):
                    _clear_the_way(path)
                path.mkdir(parents=True, exist_ok=True)
                if self._walk(node["subtree"], path, node_rel, include, plan, included) or included:
                    plan.metadata.append((path, node))
                    self.stats.dirs += 1
                    anything = True
                else:
                    _remove_if_empty(path)
            elif included:
                self._create(node, path, plan)
                anything = True
        return anything

    def _create(self, node: Node, path: Path, plan: _Plan) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _clear_the_way(path)
        if node["type"] == "symlink":
            os.symlink(node.get("linktarget", ""), path)
            self.stats.symlinks += 1
        elif node["type"] == "file":
            self._plan_file(node, path, plan)
        else:
            return  # fifos and devices are recorded but not recreated
        plan.metadata.append((path, node))

    def _plan_file(self, node: Node, path: Path, plan: _Plan) -> None:
        offset = 0
        for blob_id in node.get("content") or []:
            found = self.repo.index.lookup(DATA, blob_id)
            if found is None:
                raise IntegrityError(f"data blob {blob_id[:12]} of {path.name} is missing from "
                                     f"target {self.repo.name!r}",
                                     hint="run `drorch verify` to see what is damaged")
            pack_id, blob = found
            plan.writes.setdefault(pack_id, {}).setdefault(blob, []).append((path, offset))
            offset += blob.plain_length
        with open(path, "wb") as fh:
            fh.truncate(offset)
        self.stats.files += 1

    def _restore_pack(self, pack_id: str, blobs: dict[PackedBlob, list[tuple[Path, int]]]) -> None:
        start = min(b.offset for b in blobs)
        end = max(b.offset + b.length for b in blobs)
        data = memoryview(self.repo.store.get(object_name(FileType.PACK, pack_id), start, end - start))
        for blob, places in blobs.items():
            sealed = data[blob.offset - start : blob.offset - start + blob.length]
            plain = self.repo.open_blob(pack_id, blob, sealed)
            for path, offset in places:
                fd = os.open(path, os.O_WRONLY)
                try:
                    os.pwrite(fd, plain, offset)
                finally:
                    os.close(fd)
                self.stats.bytes += len(plain)
                self.progress.advance(len(plain))


def _clear_the_way(path: Path) -> None:
    """Remove what sits where the snapshot has something else: the snapshot is what --to asked for."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()  # fifo, socket, device node


def _remove_if_empty(path: Path) -> None:
    """Remove a directory created only to look for included files, if it stayed empty."""
    with contextlib.suppress(OSError):
        path.rmdir()


def _apply_metadata(path: Path, node: Node) -> None:
    is_link = node["type"] == "symlink"
    if os.geteuid() == 0:
        with contextlib.suppress(OSError):
            os.chown(path, node.get("uid", 0), node.get("gid", 0), follow_symlinks=False)
    if not is_link:
        os.chmod(path, posix_permissions(node.get("mode", 0o644)))
    times = (atime_ns(node), mtime_ns(node))
    if os.utime in os.supports_follow_symlinks or not is_link:
        os.utime(path, ns=times, follow_symlinks=False)
