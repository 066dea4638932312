"""Content-defined chunking of file contents with FastCDC (C code that releases the GIL).

Chunks are 512 KiB to 8 MiB, about 1 MiB on average, like restic's: a small
edit in a large file changes one or two chunks, not the rest of the file.
Files below the minimum are one chunk and are read in one call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from pyfastcdc import FastCDC

MIN_CHUNK = 512 * 1024
MAX_CHUNK = 8 * 1024 * 1024
# pyfastcdc's average is avg_size + min_size, so this yields ~1 MiB chunks.
_CDC = FastCDC(avg_size=512 * 1024, min_size=MIN_CHUNK, max_size=MAX_CHUNK)


class _Prefixed:
    """A stream that first replays bytes already read from it."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def read(self, n: int) -> bytes:
        if self._prefix:
            head, self._prefix = self._prefix[:n], self._prefix[n:]
            return head
        return self._stream.read(n)


def chunks(stream: BinaryIO, size_hint: int) -> Iterator[bytes]:
    """The chunks of a stream, each an independent ``bytes`` safe to hand to another thread.

    ``size_hint`` (the size from stat) only picks the fast path for small files;
    a file that grew since is still read to its end.
    """
    source: BinaryIO | _Prefixed = stream
    if size_hint < MIN_CHUNK:
        # Read exactly what stat promised (+1 to see growth): asking for MIN_CHUNK would
        # allocate 512 KiB per small file, which costs more than reading it.
        head = stream.read(size_hint + 1)
        if len(head) > size_hint:
            head += stream.read(MIN_CHUNK - len(head))
        if len(head) < MIN_CHUNK:
            if head:
                yield head
            return
        source = _Prefixed(head, stream)
    for chunk in _CDC.cut_stream(source):
        yield bytes(chunk.data)
