"""Opening a disk image or block device for reading, and finding where its data is.

``open_image`` returns a read-only descriptor and the size in bytes (for a
block device, the device's size, not the inode's). ``data_extents`` yields the
ranges the filesystem says hold data (``SEEK_DATA``/``SEEK_HOLE``); holes are
never read. Where the filesystem or the device cannot tell (block devices,
tmpfs of old kernels), the whole range is data and all-zero blocks are found by
looking at them instead.

Errors are one sentence each: missing, permission denied, busy, not a file or
device.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from drorch.ports.errors import SourceError


@dataclass(frozen=True)
class OpenedImage:
    fd: int
    size: int
    st: os.stat_result
    is_device: bool

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def open_image(path: Path, *, what: str = "image") -> OpenedImage:
    """Open ``path`` read-only (a regular file or a block device); SourceError if it cannot be."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SourceError(f"the {what} {path} does not exist",
                          hint="fix the source's path in the policy") from None
    except OSError as err:
        raise os_error(err, path, "read") from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise SourceError(f"the {what} {path} is neither a regular file nor a block device",
                          hint="image sources are disk image files, volume sources block devices")
    flags = os.O_RDONLY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_NOATIME)
    except PermissionError:
        try:  # O_NOATIME needs ownership (or CAP_FOWNER); try without it
            fd = os.open(path, flags)
        except OSError as err:
            raise os_error(err, path, "read") from None
    except OSError as err:
        raise os_error(err, path, "read") from None
    size = os.lseek(fd, 0, os.SEEK_END) if stat.S_ISBLK(st.st_mode) else st.st_size
    return OpenedImage(fd, size, st, stat.S_ISBLK(st.st_mode))


def os_error(err: OSError, path: Path, doing: str) -> SourceError:
    """An OSError on an image or device, in operator words."""
    if err.errno in (errno.EACCES, errno.EPERM):
        return SourceError(f"permission denied to {doing} {path}",
                           hint="run drorch as root or as a member of the device's group (often `disk`)")
    if err.errno == errno.EBUSY:
        return SourceError(f"device {path} is busy (mounted or opened exclusively by another program)",
                           hint="unmount it or stop what holds it, then run again")
    if err.errno == errno.ENOENT:
        return SourceError(f"{path} does not exist")
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return SourceError(f"out of space while trying to {doing} {path}",
                           hint="free space there or choose a larger target")
    if err.errno == errno.EROFS:
        return SourceError(f"{path} is on a read-only filesystem, so drorch cannot {doing} it")
    return SourceError(f"cannot {doing} {path}: {err.strerror or err}")


def data_extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, end) of every range that may hold data, in order; holes are left out."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as err:
            if err.errno == errno.ENXIO:
                return  # only a hole from here to the end
            yield offset, size  # SEEK_DATA unsupported: assume data everywhere
            return
        try:
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        except OSError:
            end = size
        if end <= start:
            end = size
        yield start, end
        offset = end


def read_exactly(fd: int, buf: memoryview, offset: int, path: Path) -> None:
    """Fill ``buf`` from ``offset``; a short read means the image shrank while being read."""
    done = 0
    while done < len(buf):
        try:
            n = os.preadv(fd, [buf[done:]], offset + done)
        except OSError as err:
            raise os_error(err, path, "read") from None
        if n == 0:
            raise SourceError(f"{path} became shorter while it was being read (at byte {offset + done})",
                              hint="something truncated the image; nothing was recorded, run again")
        done += n
