"""Turning a directory into trees and blobs: the write side of a snapshot.

The walk runs in the calling thread, depth first, names in sorted order. File
contents are chunked as they are read (files of ``PARALLEL_FROM`` bytes or more
on every core, ``drorch.archiver.segments``) and every chunk is handed to a worker
pool that hashes, compresses, encrypts and packs it (``PackUploader.save``);
small files go in batches, to helper processes once there are many
(``drorch.archiver.smallfiles``). A bounded number of chunks and batches is in
flight, so memory stays flat whatever the file sizes. A file whose size, mtime,
ctime, inode and xattrs match the parent snapshot and whose blobs are all in the
index is not read again. A directory whose entries all look as the parent
snapshot's walk saw them (its memo, ``drorch.sources.dirmemo``) is the parent's
tree without reading that tree; its subdirectories are still walked.

Unreadable entries are skipped with a warning and counted, never fatal: the
snapshot still records everything that could be read, and the caller reports
the skips (exit 3).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from fnmatch import fnmatch
from io import FileIO
from pathlib import Path
from typing import Any, TypeVar

from drorch.archiver.chunker import MIN_CHUNK, chunks, read_chunk, trim_buffers
from drorch.archiver.completion import when_all
from drorch.archiver.parent import Parent, memo_entry, remembered
from drorch.archiver.reading import open_fd, open_source, read_small_file
from drorch.archiver.segments import PARALLEL_FROM, parallel_cuts
from drorch.archiver.smallfiles import HELPERS_AFTER, Slot, SmallFiles, Stored
from drorch.ports.errors import SourceError
from drorch.ports.progress import NoProgress, Progress
from drorch.repository.nested import Walk, run_nested
from drorch.repository.pack import DATA, TREE
from drorch.repository.repository import Repository
from drorch.repository.tree import encode_tree, node_from_stat, node_type, same_time, stat_signature
from drorch.repository.uploader import PackUploader
from drorch.sources import xattrs
from drorch.sources.dirmemo import MAX_ENTRIES, DirMemo

Node = dict[str, Any]
T = TypeVar("T")


# an entry as stat'ed: (entry, path relative to the source, stat, kind, xattrs, link target, signature)
Scanned = tuple[os.DirEntry[str], str, os.stat_result, str, list[dict[str, str]], str | None, bytes]


@dataclass
class ArchiveStats:
    files_new: int = 0
    files_changed: int = 0  # re-read: metadata differed from the parent's
    files_rewritten: int = 0  # of those, files whose content differs too
    files_unmodified: int = 0
    files_by_helpers: int = 0  # small files read and sealed by helper processes
    dirs: int = 0
    bytes_read: int = 0
    bytes_total: int = 0
    skipped: list[str] = field(default_factory=list)


class Archiver:
    """Archives one source directory into a repository; use once per snapshot.

    ``helpers`` is how many helper processes store small files (default one per
    core; 0 for none), started once ``helpers_after`` small files were seen.
    ``memo`` is the parent snapshot's directory memo; ``self.memo`` is this one's once
    ``archive`` returned (None when the source has more than ``MAX_ENTRIES`` entries).
    """

    def __init__(
        self,
        repo: Repository,
        uploader: PackUploader,
        *,
        excludes: list[str] | None = None,
        progress: Progress | None = None,
        workers: int | None = None,
        helpers: int | None = None,
        helpers_after: int = HELPERS_AFTER,
        memo: DirMemo | None = None,
    ) -> None:
        self.repo = repo
        self.uploader = uploader
        self.excludes = excludes or []
        self.progress = progress or NoProgress()
        self.stats = ArchiveStats()
        self._memo_in = memo
        self.memo: DirMemo | None = {}
        self._memo_entries = 0
        workers = workers or os.cpu_count() or 2
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="blob")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="reader")
        self._cutters = ThreadPoolExecutor(workers, thread_name_prefix="cut")  # segments of a large file
        self._cut_ahead = workers
        self._slots = threading.BoundedSemaphore(workers * 3)
        self._stats_lock = threading.Lock()
        self._small = SmallFiles(repo.key, uploader, self.progress, store_one=self._store_small_file,
                                 submit=self._submit, helpers_after=helpers_after,
                                 helpers=(os.cpu_count() or 1) if helpers is None else helpers)

    # -- entry point ----------------------------------------------------------------------

    def archive(self, source: Path, parent_tree: str | None, *, read_from: Path | None = None) -> str:
        """Store ``source`` (absolute) and return the root tree ID.

        Like restic, the root tree holds the source's full path: ``/srv/www``
        becomes ``srv`` → ``www`` → contents, so ``restic restore`` recreates it.
        ``read_from`` is where the contents are read instead (a platform snapshot
        of ``source``); they are still recorded under ``source``.
        """
        if not source.is_dir():
            raise SourceError(f"source path {source} does not exist or is not a directory",
                              hint="create it or fix the source's path in the policy")
        try:
            parts = source.parts[1:]
            chain = self._save_chain(Path(source.anchor), parts,
                                     self._subtree(parent_tree, None if parts else ""), read_from or source)
            self._small.flush()
            return chain.result()
        finally:
            self._small.close()
            self.stats.files_by_helpers = self._small.by_helpers
            self._reader.shutdown(wait=True)
            self._cutters.shutdown(wait=True)
            self._pool.shutdown(wait=True)
            trim_buffers()

    def _save_chain(self, base: Path, parts: tuple[str, ...], parent: Parent,
                    read_from: Path) -> Future[str]:
        """The tree of ``base`` holding only the next path component, down to the source."""
        if not parts:
            return run_nested(self._save_dir(read_from, "", parent))
        path = base / parts[0]
        node = node_from_stat(parts[0], path.stat(), "dir")
        old = parent.nodes.get(parts[0])
        subtree = self._subtree(_subtree_id(old), None if parts[1:] else "")
        node["subtree"] = self._save_chain(path, parts[1:], subtree, read_from)
        return self._tree_when_done([node], parent, None)

    # -- directories ----------------------------------------------------------------------

    def _subtree(self, tree_id: str | None, rel: str | None) -> Parent:
        """The parent of a directory; ``rel`` None for the path above the source (no memo)."""
        memo = memo_entry(self._memo_in, rel, tree_id) if rel is not None else None
        return Parent(self.repo, self.progress, tree_id, memo)

    def _save_dir(self, path: Path, rel: str, parent: Parent) -> Walk[Future[str]]:
        """The directory's tree ID, as a Future: the walk moves on while its files are stored.

        A nested walk (``run_nested``): subdirectories are yielded, not recursed into,
        so a source of any depth is archived."""
        self.stats.dirs += 1
        named = [(entry, f"{rel}/{entry.name}" if rel else entry.name) for entry in self._entries(path)]
        listed = [(entry, entry_rel) for entry, entry_rel in named
                  if not self._excluded(entry.name, entry_rel)]
        scanned = self._scan(listed) if parent.memo is not None else None
        if scanned is not None and parent.holds({e[0].name: e[6] for e in scanned},
                                                [e[0].name for e in scanned if e[3] == "file"]):
            return (yield from self._unchanged_dir(rel, parent, scanned))
        nodes: list[Node] = []
        for entry, entry_rel in listed:
            old = parent.nodes.get(entry.name)
            node = self._save_entry(entry, entry_rel, old)
            if node is not None and node["type"] == "dir":
                node["subtree"] = yield self._save_dir(
                    Path(entry.path), entry_rel, self._subtree(_subtree_id(old), entry_rel))
            if node is not None:
                nodes.append(node)
        return self._tree_when_done(nodes, parent, rel)

    def _scan(self, listed: list[tuple[os.DirEntry[str], str]]) -> list[Scanned] | None:
        """Every archivable entry as stat'ed, with its signature; None when one cannot be read
        (the directory then takes the usual way, which skips that entry and says why)."""
        scanned = []
        try:
            for entry, entry_rel in listed:
                st = entry.stat(follow_symlinks=False)
                kind = node_type(st.st_mode)
                if kind is None:
                    continue
                attrs = xattrs.read(entry.path)
                target = os.readlink(entry.path) if kind == "symlink" else None
                scanned.append((entry, entry_rel, st, kind, attrs, target, stat_signature(st, attrs, target)))
        except OSError:
            return None
        return scanned

    def _unchanged_dir(self, rel: str, parent: Parent, scanned: list[Scanned]) -> Walk[Future[str]]:
        """A directory the memo shows unchanged: its files are counted, not compared with the
        parent's nodes; its subdirectories are walked. Its tree is the parent's unless one of
        them changed; then it is built from what was stat'ed and the memo's blob IDs."""
        assert parent.memo is not None
        sizes = [st.st_size for _entry, _rel, st, kind, *_ in scanned if kind == "file"]
        self.stats.bytes_total += sum(sizes)
        self.stats.files_unmodified += len(sizes)
        self.progress.advance(sum(sizes), files=len(sizes))  # once: progress takes a lock a call
        children: dict[str, Parent] = {}
        subdirs: dict[str, Future[str]] = {}
        for entry, entry_rel, _st, kind, *_ in scanned:
            if kind == "dir":
                child = children[entry.name] = self._memo_child(parent, entry.name, entry_rel)
                subdirs[entry.name] = yield self._save_dir(Path(entry.path), entry_rel, child)
        _tree, signatures, contents = parent.memo

        def tree_id() -> str:
            changed = {name: f.result() for name, f in subdirs.items()
                       if f.result() != children[name].tree_id}
            if not changed:
                assert parent.tree_id is not None, "a memo always names its tree"
                found = parent.tree_id
            else:
                nodes = [_node(e[0].name, e[2], e[3], e[4], e[5]) for e in scanned]
                for node in nodes:
                    if node["type"] == "file":  # as _save_entry makes an unchanged file's node
                        node["content"], node["size"] = list(contents[node["name"]]), node.get("size", 0)
                    elif node["type"] == "dir":
                        node["subtree"] = subdirs[node["name"]].result()
                found = self.uploader.save(TREE, encode_tree(nodes))
            self._remember(rel, found, signatures, contents)
            return found

        return when_all(list(subdirs.values()), tree_id)

    def _memo_child(self, parent: Parent, name: str, rel: str) -> Parent:
        """A subdirectory's parent: its tree from its own memo entry, else from the parent's tree."""
        entry = remembered(self._memo_in, rel)
        return self._subtree(entry[0] if entry is not None else _subtree_id(parent.nodes.get(name)), rel)

    def _remember(self, rel: str, tree_id: str, signatures: dict[str, bytes],
                  contents: dict[str, list[str]]) -> None:
        """Record a directory in this snapshot's memo (dropped once it outgrows MAX_ENTRIES)."""
        with self._stats_lock:
            self._memo_entries += len(signatures)
            if self.memo is not None:
                self.memo[rel] = (tree_id, signatures, contents)
                if self._memo_entries > MAX_ENTRIES:
                    self.memo = None

    def _tree_when_done(self, nodes: list[Node], parent: Parent, rel: str | None) -> Future[str]:
        """Store the tree of ``nodes`` once every Future they hold (blobs, subtrees) is done,
        and remember the directory ``rel`` in the memo (None: above the source).

        Nodes equal to the parent's are the parent's tree, which is not encoded again.
        """
        pending = list(dict.fromkeys(f for node in nodes for f in _futures_of(node)))

        def tree_id() -> str:
            kept = [node for node in nodes if self._resolve(node)]
            signatures = {node["name"]: node.pop("_sig") for node in kept if "_sig" in node}
            found = self._unchanged_tree(kept, parent) or self.uploader.save(TREE, encode_tree(kept))
            if rel is not None:
                contents = {node["name"]: node["content"] for node in kept if node["type"] == "file"}
                self._remember(rel, found, signatures, contents)
            return found

        return when_all(pending, tree_id)

    def _unchanged_tree(self, nodes: list[Node], parent: Parent) -> str | None:
        """The parent's tree ID when ``nodes`` are exactly its nodes (a no-change run: most
        directories); encoding and hashing each tree again cost more than the walk itself."""
        if not parent.tree_id or len(nodes) != len(parent.nodes):
            return None
        for node in nodes:
            stored = node if "content" in node else {**node, "content": None}  # as encode_tree writes it
            if stored != parent.nodes.get(node["name"]):
                return None
        return parent.tree_id if self.repo.index.has(TREE, parent.tree_id) else None

    def _resolve(self, node: Node) -> bool:
        """Replace finished Futures by their values; False when the file turned unreadable."""
        if node["type"] == "dir":
            node["subtree"] = node["subtree"].result()
            return True
        if node["type"] != "file":
            return True
        old = node.pop("_old", None)
        content = node["content"]
        try:
            if isinstance(content, Slot):
                if content.error is not None:
                    raise content.error
                node["content"], node["size"] = content.content, content.size
            elif isinstance(content, Future):
                node["content"], node["size"] = content.result()
            else:  # unchanged, the parent's blob IDs
                node.pop("_path", None)
                return True
            with self._stats_lock:
                self.stats.bytes_read += node["size"]
                self.stats.files_rewritten += old is not None and old != node["content"]
        except OSError as err:
            self._skip(Path(node.pop("_path")), err)
            return False
        node.pop("_path", None)
        return True

    def _entries(self, path: Path) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(path) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as err:
            self._skip(path, err)
            return []

    def _excluded(self, name: str, rel: str) -> bool:
        return bool(self.excludes) and is_excluded(self.excludes, name, rel)

    def _save_entry(self, entry: os.DirEntry[str], rel: str, old: Node | None) -> Node | None:
        try:
            st = entry.stat(follow_symlinks=False)
            kind = node_type(st.st_mode)
            if kind is None:
                return None  # sockets are not data to mirror
            attrs = xattrs.read(entry.path)
            target = os.readlink(entry.path) if kind == "symlink" else None
            node = _node(entry.name, st, kind, attrs, target)
            node["_sig"] = stat_signature(st, attrs, target)  # for the memo; popped with the tree
            if kind == "file":  # a directory's subtree is the caller's nested walk
                node["_path"] = entry.path
                if old is not None and old.get("type") == "file":
                    node["_old"] = old.get("content")  # popped again before the tree is encoded
                node["content"], node["size"] = self._file_content(entry.path, st, node, old)
            return node
        except OSError as err:
            self._skip(Path(entry.path), err)
            return None

    # -- files ----------------------------------------------------------------------------

    def _unchanged(self, st: os.stat_result, node: Node, old: Node | None) -> bool:
        """Like restic: size, inode, mtime and ctime as in the parent. ctime catches content
        written with the mtime set back (``touch -d``); xattrs are compared too."""
        if not old or old.get("type") != "file" or old.get("content") is None:
            return False
        same = (old.get("size", 0) == st.st_size and old.get("inode") == st.st_ino
                and old.get("mtime") == node["mtime"]
                and (old.get("ctime") == node["ctime"] or same_time(old.get("ctime"), st.st_ctime_ns))
                and old.get("extended_attributes") == node.get("extended_attributes"))
        return same and all(self.repo.index.has(DATA, blob) for blob in old["content"])

    def _file_content(self, path: str, st: os.stat_result, node: Node, old: Node | None
                      ) -> tuple[Any, int]:
        """The file's blob IDs, or where they will be, and the size they hold.

        Small files (one chunk) go out in batches (``SmallFiles``: a worker or a helper
        process reads, hashes and stores each whole) and the content is their ``Slot``.
        Larger files are chunked by a reader thread (with the cut threads, for a large
        one) that hands each chunk to a worker, and the content is a Future of (IDs,
        size). Either way the walk only stats.
        """
        self.stats.bytes_total += st.st_size
        if self._unchanged(st, node, old):
            assert old is not None
            self.stats.files_unmodified += 1
            self.progress.advance(st.st_size, files=1)
            return list(old["content"]), st.st_size
        if old is None:
            self.stats.files_new += 1
        else:
            self.stats.files_changed += 1
        if st.st_size < MIN_CHUNK:
            return self._small.add(path, st.st_size), st.st_size
        return self._reader.submit(self._store_large_file, path, st.st_size), st.st_size

    def _store_large_file(self, path: str, expected: int) -> tuple[list[str], int]:
        """Chunk a file as it is read, each chunk stored by a worker; runs on the reader thread,
        which alone may wait for workers (they never wait for it). A file of ``PARALLEL_FROM``
        bytes or more is cut on every core (drorch.archiver.segments)."""
        if expected >= PARALLEL_FROM:
            return self._store_in_segments(path, expected)
        pending: list[Future[str]] = []
        size = 0
        with open_source(path) as stream:
            for chunk in chunks(stream, expected):
                size += len(chunk)
                pending.append(self._submit(self._store_chunk, chunk))
        self.progress.advance(0, files=1)
        return [f.result() for f in pending], size

    def _store_in_segments(self, path: str, expected: int) -> tuple[list[str], int]:
        """Cut on the cut threads, each chunk read again and stored by a worker; the descriptor
        stays open until every read is done."""
        pending: list[Future[tuple[str | None, int]]] = []
        fd = open_fd(path)
        try:
            for offset, length in parallel_cuts(fd, expected, self._cutters.submit, self._cut_ahead):
                pending.append(self._submit(self._store_range, (fd, offset, length)))
        finally:
            wait(pending)
            os.close(fd)
        stored = [f.result() for f in pending]
        self.progress.advance(0, files=1)
        return [blob for blob, length in stored if blob is not None], sum(length for _blob, length in stored)

    def _store_range(self, where: tuple[int, int, int]) -> tuple[str | None, int]:
        """Store the chunk at (fd, offset, length); (None, 0) when the file no longer reaches it."""
        chunk = read_chunk(*where)
        return (self._store_chunk(chunk), len(chunk)) if chunk else (None, 0)

    def _submit(self, job: Callable[[Any], T], arg: Any) -> Future[T]:
        """Run ``job(arg)`` on a worker once one of the bounded in-flight slots is free."""
        self._slots.acquire()
        future = self._pool.submit(job, arg)
        future.add_done_callback(lambda _f: self._slots.release())
        return future

    def _store_chunk(self, chunk: bytes | memoryview) -> str:
        blob_id = self.uploader.save(DATA, chunk)
        self.progress.advance(len(chunk))
        return blob_id

    def _store_small_file(self, path: str, expected: int) -> Stored:
        """Read and store a file expected to be one chunk (it may have grown meanwhile)."""
        data = read_small_file(path, expected)
        if data is None:  # it grew: read it as any other file
            with open_source(path) as stream:
                return self._store_chunks(stream, expected)
        content = [self._store_chunk(data)] if data else []
        self.progress.advance(0, files=1)
        return content, len(data)

    def _store_chunks(self, stream: FileIO, expected: int) -> tuple[list[str], int]:
        content, size = [], 0
        for chunk in chunks(stream, expected):
            size += len(chunk)
            content.append(self._store_chunk(chunk))
        self.progress.advance(0, files=1)
        return content, size

    def _skip(self, path: Path, err: OSError) -> None:
        message = f"skipped {path}: {err.strerror or err}"
        self.stats.skipped.append(message)
        self.progress.note(message)


def is_excluded(patterns: list[str], name: str, rel: str) -> bool:
    """A pattern with a ``/`` matches the path relative to the source (``/x/y``: anchored at
    the source root), others the name alone."""
    return any(fnmatch(rel if "/" in p else name, p.removeprefix("/")) for p in patterns)


def _node(name: str, st: os.stat_result, kind: str, attrs: list[dict[str, str]], target: str | None) -> Node:
    """An entry's node but for content and subtree, the same whichever way it was judged."""
    node = node_from_stat(name, st, kind)
    if attrs:
        node["extended_attributes"] = attrs
    if target is not None:
        node["linktarget"] = target
    return node


def _futures_of(node: Node) -> list[Future[Any]]:
    if node["type"] == "dir":
        return [node["subtree"]]
    content = node.get("content")
    if isinstance(content, Slot):
        return [content.done]
    return [content] if isinstance(content, Future) else []


def _subtree_id(node: Node | None) -> str | None:
    return node.get("subtree") if node and node.get("type") == "dir" else None
