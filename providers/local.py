"""``file://`` targets: a repository in a local (or mounted) directory.

Writes go to ``tmp/`` inside the repository, are fsynced, then renamed into
place, so a crash never leaves a partial object under a real name. restic
ignores ``tmp/``; a crash can leave stray files there and nothing else.

Objects of ``DIRECT_FROM`` bytes or more (packs) are written with ``O_DIRECT``,
but for their last partial block: they are fsynced anyway, so the page cache only
cost a copy of every byte into pages allocated for it (~15% of a first backup's
CPU here), and filled it with packs nobody reads next. Where the file system or
the buffer's alignment refuses direct I/O, the rest goes through the page cache.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from drorch.ports.config import StoreConfig
from drorch.ports.errors import AccessDenied, ObjectExists, ObjectNotFound, StoreError, StoreFull
from drorch.ports.fileio import read_into
from drorch.ports.private import FILE_MODE, make_private_dirs
from drorch.ports.store import ObjectInfo

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
DIRECT_FROM = 1 << 20
_BLOCK = 4096  # a multiple of every logical block size direct I/O asks alignment to
_O_DIRECT = getattr(os, "O_DIRECT", 0)  # Linux; elsewhere every write goes through the cache


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return f"file://{self.root}"

    def _path(self, name: str) -> Path:
        return self.root / name

    def _fail(self, action: str, name: str, err: OSError) -> StoreError:
        where = f"{action} {name} in {self.root}"
        if err.errno in _NO_SPACE:
            return StoreFull(f"no space left on the device while trying to {where}",
                             hint="free space on the target or point it at a larger disk")
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return AccessDenied(f"cannot {where}: {err.strerror}",
                                hint="check the ownership and permissions of the target directory")
        return StoreError(f"cannot {where}: {err.strerror or err}")

    def put(self, name: str, data: bytes | bytearray | memoryview, *, exclusive: bool = False
            ) -> None:
        final = self._path(name)
        tmp = self.root / "tmp" / f"{uuid.uuid4().hex}.{os.getpid()}"
        try:
            make_private_dirs(final.parent)
            make_private_dirs(tmp.parent)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                with memoryview(data) as view:
                    written = _write_direct(fd, view) if len(view) >= DIRECT_FROM else 0
                    while written < len(view):
                        written += os.write(fd, view[written:])
                os.fsync(fd)
            finally:
                os.close(fd)
            self._publish(tmp, final, exclusive)
            _fsync_dir(final.parent)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise self._fail("write", name, err) from err

    def _publish(self, tmp: Path, final: Path, exclusive: bool) -> None:
        if not exclusive:
            os.replace(tmp, final)
            return
        try:
            os.link(tmp, final)  # atomic create-if-absent
        except FileExistsError as err:
            raise ObjectExists(f"{final.relative_to(self.root)} already exists in {self.root}") from err
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        try:
            with open(self._path(name), "rb", buffering=0) as fh:
                if length is None:
                    fh.seek(offset)
                    return fh.read()
                return os.pread(fh.fileno(), length, offset)
        except FileNotFoundError as err:
            raise ObjectNotFound(f"{name} does not exist in {self.root}") from err
        except OSError as err:
            raise self._fail("read", name, err) from err

    def get_into(self, name: str, offset: int, into: memoryview) -> int:
        try:
            with open(self._path(name), "rb", buffering=0) as fh:
                return read_into(fh.fileno(), into, offset)
        except FileNotFoundError as err:
            raise ObjectNotFound(f"{name} does not exist in {self.root}") from err
        except OSError as err:
            raise self._fail("read", name, err) from err

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        folder, _, _ = prefix.rpartition("/")
        base = self.root / folder
        if not base.is_dir():
            return
        for dirpath, _dirs, files in os.walk(base):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            for file in files:
                name = file if rel == "." else f"{rel}/{file}"
                if name.startswith(prefix):
                    st = os.stat(os.path.join(dirpath, file))
                    yield ObjectInfo(name, st.st_size, st.st_mtime)

    def delete(self, name: str) -> None:
        try:
            self._path(name).unlink(missing_ok=True)
        except OSError as err:
            raise self._fail("delete", name, err) from err


def _write_direct(fd: int, view: memoryview) -> int:
    """Write the whole blocks at the start of ``view`` bypassing the page cache; the bytes
    written, fewer (down to 0) where direct I/O is refused (EINVAL: the file system, or a
    buffer that is not block-aligned in memory). Other errors are raised as from a write."""
    whole = len(view) - len(view) % _BLOCK
    if not _O_DIRECT or not whole:
        return 0
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    written = 0
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | _O_DIRECT)
        while written < whole:
            written += os.write(fd, view[written:whole])
    except OSError as err:
        if err.errno != errno.EINVAL:
            raise
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    return written


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_store(target: StoreConfig) -> LocalStore:
    path = target.local_path
    assert path is not None, "the file:// scheme always has a local path"
    return LocalStore(path)
