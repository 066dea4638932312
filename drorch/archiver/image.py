"""Archiving a disk image file or a block device as one file node, sparse-aware and incremental.

To restic the image is an ordinary file: a node whose ``content`` lists blob
IDs that concatenate to the image's bytes, so ``restic restore`` reproduces it
byte for byte. Inside that list:

- **Zero runs** (filesystem holes, which are never read, and 512 KiB blocks that
  read as all zeros) are references to zero-filled blobs of power-of-two sizes
  up to 8 MiB. Those few blobs are stored once per repository, so a 1 TiB disk
  holding 10 GiB costs 10 GiB, and restore can leave the holes unallocated.
- **Data runs** (consecutive non-zero blocks) are cut by content (FastCDC, the
  same parameters as for files), so an edit changes the one or two chunks
  around it.

Two passes. The *scan* reads every block that may hold data and records, per
512 KiB block, whether it is zero and its SHA-256. The *build* walks the runs:
where the parent snapshot had a chunk starting at the current offset and every
block under it hashed the same last time, the chunk is reused without being
read again; elsewhere the data is re-read and cut, until a cut falls on a
parent chunk boundary again (content-defined cuts resynchronise within a chunk
or two). Block hashes of the parent come from the local block map
(``drorch.sources.blockmap``); without one, every data run is cut afresh, which
is correct and only slower.

A regular image file whose size, mtime, ctime and inode match the parent's node
is not read at all.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from drorch.archiver.chunker import _CDC
from drorch.archiver.parent import parent_nodes
from drorch.ports.errors import SourceError
from drorch.ports.progress import NoProgress, Progress
from drorch.repository.pack import DATA, TREE
from drorch.repository.repository import Repository
from drorch.repository.tree import encode_tree, go_mode, node_from_stat
from drorch.repository.uploader import PackUploader
from drorch.repository.zeros import ZEROS as _ZEROS
from drorch.repository.zeros import is_all_zero, is_zero_blob, zero_blob_id, zero_pieces
from drorch.sources.blockmap import BlockMap, BlockMapStore, content_digest
from drorch.sources.device import OpenedImage, data_extents, open_image, read_exactly

Node = dict[str, Any]
T = TypeVar("T")

BLOCK_SIZE = 512 * 1024  # change-tracking unit; also the EBS snapshot block size
SCAN_WINDOW = 32 * BLOCK_SIZE
ZERO_DIGEST = bytes(32)  # marks a zero block in a block map (no SHA-256 is all zeros)




@dataclass
class ImageStats:
    size: int = 0
    bytes_scanned: int = 0  # read to find zero blocks and changed blocks
    bytes_chunked: int = 0  # read again and cut into chunks
    bytes_reused: int = 0  # data taken from the parent snapshot without cutting
    bytes_zero: int = 0  # holes and zero blocks
    blocks_changed: int = 0
    unchanged: bool = False  # a regular file the parent already holds: nothing read


class ImageArchiver:
    """Archives one image or device into a repository; use once per snapshot."""

    def __init__(self, repo: Repository, uploader: PackUploader, *, progress: Progress | None = None,
                 workers: int | None = None, blockmaps: BlockMapStore | None = None) -> None:
        self.repo = repo
        self.uploader = uploader
        self.progress = progress or NoProgress()
        self.blockmaps = blockmaps
        self.stats = ImageStats()
        workers = workers or os.cpu_count() or 2
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="image")
        self._slots = threading.BoundedSemaphore(workers * 3)

    # -- entry point ----------------------------------------------------------------------

    def archive(self, source: Path, parent_tree: str | None, *, read_from: Path | None = None,
                what: str = "image", allow_shrink: bool = False) -> str:
        """Store the image at ``read_from`` (default ``source``) under ``source``'s full path.

        Returns the root tree ID. Raises SourceError when the image is shorter
        than in the parent snapshot (a truncated disk) unless ``allow_shrink``.
        """
        if not source.is_absolute():
            raise SourceError(f"the {what} path {source} is not absolute")
        try:
            parents = self._parent_chain(parent_tree, source.parts[1:])
            image = open_image(read_from or source, what=what)
            try:
                node = self._image_node(source.name, image, parents[-1].get(source.name), what,
                                        allow_shrink, read_from or source)
            finally:
                image.close()
            return self._save_chain(Path(source.anchor), source.parts[1:-1], node)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _parent_chain(self, tree_id: str | None, parts: tuple[str, ...]) -> list[dict[str, Node]]:
        """The parent snapshot's trees along the path: one name->node map per directory level."""
        chain = [self._tree(tree_id)]
        for part in parts[:-1]:
            node = chain[-1].get(part)
            chain.append(self._tree(node.get("subtree") if node and node.get("type") == "dir" else None))
        return chain

    def _tree(self, tree_id: str | None) -> dict[str, Node]:
        return parent_nodes(self.repo, tree_id, self.progress, "reading the whole image")

    def _save_chain(self, base: Path, parts: tuple[str, ...], leaf: Node) -> str:
        if not parts:
            return self.uploader.save(TREE, encode_tree([leaf]))
        path = base / parts[0]
        node = node_from_stat(parts[0], path.stat(), "dir")
        node["subtree"] = self._save_chain(path, parts[1:], leaf)
        return self.uploader.save(TREE, encode_tree([node]))

    # -- the image ------------------------------------------------------------------------

    def _image_node(self, name: str, image: OpenedImage, old: Node | None, what: str,
                    allow_shrink: bool, path: Path) -> Node:
        st = image.st
        node = node_from_stat(name, st, "file")
        node["mode"] = go_mode(stat.S_IFREG | stat.S_IMODE(st.st_mode))
        node["size"] = image.size
        if image.is_device:  # a device node's times say nothing about its contents
            node.pop("inode", None)
        old = old if old and old.get("type") == "file" else None
        old_size = int(old.get("size", 0)) if old else 0
        if old and image.size < old_size and not allow_shrink:
            raise SourceError(
                f"the {what} {path} is {image.size} bytes, shorter than the {old_size} bytes of "
                "the last snapshot, so the disk looks truncated; nothing was recorded",
                hint="if it was shrunk on purpose, run again with DRORCH_ALLOW_SHRINK=1")
        self.stats.size = image.size
        if old and self._unchanged(image, node, old):
            self.stats.unchanged = True
            self.stats.bytes_reused = image.size
            node["content"] = list(old["content"])
            return node
        self.progress.start(f"scanning {path}", image.size)
        scan = self._scan(image, path)
        parent = self._parent_layout(old, scan)
        content = self._build(image, scan, parent, path)
        node["content"] = [c.result() if isinstance(c, Future) else c for c in content]
        if self.blockmaps is not None:
            self.blockmaps.save(BlockMap(content_digest(node["content"], image.size), image.size,
                                         BLOCK_SIZE, bytes(scan.hashes)))
        return node

    def _unchanged(self, image: OpenedImage, node: Node, old: Node) -> bool:
        if image.is_device or not old.get("content"):
            return False
        same = all(old.get(k) == node.get(k) for k in ("size", "inode", "mtime", "ctime"))
        return same and all(self.repo.index.has(DATA, b) for b in old["content"])

    # -- pass 1: which blocks are zero, and what each hashes to ---------------------------

    def _scan(self, image: OpenedImage, path: Path) -> _Scan:
        scan = _Scan(image.size)
        pending: list[Future[None]] = []
        for start, end in _block_aligned(data_extents(image.fd, image.size), image.size):
            for offset in range(start, end, SCAN_WINDOW):
                length = min(SCAN_WINDOW, end - offset)
                buf = bytearray(length)
                read_exactly(image.fd, memoryview(buf), offset, path)
                self.stats.bytes_scanned += length
                pending.append(self._submit(scan.hash_window, (offset, buf)))
                self.progress.advance(length)
        for future in pending:
            future.result()
        self.stats.bytes_zero = scan.zero_bytes()
        return scan

    # -- pass 2: the content list ---------------------------------------------------------

    def _parent_layout(self, old: Node | None, scan: _Scan) -> _Layout | None:
        """Where the parent's data chunks sit, if its block map is known: what can be reused."""
        if not old or not old.get("content") or self.blockmaps is None:
            return None
        old_map = self.blockmaps.load(content_digest(old["content"], int(old.get("size", 0))))
        if old_map is None or old_map.block_size != BLOCK_SIZE:
            return None
        chunks: dict[int, tuple[int, str]] = {}
        offset = 0
        for blob_id in old["content"]:
            found = self.repo.index.lookup(DATA, blob_id)
            if found is None:
                return None  # the parent is damaged: cut everything afresh
            length = found[1].plain_length
            if not is_zero_blob(blob_id, length):
                chunks[offset] = (length, blob_id)
            offset += length
        changed = scan.changed_against(old_map.hashes)
        self.stats.blocks_changed = len(changed)
        return _Layout(chunks, changed)

    def _build(self, image: OpenedImage, scan: _Scan, parent: _Layout | None, path: Path
               ) -> list[str | Future[str]]:
        content: list[str | Future[str]] = []
        for start, end, is_zero in scan.runs():
            if is_zero:
                for size in zero_pieces(end - start):
                    content.append(self.uploader.save(DATA, memoryview(_ZEROS)[:size], zero_blob_id(size)))
                continue
            offset = start
            while offset < end:
                reused = parent.reusable(offset, end) if parent else None
                if reused:
                    length, blob_id = reused
                    content.append(blob_id)
                    self.stats.bytes_reused += length
                    offset += length
                else:
                    offset = self._cut(image, offset, end, parent, content, path)
        if self.stats.blocks_changed == 0 and parent is None:
            self.stats.blocks_changed = scan.data_blocks()
        return content

    def _cut(self, image: OpenedImage, start: int, end: int, parent: _Layout | None,
             content: list[str | Future[str]], path: Path) -> int:
        """Cut [start, end) by content until a cut lands where a parent chunk can be reused."""
        offset = start
        for chunk in _CDC.cut_stream(_RangeReader(image.fd, start, end, path)):
            data = bytes(chunk.data)
            content.append(self._submit(self._store, data))
            offset += len(data)
            self.stats.bytes_chunked += len(data)
            if parent and offset < end and parent.reusable(offset, end):
                break
        if offset == start:
            raise SourceError(f"{path} became shorter while it was being read")
        return offset

    def _store(self, data: bytes) -> str:
        return self.uploader.save(DATA, data)

    def _submit(self, job: Callable[[Any], T], arg: Any) -> Future[T]:
        self._slots.acquire()
        future = self._pool.submit(job, arg)
        future.add_done_callback(lambda _f: self._slots.release())
        return future


