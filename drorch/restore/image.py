"""Restoring an image snapshot onto a file or a block device, writing only what differs.

An image snapshot is one file node (see ``drorch.archiver.image``); its content
is a list of pieces: data chunks and zero blobs. Restore goes in two phases:

1. **Compare.** Each piece's range in the target is read and hashed (SHA-256,
   the blob ID); equal ranges are left alone. Zero pieces are compared
   without reading where the target file already has a hole there. A new file
   is known to be empty, so nothing is read.
2. **Write.** Only the differing pieces are fetched, one ranged read per pack,
   authenticated, and written at their offsets. Zero pieces become holes in a
   file (punched if the file had data there) and zeros on a device.

So a failback onto the old disk reads it once and moves only the changes;
``ImageRestoreStats`` reports bytes compared and bytes written.

Targets, for ``--to PATH``:

- an existing directory: the image is restored as ``PATH/<image name>``;
- a block device: written in place; opened exclusively, so a mounted or busy
  device is refused; it must be at least as large as the image;
- an existing file: updated in place, then truncated or extended to the size;
- a new path: written as ``PATH.drorch-incomplete`` and renamed to ``PATH``
  only when complete and synced.

Nothing half-written looks valid: if a restore into a file fails midway, the
file is renamed to ``PATH.drorch-incomplete`` (and the next restore to ``PATH``
resumes from it, comparing first); a device that failed midway is named in
the error as partly written. A new file that would not fit is refused before
anything is written.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import os
import stat
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drorch.ports.errors import DrorchError, IntegrityError, SourceError, StoreFull, UsageError
from drorch.ports.progress import NoProgress, Progress
from drorch.repository.content import content_blobs
from drorch.repository.layout import FileType, object_name
from drorch.repository.pack import DATA, TREE, PackedBlob
from drorch.repository.repository import Repository
from drorch.repository.snapshot import Snapshot
from drorch.repository.tree import decode_tree, mtime_ns, posix_permissions
from drorch.repository.zeros import ZERO_BLOB_MAX, is_all_zero, is_zero_blob
from drorch.restore.fs import write_all
from drorch.sources.device import os_error

Node = dict[str, Any]
INCOMPLETE_SUFFIX = ".drorch-incomplete"
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02


@dataclass
class ImageRestoreStats:
    target: str = ""
    files: int = 1
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0  # the image's size
    bytes_compared: int = 0  # of the target, read and hashed (or found to be a hole)
    bytes_written: int = 0  # data written
    bytes_zeroed: int = 0  # ranges turned into holes or zeros
    pieces_equal: int = 0
    pieces_written: int = 0


@dataclass(frozen=True)
class _Piece:
    offset: int
    length: int
    blob_id: str
    zero: bool


def image_node(repo: Repository, snapshot: Snapshot) -> Node | None:
    """The file node of an image snapshot (one path, a file at its end); None for directories."""
    if len(snapshot.paths) != 1:
        return None
    parts = Path(snapshot.paths[0]).parts[1:]
    tree_id: str | None = snapshot.tree
    node: Node | None = None
    for part in parts:
        if not tree_id:
            return None
        nodes = {n["name"]: n for n in decode_tree(repo.load_blob(TREE, tree_id))}
        node = nodes.get(part)
        if node is None:
            return None
        tree_id = node.get("subtree")
    return node if node is not None and node.get("type") == "file" else None


class ImageRestorer:
    def __init__(self, repo: Repository, progress: Progress | None = None, workers: int | None = None
                 ) -> None:
        self.repo = repo
        self.progress = progress or NoProgress()
        self.workers = workers or max(2, os.cpu_count() or 2)
        self.stats = ImageRestoreStats()
        self._lock = threading.Lock()

    def restore(self, node: Node, dest: Path) -> ImageRestoreStats:
        pieces = list(self._pieces(node))
        size = sum(p.length for p in pieces)
        self.stats.bytes = size
        target = _Target.open(dest, node["name"], size, pieces)
        self.stats.target = str(target.final)
        try:
            self.progress.start(f"comparing {target.final}", size)
            differ = self._compare(target, pieces)
            self.progress.finish()
            self.progress.start(f"writing {target.final}", sum(p.length for p in differ))
            self._write(target, differ)
            target.finish(node)
        except BaseException as err:
            target.abandon()
            if isinstance(err, OSError):
                raise target.error(err) from None
            raise
        finally:
            target.close()
            self.progress.finish()
        return self.stats

    def _pieces(self, node: Node) -> Iterator[_Piece]:
        for offset, blob_id, _, blob in content_blobs(self.repo, node, f"image {node['name']}"):
            yield _Piece(offset, blob.plain_length, blob_id, is_zero_blob(blob_id, blob.plain_length))

    # -- phase 1 ----------------------------------------------------------------------------

    def _compare(self, target: _Target, pieces: list[_Piece]) -> list[_Piece]:
        if target.fresh:  # known empty: data pieces differ, zero pieces are already holes
            return [p for p in pieces if not p.zero]
        with ThreadPoolExecutor(self.workers, thread_name_prefix="compare") as pool:
            equal = list(pool.map(lambda p: self._same(target, p), pieces))
        self.stats.bytes_compared = sum(p.length for p in pieces)
        self.stats.pieces_equal = sum(equal)
        return [p for p, same in zip(pieces, equal, strict=True) if not same]

    def _same(self, target: _Target, piece: _Piece) -> bool:
        self.progress.advance(piece.length)
        if piece.offset + piece.length > target.existing_size:
            return piece.zero and piece.offset >= target.existing_size and not target.is_device
        if piece.zero and target.is_hole(piece.offset, piece.length):
            return True
        data = os.pread(target.fd, piece.length, piece.offset)
        return is_all_zero(data) if piece.zero else hashlib.sha256(data).hexdigest() == piece.blob_id

    # -- phase 2 ----------------------------------------------------------------------------

    def _write(self, target: _Target, pieces: list[_Piece]) -> None:
        by_pack: dict[str, dict[PackedBlob, list[int]]] = {}
        for piece in pieces:
            if piece.zero:
                target.zero(piece.offset, piece.length)
                self.stats.bytes_zeroed += piece.length
                self.stats.pieces_written += 1
                self.progress.advance(piece.length)
                continue
            found = self.repo.index.lookup(DATA, piece.blob_id)
            assert found is not None  # checked in _pieces
            by_pack.setdefault(found[0], {}).setdefault(found[1], []).append(piece.offset)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="restore") as pool:
            for future in [pool.submit(self._write_pack, target, pack_id, blobs)
                           for pack_id, blobs in by_pack.items()]:
                future.result()

    def _write_pack(self, target: _Target, pack_id: str, blobs: dict[PackedBlob, list[int]]) -> None:
        start = min(b.offset for b in blobs)
        end = max(b.offset + b.length for b in blobs)
        data = memoryview(self.repo.store.get(object_name(FileType.PACK, pack_id), start, end - start))
        for blob in sorted(blobs, key=lambda b: b.offset):
            sealed = data[blob.offset - start:blob.offset - start + blob.length]
            plain = self.repo.open_blob(pack_id, blob, sealed)
            for offset in blobs[blob]:
                target.write(plain, offset)
                self.progress.advance(len(plain))
            with self._lock:
                self.stats.bytes_written += len(plain) * len(blobs[blob])
                self.stats.pieces_written += len(blobs[blob])


class _Target:
    """The file or device being written, and how to finish or abandon it."""

    def __init__(self, final: Path, work: Path, fd: int, is_device: bool, fresh: bool,
                 existing_size: int, size: int) -> None:
        self.final, self.work, self.fd = final, work, fd
        self.is_device, self.fresh = is_device, fresh
        self.existing_size, self.size = existing_size, size
        self.done = False

    @classmethod
    def open(cls, dest: Path, name: str, size: int, pieces: list[_Piece]) -> _Target:
        """Open what ``--to`` names; a link found inside a --to directory is never written through.

        ``--to`` itself is the operator's choice and is followed (``/dev/disk/by-id/...`` are
        links); but the image's name comes from the repository, so ``--to DIR`` refuses a
        symlink at ``DIR/<name>`` and every file restore creates is opened with ``O_NOFOLLOW``.
        """
        dest, follow = _image_path(dest, name)
        try:
            st = os.stat(dest, follow_symlinks=follow)
        except FileNotFoundError:
            st = None
        except OSError as err:
            raise os_error(err, dest, "write") from None
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise UsageError(f"{dest} is a symlink, and restore does not write an image through a "
                             "link it finds in --to", hint="remove it, or name the file or device "
                                                           "you mean with --to")
        if st is not None and stat.S_ISBLK(st.st_mode):
            return cls._device(dest, size)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{dest} is neither a file nor a block device; an image restores onto one")
        work = dest if st is not None else dest.with_name(dest.name + INCOMPLETE_SUFFIX)
        fresh = not os.path.lexists(work)
        if fresh:
            _check_space(dest, sum(p.length for p in pieces if not p.zero))
        nofollow = 0 if follow and work == dest else os.O_NOFOLLOW
        try:
            fd = os.open(work, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | nofollow, 0o600)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise UsageError(f"{work} is a symlink, and restore does not write an image through "
                                 "a link it did not create", hint="remove it and restore again") from None
            raise os_error(err, work, "write") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UsageError(f"{work} is not a regular file; remove it and restore again")
        existing = os.fstat(fd).st_size
        try:
            if existing < size:
                os.ftruncate(fd, size)  # extends with a hole; shrinking waits until the end
        except OSError as err:
            os.close(fd)
            raise os_error(err, work, "write") from None
        return cls(dest, work, fd, False, fresh, existing, size)

    @classmethod
    def _device(cls, dest: Path, size: int) -> _Target:
        try:  # O_EXCL on a block device: refused while it is mounted or held by another program
            fd = os.open(dest, os.O_RDWR | os.O_EXCL | os.O_CLOEXEC)
        except OSError as err:
            raise os_error(err, dest, "write") from None
        device_size = os.lseek(fd, 0, os.SEEK_END)
        if device_size < size:
            os.close(fd)
            raise UsageError(f"device {dest} holds {device_size} bytes, less than the image's {size}",
                             hint="restore onto a device at least as large as the image")
        return cls(dest, dest, fd, True, False, device_size, size)

    def is_hole(self, offset: int, length: int) -> bool:
        try:
            return os.lseek(self.fd, offset, os.SEEK_DATA) >= offset + length
        except OSError as err:
            return err.errno == errno.ENXIO  # no data from offset to the end

    def write(self, data: bytes | bytearray | memoryview, offset: int) -> None:
        write_all(self.fd, data, offset)

    def zero(self, offset: int, length: int) -> None:
        if not self.is_device and _punch_hole(self.fd, offset, length):
            return
        zeros = bytes(min(length, ZERO_BLOB_MAX))
        end = offset + length
        while offset < end:
            n = min(len(zeros), end - offset)
            self.write(memoryview(zeros)[:n], offset)
            offset += n

    def finish(self, node: Node) -> None:
        if not self.is_device:
            os.ftruncate(self.fd, self.size)
            with contextlib.suppress(OSError):
                os.fchmod(self.fd, posix_permissions(node.get("mode", 0o600)))
        os.fsync(self.fd)
        if not self.is_device:
            os.utime(self.fd, ns=(mtime_ns(node), mtime_ns(node)))
            if self.work != self.final:
                os.replace(self.work, self.final)
        self.done = True

    def abandon(self) -> None:
        """After a failure: a new file is removed, a half-updated one renamed, never left as PATH."""
        if self.done or self.is_device:
            return
        with contextlib.suppress(OSError):
            if self.fresh:
                os.unlink(self.work)
            elif self.work == self.final:
                os.replace(self.final, self.final.with_name(self.final.name + INCOMPLETE_SUFFIX))

    def error(self, err: OSError) -> DrorchError:
        """The failure in one sentence, saying what was left where."""
        if self.is_device:
            left = "the device is partly written, restore again"
        elif self.fresh:
            left = "nothing was left under that name"
        else:
            left = (f"the partly updated image is now {self.final.name}{INCOMPLETE_SUFFIX}, and a restore "
                    f"to {self.final.name} resumes from it")
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            return StoreFull(f"out of space restoring the image to {self.final}; {left}",
                             hint="free space there or restore onto a larger disk")
        base = os_error(err, self.final, "write")
        return SourceError(f"{base.message}; {left}", hint=base.hint)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _image_path(dest: Path, name: str) -> tuple[Path, bool]:
    """Where the image goes, and whether a link there may be followed (only if --to named it)."""
    if not dest.is_dir():
        return dest, True
    if "/" in name or "\0" in name or name in ("", ".", ".."):
        raise IntegrityError(f"the image snapshot names its file {name!r}; refusing to restore it",
                             hint="restore onto a file or device with --to")
    return dest / name, False


def _check_space(dest: Path, need: int) -> None:
    try:
        vfs = os.statvfs(dest.parent)
    except OSError:
        return
    free = vfs.f_bavail * vfs.f_frsize
    if need > free:
        raise StoreFull(f"out of space restoring the image to {dest}: it needs {need} bytes of data and "
                        f"{free} are free; nothing was written",
                        hint="free space there or restore onto a larger disk")


_libc: Any = None


def _punch_hole(fd: int, offset: int, length: int) -> bool:
    """Deallocate a range of a file (Linux fallocate); False where that is not possible."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    mode = _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE
    return bool(_libc.fallocate(fd, mode, offset, length) == 0)
