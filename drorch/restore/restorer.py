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
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from drorch.ports.errors import IntegrityError
from drorch.ports.progress import NoProgress, Progress
from drorch.repository.layout import FileType, object_name
from drorch.repository.pack import DATA, TREE, PackedBlob
from drorch.repository.repository import Repository
from drorch.repository.tree import atime_ns, decode_tree, mtime_ns, posix_permissions

Node = dict[str, Any]
FILES_PER_TASK = 256


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
    files: list[tuple[Path, int]] = field(default_factory=list)  # created at full size first
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
            batches = [plan.files[i:i + FILES_PER_TASK] for i in range(0, len(plan.files), FILES_PER_TASK)]
            list(pool.map(_create_files, batches))
            for future in [pool.submit(self._restore_pack, pack_id, blobs)
                           for pack_id, blobs in plan.writes.items()]:
                future.result()
        as_root = os.geteuid() == 0
        for path, node in plan.metadata:  # children before their directory
            _apply_metadata(path, node, as_root)
        self.stats.bytes = total
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
                _ensure_dir(path)
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
        plan.files.append((path, offset))
        self.stats.files += 1

    def _restore_pack(self, pack_id: str, blobs: dict[PackedBlob, list[tuple[Path, int]]]) -> None:
        start = min(b.offset for b in blobs)
        end = max(b.offset + b.length for b in blobs)
        data = memoryview(self.repo.store.get(object_name(FileType.PACK, pack_id), start, end - start))
        with _OpenFiles() as files:
            for blob in sorted(blobs, key=lambda b: b.offset):
                sealed = data[blob.offset - start : blob.offset - start + blob.length]
                plain = self.repo.open_blob(pack_id, blob, sealed)
                for path, offset in blobs[blob]:
                    os.pwrite(files.fd(path), plain, offset)
                    self.progress.advance(len(plain))


class _OpenFiles:
    """Keeps the last written file open: a pack's blobs of one file are usually adjacent."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._fd = -1

    def fd(self, path: Path) -> int:
        if path != self._path:
            self.close()
            self._fd, self._path = os.open(path, os.O_WRONLY | os.O_CLOEXEC), path
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd, self._path = -1, None

    def __enter__(self) -> _OpenFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _create_files(files: list[tuple[Path, int]]) -> None:
    """Create (or truncate) files at their final size; holes until their blobs arrive."""
    for path, size in files:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            if size:
                os.ftruncate(fd, size)
        finally:
            os.close(fd)


def _clear_the_way(path: Path) -> None:
    """Remove what sits where the snapshot has something else: the snapshot is what --to asked for."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)  # file, symlink, fifo, socket, device node


def _ensure_dir(path: Path) -> None:
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            return
        os.unlink(path)
    except FileNotFoundError:
        pass
    os.mkdir(path)


def _remove_if_empty(path: Path) -> None:
    """Remove a directory created only to look for included files, if it stayed empty."""
    with contextlib.suppress(OSError):
        path.rmdir()


def _apply_metadata(path: Path, node: Node, as_root: bool) -> None:
    is_link = node["type"] == "symlink"
    if as_root:
        with contextlib.suppress(OSError):
            os.chown(path, node.get("uid", 0), node.get("gid", 0), follow_symlinks=False)
    if not is_link:
        os.chmod(path, posix_permissions(node.get("mode", 0o644)))
    times = (atime_ns(node), mtime_ns(node))
    if os.utime in os.supports_follow_symlinks or not is_link:
        os.utime(path, ns=times, follow_symlinks=False)
