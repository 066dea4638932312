"""Writing below a restore target without ever leaving it.

A crafted (or damaged) repository must not make restore write outside ``--to``:
a tree holding a directory ``a`` and then a symlink ``a -> /etc``, or a symlink
planted in ``--to`` before the restore, would otherwise redirect every later
write through ``a/...``. So nothing here resolves a path the usual way:

- directories are numbered as restore creates them (``Dirs``: parent number and
  name; 0 is ``--to`` itself) and opened one component at a time from the target's
  own descriptor, each with ``O_DIRECTORY | O_NOFOLLOW``: a symlink where restore
  expects its directory fails the open instead of being followed;
- files are created with ``O_CREAT | O_EXCL`` (which never follows a link) and
  reopened with ``O_NOFOLLOW``; metadata is set through the opened descriptor
  (``fchown``, ``fchmod``, ``futimens``, ``fsetxattr``) or with
  ``AT_SYMLINK_NOFOLLOW``, never through a name that could be a link;
- whatever sits where the snapshot has something else is removed (a planted
  symlink is unlinked, never followed; ``shutil.rmtree`` with ``dir_fd`` does not
  follow links either).

``DirFds`` caches a bounded number of open directories per thread, so a tree
thousands of levels deep needs no more descriptors than a flat one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drorch.ports.errors import IntegrityError
from drorch.repository.tree import atime_ns, mtime_ns, posix_permissions
from drorch.sources import xattrs

Node = dict[str, Any]
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
WRITE_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_SPECIAL_KINDS = {"dev": stat.S_IFBLK, "chardev": stat.S_IFCHR}


class Dirs:
    """The directories of one restore: number -> (parent number, name); 0 is the target.

    A helper process knows only the directories its work names (``chains``, ``learn``).
    """

    def __init__(self) -> None:
        self.parent: dict[int, int] = {0: -1}
        self.name: dict[int, str] = {0: ""}

    def add(self, parent: int, name: str) -> int:
        index = len(self.name)
        self.parent[index], self.name[index] = parent, name
        return index

    def chains(self, indexes: set[int]) -> dict[int, tuple[int, str]]:
        """Directories ``indexes`` and all their ancestors, as ``learn`` takes them."""
        known: dict[int, tuple[int, str]] = {}
        for index in indexes:
            while index > 0 and index not in known:
                known[index] = (self.parent[index], self.name[index])
                index = self.parent[index]
        return known

    def learn(self, chains: dict[int, tuple[int, str]]) -> None:
        for index, (parent, name) in chains.items():
            self.parent[index], self.name[index] = parent, name

    def rel(self, index: int, name: str = "") -> str:
        """The path of directory ``index`` (joined with ``name``) relative to the target."""
        parts = [name] if name else []
        while index > 0:
            parts.append(self.name[index])
            index = self.parent[index]
        return "/".join(reversed(parts))


class DirFds:
    """Open descriptors of restored directories, for one thread; bounded, least recently used
    closed first. Use as a context manager; the target's own descriptor is never closed here."""

    def __init__(self, root_fd: int, dirs: Dirs, size: int = 64) -> None:
        self.root_fd, self.dirs, self.size = root_fd, dirs, size
        self._open: OrderedDict[int, int] = OrderedDict()

    def fd(self, index: int) -> int:
        """The descriptor of directory ``index``, opened from its nearest open ancestor."""
        chain = []
        while index > 0 and index not in self._open:
            chain.append(index)
            index = self.dirs.parent[index]
        fd = self.root_fd if index == 0 else self._open[index]
        if index > 0:
            self._open.move_to_end(index)
        for step in reversed(chain):
            fd = os.open(self.dirs.name[step], _DIR_FLAGS, dir_fd=fd)
            self._open[step] = fd
            while len(self._open) > self.size:
                os.close(self._open.popitem(last=False)[1])
        return fd

    def close(self) -> None:
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()

    def __enter__(self) -> DirFds:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def clear(dir_fd: int, name: str, *, keep_dir: bool = False) -> bool:
    """Remove what is at ``name`` (a planted link is unlinked, never followed).

    With ``keep_dir`` an existing real directory stays (restore fills it); returns
    whether one did.
    """
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return True
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)  # file, symlink, fifo, socket, device node
    return False


def make_dir(dir_fd: int, name: str) -> None:
    """A directory at ``name``: an existing real one is reused, anything else replaced.

    Made first and cleared only if something is there: a restore into a new directory
    (the usual case) then costs one call per entry, not two."""
    try:
        os.mkdir(name, 0o700, dir_fd=dir_fd)  # private while it is filled; its mode comes last
    except FileExistsError:
        if not clear(dir_fd, name, keep_dir=True):
            os.mkdir(name, 0o700, dir_fd=dir_fd)


def create_file(dir_fd: int, name: str, size: int) -> None:
    """A new, empty file of ``size`` bytes (a hole until its blobs arrive); never opens a link
    (``O_EXCL``: whatever is at ``name`` is removed first)."""
    fd = _create(dir_fd, name)
    try:
        if size:
            os.ftruncate(fd, size)
    finally:
        os.close(fd)