class _Scan:
    """Per 512 KiB block: ZERO_DIGEST if it is zero (or a hole), else its SHA-256."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.blocks = (size + BLOCK_SIZE - 1) // BLOCK_SIZE
        self.hashes = bytearray(32 * self.blocks)  # holes stay ZERO_DIGEST

    def hash_window(self, job: tuple[int, bytearray]) -> None:
        offset, buf = job
        view = memoryview(buf)
        for pos in range(0, len(buf), BLOCK_SIZE):
            block = view[pos:pos + BLOCK_SIZE]
            if not is_all_zero(block):
                i = (offset + pos) // BLOCK_SIZE
                self.hashes[32 * i:32 * i + 32] = hashlib.sha256(block).digest()

    def is_zero(self, i: int) -> bool:
        return self.hashes[32 * i:32 * i + 32] == ZERO_DIGEST

    def zero_bytes(self) -> int:
        return sum(min(BLOCK_SIZE, self.size - i * BLOCK_SIZE) for i in range(self.blocks) if self.is_zero(i))

    def data_blocks(self) -> int:
        return sum(1 for i in range(self.blocks) if not self.is_zero(i))

    def runs(self) -> Iterator[tuple[int, int, bool]]:
        """(start, end, is_zero) of maximal runs of zero and of data blocks, in order."""
        i = 0
        while i < self.blocks:
            kind = self.is_zero(i)
            j = i + 1
            while j < self.blocks and self.is_zero(j) == kind:
                j += 1
            yield i * BLOCK_SIZE, min(j * BLOCK_SIZE, self.size), kind
            i = j

    def changed_against(self, old: bytes) -> set[int]:
        """Blocks whose hash differs from ``old`` (a block map of the parent), zero blocks included."""
        changed = set()
        for i in range(self.blocks):
            if self.hashes[32 * i:32 * i + 32] != old[32 * i:32 * i + 32]:
                changed.add(i)
        return changed


@dataclass
class _Layout:
    chunks: dict[int, tuple[int, str]]  # offset -> (length, blob ID) of the parent's data chunks
    changed: set[int]  # blocks whose bytes differ from the parent's

    def reusable(self, offset: int, end: int) -> tuple[int, str] | None:
        """The parent chunk at ``offset`` if it ends by ``end`` and no block under it changed."""
        found = self.chunks.get(offset)
        if found is None or offset + found[0] > end:
            return None
        first, last = offset // BLOCK_SIZE, (offset + found[0] - 1) // BLOCK_SIZE
        if any(i in self.changed for i in range(first, last + 1)):
            return None
        return found


class _RangeReader:
    """[start, end) of a descriptor as a stream (``readinto``), for the chunker."""

    def __init__(self, fd: int, start: int, end: int, path: Path) -> None:
        self.fd, self.pos, self.end, self.path = fd, start, end, path

    def readinto(self, buf: memoryview) -> int:
        want = min(len(buf), self.end - self.pos)
        if want <= 0:
            return 0
        read_exactly(self.fd, buf[:want], self.pos, self.path)
        self.pos += want
        return want


def _block_aligned(extents: Iterator[tuple[int, int]], size: int) -> Iterator[tuple[int, int]]:
    """Extents widened to whole blocks and merged where they then touch."""
    current: tuple[int, int] | None = None
    for start, end in extents:
        start = start - start % BLOCK_SIZE
        end = min(size, end + (-end) % BLOCK_SIZE)
        if current and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current:
            yield current
        current = (start, end)
    if current:
        yield current


def piece_offsets(lengths: list[int]) -> list[int]:
    """Start offset of each piece, from their lengths (for bisecting into a content list)."""
    offsets, total = [], 0
    for length in lengths:
        offsets.append(total)
        total += length
    return offsets


def piece_at(offsets: list[int], offset: int) -> int:
    """Index of the piece that holds byte ``offset``."""
    return bisect_right(offsets, offset) - 1
