"""Content-defined chunking of file contents with FastCDC (C code that releases the GIL).

Chunks are 512 KiB to 8 MiB, about 1 MiB on average, like restic's: a small
edit in a large file changes one or two chunks, not the rest of the file.
Files below the minimum are one chunk and are read in one call.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Protocol

from pyfastcdc import FastCDC

from drorch.ports.fileio import read_into
from drorch.repository.buffers import BufferPool

MIN_CHUNK = 512 * 1024
MAX_CHUNK = 8 * 1024 * 1024
# pyfastcdc's average is avg_size + min_size, so this yields ~1 MiB chunks.
_CDC = FastCDC(avg_size=512 * 1024, min_size=MIN_CHUNK, max_size=MAX_CHUNK)


# Large files are read in regions of this size; their chunks are views into them.
# Each region yields at least REGION - MAX_CHUNK bytes of chunks (the undecided tail
# is read again at the start of the next one).
REGION = 3 * MAX_CHUNK
_REGIONS = BufferPool(REGION, keep=4)


def trim_buffers() -> None:
    """Return the memory of idle read regions to the kernel (see BufferPool.trim)."""
    _REGIONS.trim()


def read_chunk(fd: int, offset: int, length: int) -> bytes:
    """The ``length`` bytes at ``offset`` (fewer where the file now ends), read without the GIL."""
    data = os.pread(fd, length, offset)
    while 0 < len(data) < length:  # a short read before the end: read the rest
        more = os.pread(fd, length - len(data), offset + len(data))
        if not more:
            break
        data += more
    return data


class Readable(Protocol):
    def read(self, n: int, /) -> bytes: ...
    def readinto(self, buffer: memoryview, /) -> int | None: ...
    def seekable(self) -> bool: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...


def chunks(stream: Readable, size_hint: int) -> Iterator[bytes | memoryview]:
    """The chunks of a stream, each safe to hand to another thread (never reused or mutated).

    ``size_hint`` (the size from stat) only picks the fast path for small files;
    a file that grew since is still read to its end. Small files come back as
    ``bytes``. Larger ones are read a region at a time into fresh anonymous memory
    (drorch.repository.buffers) and come back as read-only views into it: nothing is copied or moved while
    holding the GIL (``cut_stream`` memmoves up to 8 MiB per chunk, then each chunk
    was copied out), so other threads keep hashing and compressing. The cuts are
    ``cut_stream``'s: each is computed with ``MAX_CHUNK`` bytes ahead of it, or at the end.
    """
    carry = b""
    if size_hint < MIN_CHUNK:
        # Read exactly what stat promised (+1 to see growth): asking for MIN_CHUNK would
        # allocate 512 KiB per small file, which costs more than reading it.
        head = stream.read(size_hint + 1)
        if len(head) <= size_hint:
            if head:
                yield head
            return
        carry = head
    rewind = stream.seekable()
    while True:
        region, eof = _fill(stream, carry)
        pos = 0
        for chunk in decided_chunks(region, eof):
            yield chunk.toreadonly()
            pos += len(chunk)
        if eof:
            return
        if rewind:  # read the undecided tail again (in the kernel, without the GIL)
            stream.seek(pos - len(region), os.SEEK_CUR)
            carry = b""
        else:
            carry = bytes(region[pos:])


def decided_chunks(region: memoryview, eof: bool) -> Iterator[memoryview]:
    """The chunks of ``region`` (which starts where a chunk does) that more data could not change.

    A cut is final once ``MAX_CHUNK`` bytes lie ahead of its chunk's start (FastCDC
    never looks further), or when the region ends the file; the rest of the region
    is the caller's to read again, from the first byte not yielded.
    """
    cuts, pos = _CDC.cut_buf(region), 0
    while pos < len(region) and (eof or len(region) - pos >= MAX_CHUNK):
        chunk = next(cuts).data
        yield chunk
        pos += len(chunk)


def region_at(fd: int, offset: int) -> tuple[memoryview, bool]:
    """A pooled region filled from ``fd`` at ``offset`` (``pread``: no shared file position, so
    several threads read one file); and whether the file ended in it."""
    buffer = _REGIONS.get()
    filled = read_into(fd, buffer, offset)
    return (buffer[:filled], True) if filled < len(buffer) else (buffer, False)


def _fill(stream: Readable, carry: bytes) -> tuple[memoryview, bool]:
    """A new region starting with ``carry``, filled from the stream; and whether it ended.

    Pooled anonymous memory: a fresh ``bytearray(n)`` is zeroed holding the GIL.
    """
    buffer = _REGIONS.get()  # carry is shorter than MAX_CHUNK (or a small file's head)
    filled = len(carry)
    buffer[:filled] = carry
    while filled < len(buffer):
        n = stream.readinto(buffer[filled:])
        if not n:
            return buffer[:filled], True
        filled += n
    return buffer, False