def write_whole(dir_fd: int, name: str, data: bytes | bytearray | memoryview, node: Node,
                as_root: bool) -> list[str]:
    """A file whose whole content is ``data``, made, written and given its metadata through one
    descriptor: what ``create_file``, ``write_all`` and ``apply_metadata`` do, in one open.
    Returns the metadata that could not be set; failing to create or write raises OSError."""
    fd = _create(dir_fd, name)
    try:
        write_all(fd, data, 0)
        return metadata_failures(lambda: set_metadata(fd, node, as_root))
    finally:
        os.close(fd)


def _create(dir_fd: int, name: str) -> int:
    try:
        return os.open(name, _CREATE_FLAGS, 0o600, dir_fd=dir_fd)
    except FileExistsError:
        clear(dir_fd, name)
        return os.open(name, _CREATE_FLAGS, 0o600, dir_fd=dir_fd)


def write_all(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    """``data`` at ``offset``, however many calls pwrite takes."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def make_special(dir_fd: int, name: str, node: Node) -> bool:
    """A symlink, fifo or device node as the node records it; False for kinds not restored."""
    kind = node["type"]
    if kind not in ("symlink", "fifo", *_SPECIAL_KINDS):
        return False  # sockets, and kinds this version does not know
    clear(dir_fd, name)
    if kind == "symlink":
        os.symlink(node.get("linktarget", ""), name, dir_fd=dir_fd)
    elif kind == "fifo":
        os.mkfifo(name, 0o600, dir_fd=dir_fd)
    else:
        device = node.get("device")
        os.mknod(name, 0o600 | _SPECIAL_KINDS[kind], device if isinstance(device, int) else 0,
                 dir_fd=dir_fd)
    return True


def link(dir_fd: int, name: str, first_dir_fd: int, first_name: str) -> None:
    """``name`` as another hard link to a file this restore created."""
    clear(dir_fd, name)
    os.link(first_name, name, src_dir_fd=first_dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)


def rename_no_replace(dir_fd: int, name: str, new_name: str) -> None:
    """Rename within one directory, never replacing what is at ``new_name`` (FileExistsError)."""
    try:
        os.link(name, new_name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError:  # no hard links here: check, then rename
        try:
            os.stat(new_name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            os.rename(name, new_name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return
        raise FileExistsError(errno.EEXIST, "exists", new_name) from None
    os.unlink(name, dir_fd=dir_fd)


def apply_metadata(dir_fd: int, name: str, node: Node, as_root: bool) -> list[str]:
    """Owner (as root), mode, xattrs and times, in restic's order; returns what could not be set.

    Files, directories and fifos are opened with ``O_NOFOLLOW`` and changed through the
    descriptor; symlinks and device nodes (opening a device can have effects) by name
    with ``AT_SYMLINK_NOFOLLOW``, after checking the name still holds what restore made.
    """
    kind = node["type"]
    if kind in ("symlink", *_SPECIAL_KINDS):
        return _metadata_by_name(dir_fd, name, node, as_root)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    fd = os.open(name, flags | (os.O_DIRECTORY if kind == "dir" else 0), dir_fd=dir_fd)
    try:
        return set_metadata(fd, node, as_root)
    finally:
        os.close(fd)


def set_metadata(fd: int, node: Node, as_root: bool) -> list[str]:
    """``apply_metadata`` through a descriptor already open (for writing will do)."""
    if as_root:
        with contextlib.suppress(OSError):
            os.fchown(fd, node.get("uid", 0), node.get("gid", 0))
    os.fchmod(fd, posix_permissions(node.get("mode", 0o644)))
    failed = xattrs.write(fd, node)
    os.utime(fd, ns=(atime_ns(node), mtime_ns(node)))
    return failed


def metadata_failures(apply: Callable[[], list[str]]) -> list[str]:
    """What ``apply`` (setting one entry's metadata) could not set, its errors included: a
    crafted time or mode, or a failing call, is a warning about that entry, not a failure."""
    try:
        return apply()
    except OSError as err:
        return [f"its metadata ({err.strerror or err})"]
    except (ValueError, TypeError, OverflowError, IntegrityError) as err:
        return [f"its metadata ({err})"]


def apply_metadata_at(path: Path, node: Node, as_root: bool) -> list[str]:
    """``apply_metadata`` for a path the caller made itself (its parent is opened, not followed)."""
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return apply_metadata(fd, path.name, node, as_root)
    finally:
        os.close(fd)


def _metadata_by_name(dir_fd: int, name: str, node: Node, as_root: bool) -> list[str]:
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    is_link = node["type"] == "symlink"
    if stat.S_ISLNK(st.st_mode) != is_link:
        raise OSError(errno.ESTALE, "replaced while restoring", name)
    if as_root:
        with contextlib.suppress(OSError):
            os.chown(name, node.get("uid", 0), node.get("gid", 0), dir_fd=dir_fd, follow_symlinks=False)
    if not is_link:  # a device node, checked above: chmod by name cannot follow a link
        os.chmod(name, posix_permissions(node.get("mode", 0o600)), dir_fd=dir_fd)
    # lsetxattr has no dir_fd form: /proc/self/fd/N is the directory itself, and the last
    # component is not followed.
    failed = xattrs.write(f"/proc/self/fd/{dir_fd}/{name}", node, follow_symlinks=False)
    os.utime(name, ns=(atime_ns(node), mtime_ns(node)), dir_fd=dir_fd, follow_symlinks=False)
    return failed
